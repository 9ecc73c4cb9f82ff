-- TimescaleDB: readings become a hypertable on measured_at, compressed after
-- RT_TIMESCALE_COMPRESS_AFTER and dropped after RT_TIMESCALE_RETENTION.
SELECT create_hypertable('readings', 'measured_at',
                         chunk_time_interval => INTERVAL '{{chunk_interval}}',
                         migrate_data => true);
ALTER TABLE readings SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'market_id',
    timescaledb.compress_orderby = 'measured_at DESC, reading_id'
);
SELECT add_compression_policy('readings', INTERVAL '{{compress_after}}');
SELECT add_retention_policy('readings', INTERVAL '{{retention}}');
