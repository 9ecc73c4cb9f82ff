-- TimescaleDB (2.13 or later: the first release for PostgreSQL 16): readings
-- become a hypertable on measured_at, compressed after RT_TIMESCALE_COMPRESS_AFTER
-- and dropped after RT_TIMESCALE_RETENTION.
--
-- * Every unique key of a hypertable must include its time column:
--   readings_reading_id_key is (reading_id, measured_at), so the
--   store's ON CONFLICT (reading_id, measured_at) DO NOTHING also works on
--   compressed chunks (TimescaleDB 2.11+ checks unique constraints there).
-- * No foreign key points at readings (references to a hypertable need 2.16+)
--   and nothing aggregates it continuously, so the retention policy drops
--   chunks without touching any other relation.
-- * create_hypertable's generalized form (by_range, 2.13+); the old
--   (relation, column, chunk_time_interval => ...) form is deprecated.
-- * compress_orderby holds both columns of the unique key (TimescaleDB warns
--   otherwise); segmentby market_id matches the API's per-market reads.
--   timescaledb.compress / add_compression_policy are the names every 2.x
--   from 2.13 accepts (2.18 added enable_columnstore / add_columnstore_policy
--   and keeps these as aliases).
SELECT create_hypertable('readings', by_range('measured_at', INTERVAL '{{chunk_interval}}'),
                         migrate_data => true);
ALTER TABLE readings SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'market_id',
    timescaledb.compress_orderby = 'measured_at DESC, reading_id'
);
SELECT add_compression_policy('readings', INTERVAL '{{compress_after}}');
SELECT add_retention_policy('readings', INTERVAL '{{retention}}');
