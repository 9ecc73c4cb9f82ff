-- TimescaleDB (2.13 or later): verdicts become a hypertable on measured_at
-- (its primary key (reading_id, measured_at) includes the time column; no
-- foreign key points at it), and pass-rate statistics come from hourly
-- continuous aggregates with the names and columns of the plain-PostgreSQL
-- rollup tables of 0002_*.plain.sql, so api/queries/stats.py reads either
-- with the same SQL.
--
-- * Real-time aggregation is switched on explicitly (materialized_only =
--   false; the default became true in 2.13): rows past the watermark are
--   aggregated at query time, so the newest hours are always current.
-- * WITH NO DATA: a continuous aggregate created WITH DATA refreshes at once,
--   which cannot run inside a transaction block, and every migration version
--   is one transaction.
-- * Only count() and sum() over CASE, grouped by time_bucket on the hypertable's
--   time column: allowed by every 2.x (no window functions, no ordered-set
--   aggregates, no FILTER needed).  time_bucket('1 hour') on timestamptz gives
--   the same hour starts (UTC) as the plain path's date_bin(..., 2000-01-01).
-- * verdicts has no retention policy: a refresh over a region whose raw chunks
--   were dropped would empty those buckets, and the refresh policy below
--   (start_offset NULL) refreshes invalidations of any age.
-- * Statistics on this path lag for one thing only: a verdict whose
--   measured_at is below the watermark (the policy materializes up to
--   end_offset = 1 hour before its run, so a reading one to two hours late or
--   more) is counted after the next policy run, within schedule_interval.
--   The plain path counts it at once.
SELECT create_hypertable('verdicts', by_range('measured_at', INTERVAL '{{chunk_interval}}'),
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
-- everything past the watermark (the newest one to two hours) is served by
-- real-time aggregation.  end_offset is never NULL: that would move the
-- watermark to the newest data and leave nothing to real-time aggregation.
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
