-- TimescaleDB: verdicts become a hypertable on measured_at (its primary key
-- (reading_id, measured_at) includes the time column), and pass-rate
-- statistics come from hourly continuous aggregates with real-time
-- aggregation, so the newest bucket is always current.  Names and columns
-- match the plain-PostgreSQL rollup tables of 0002_*.plain.sql, and
-- api/queries/stats.py reads either with the same SQL.
SELECT create_hypertable('verdicts', 'measured_at',
                         chunk_time_interval => INTERVAL '{{chunk_interval}}',
                         migrate_data => true);

CREATE MATERIALIZED VIEW pass_rate_market_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', measured_at) AS bucket,
       market_id,
       count(*) AS n_tests,
       sum(CASE WHEN server_result = 'negative' THEN 1 ELSE 0 END) AS n_negative,
       sum(CASE WHEN server_result = 'positive' THEN 1 ELSE 0 END) AS n_positive,
       sum(CASE WHEN server_result = 'suspicious' THEN 1 ELSE 0 END) AS n_suspicious,
       sum(CASE WHEN server_result = 'invalid' THEN 1 ELSE 0 END) AS n_invalid,
       sum(CASE WHEN verdict_mismatch THEN 1 ELSE 0 END) AS n_verdict_mismatch,
       sum(CASE WHEN cutoff_mismatch THEN 1 ELSE 0 END) AS n_cutoff_mismatch
FROM verdicts
GROUP BY time_bucket(INTERVAL '1 hour', measured_at), market_id
WITH NO DATA;

CREATE MATERIALIZED VIEW pass_rate_station_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', measured_at) AS bucket,
       market_id,
       station_id,
       count(*) AS n_tests,
       sum(CASE WHEN server_result = 'negative' THEN 1 ELSE 0 END) AS n_negative,
       sum(CASE WHEN server_result = 'positive' THEN 1 ELSE 0 END) AS n_positive,
       sum(CASE WHEN server_result = 'suspicious' THEN 1 ELSE 0 END) AS n_suspicious,
       sum(CASE WHEN server_result = 'invalid' THEN 1 ELSE 0 END) AS n_invalid,
       sum(CASE WHEN verdict_mismatch THEN 1 ELSE 0 END) AS n_verdict_mismatch,
       sum(CASE WHEN cutoff_mismatch THEN 1 ELSE 0 END) AS n_cutoff_mismatch
FROM verdicts
GROUP BY time_bucket(INTERVAL '1 hour', measured_at), market_id, station_id
WITH NO DATA;

CREATE MATERIALIZED VIEW pass_rate_analyte_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', measured_at) AS bucket,
       market_id,
       analyte,
       count(*) AS n_tests,
       sum(CASE WHEN server_result = 'negative' THEN 1 ELSE 0 END) AS n_negative,
       sum(CASE WHEN server_result = 'positive' THEN 1 ELSE 0 END) AS n_positive,
       sum(CASE WHEN server_result = 'suspicious' THEN 1 ELSE 0 END) AS n_suspicious,
       sum(CASE WHEN server_result = 'invalid' THEN 1 ELSE 0 END) AS n_invalid,
       sum(CASE WHEN verdict_mismatch THEN 1 ELSE 0 END) AS n_verdict_mismatch,
       sum(CASE WHEN cutoff_mismatch THEN 1 ELSE 0 END) AS n_cutoff_mismatch
FROM verdicts
GROUP BY time_bucket(INTERVAL '1 hour', measured_at), market_id, analyte
WITH NO DATA;

CREATE MATERIALIZED VIEW pass_rate_commodity_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', measured_at) AS bucket,
       market_id,
       commodity,
       count(*) AS n_tests,
       sum(CASE WHEN server_result = 'negative' THEN 1 ELSE 0 END) AS n_negative,
       sum(CASE WHEN server_result = 'positive' THEN 1 ELSE 0 END) AS n_positive,
       sum(CASE WHEN server_result = 'suspicious' THEN 1 ELSE 0 END) AS n_suspicious,
       sum(CASE WHEN server_result = 'invalid' THEN 1 ELSE 0 END) AS n_invalid,
       sum(CASE WHEN verdict_mismatch THEN 1 ELSE 0 END) AS n_verdict_mismatch,
       sum(CASE WHEN cutoff_mismatch THEN 1 ELSE 0 END) AS n_cutoff_mismatch
FROM verdicts
GROUP BY time_bucket(INTERVAL '1 hour', measured_at), market_id, commodity
WITH NO DATA;

CREATE MATERIALIZED VIEW pass_rate_region_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', measured_at) AS bucket,
       market_id,
       region_code,
       count(*) AS n_tests,
       sum(CASE WHEN server_result = 'negative' THEN 1 ELSE 0 END) AS n_negative,
       sum(CASE WHEN server_result = 'positive' THEN 1 ELSE 0 END) AS n_positive,
       sum(CASE WHEN server_result = 'suspicious' THEN 1 ELSE 0 END) AS n_suspicious,
       sum(CASE WHEN server_result = 'invalid' THEN 1 ELSE 0 END) AS n_invalid,
       sum(CASE WHEN verdict_mismatch THEN 1 ELSE 0 END) AS n_verdict_mismatch,
       sum(CASE WHEN cutoff_mismatch THEN 1 ELSE 0 END) AS n_cutoff_mismatch
FROM verdicts
GROUP BY time_bucket(INTERVAL '1 hour', measured_at), market_id, region_code
WITH NO DATA;

-- Refresh everything invalidated (start_offset NULL: late readings of any age
-- are materialized too, so both storage paths keep giving the same answer);
-- the last hour is served by real-time aggregation.
SELECT add_continuous_aggregate_policy('pass_rate_market_hourly',
    start_offset => NULL, end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '5 minutes');
SELECT add_continuous_aggregate_policy('pass_rate_station_hourly',
    start_offset => NULL, end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '5 minutes');
SELECT add_continuous_aggregate_policy('pass_rate_analyte_hourly',
    start_offset => NULL, end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '5 minutes');
SELECT add_continuous_aggregate_policy('pass_rate_commodity_hourly',
    start_offset => NULL, end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '5 minutes');
SELECT add_continuous_aggregate_policy('pass_rate_region_hourly',
    start_offset => NULL, end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '5 minutes');
