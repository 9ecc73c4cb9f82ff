-- TimescaleDB: the per-strip-lot hourly continuous aggregate (GET /v1/strip-lots)
-- with the names and columns of the plain path's rollup table, real-time and
-- refreshed like those of 0002_*.timescale.sql (WITH NO DATA: real-time
-- aggregation serves existing verdicts until the policy materializes them).
CREATE MATERIALIZED VIEW pass_rate_strip_lot_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', measured_at) AS bucket,
       market_id,
       analyte,
       strip_lot,
       count(*) AS n_tests,
       sum(CASE WHEN server_result = 'negative' THEN 1 ELSE 0 END) AS n_negative,
       sum(CASE WHEN server_result = 'positive' THEN 1 ELSE 0 END) AS n_positive,
       sum(CASE WHEN server_result = 'suspicious' THEN 1 ELSE 0 END) AS n_suspicious,
       sum(CASE WHEN server_result = 'invalid' THEN 1 ELSE 0 END) AS n_invalid,
       sum(CASE WHEN verdict_mismatch THEN 1 ELSE 0 END) AS n_verdict_mismatch,
       sum(CASE WHEN cutoff_mismatch THEN 1 ELSE 0 END) AS n_cutoff_mismatch
FROM verdicts
GROUP BY time_bucket(INTERVAL '1 hour', measured_at), market_id, analyte, strip_lot
WITH NO DATA;

SELECT add_continuous_aggregate_policy('pass_rate_strip_lot_hourly',
    start_offset => NULL, end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '5 minutes');
