-- Plain PostgreSQL: the per-strip-lot hourly rollup (GET /v1/strip-lots), with
-- the names and columns of the TimescaleDB continuous aggregate of
-- 0005_*.timescale.sql, kept exact by its own statement-level trigger on
-- verdicts like the rollups of 0002_*.plain.sql, and backfilled here.
CREATE TABLE pass_rate_strip_lot_hourly (
    bucket timestamptz NOT NULL, market_id text NOT NULL, analyte text NOT NULL, strip_lot text NOT NULL,
    n_tests bigint NOT NULL, n_negative bigint NOT NULL, n_positive bigint NOT NULL,
    n_suspicious bigint NOT NULL, n_invalid bigint NOT NULL,
    n_verdict_mismatch bigint NOT NULL, n_cutoff_mismatch bigint NOT NULL,
    PRIMARY KEY (bucket, market_id, analyte, strip_lot)
);

CREATE FUNCTION rt_strip_lot_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pass_rate_strip_lot_hourly AS t
    SELECT date_bin(INTERVAL '1 hour', measured_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS b,
           market_id, analyte, strip_lot, count(*),
           sum(CASE WHEN server_result = 'negative' THEN 1 ELSE 0 END),
           sum(CASE WHEN server_result = 'positive' THEN 1 ELSE 0 END),
           sum(CASE WHEN server_result = 'suspicious' THEN 1 ELSE 0 END),
           sum(CASE WHEN server_result = 'invalid' THEN 1 ELSE 0 END),
           sum(CASE WHEN verdict_mismatch THEN 1 ELSE 0 END),
           sum(CASE WHEN cutoff_mismatch THEN 1 ELSE 0 END)
    FROM new_verdicts GROUP BY b, market_id, analyte, strip_lot ORDER BY b, market_id, analyte, strip_lot
    ON CONFLICT (bucket, market_id, analyte, strip_lot) DO UPDATE SET
        n_tests = t.n_tests + EXCLUDED.n_tests,
        n_negative = t.n_negative + EXCLUDED.n_negative,
        n_positive = t.n_positive + EXCLUDED.n_positive,
        n_suspicious = t.n_suspicious + EXCLUDED.n_suspicious,
        n_invalid = t.n_invalid + EXCLUDED.n_invalid,
        n_verdict_mismatch = t.n_verdict_mismatch + EXCLUDED.n_verdict_mismatch,
        n_cutoff_mismatch = t.n_cutoff_mismatch + EXCLUDED.n_cutoff_mismatch;
    RETURN NULL;
END $$;

CREATE TRIGGER verdicts_strip_lot_rollup AFTER INSERT ON verdicts
    REFERENCING NEW TABLE AS new_verdicts
    FOR EACH STATEMENT EXECUTE FUNCTION rt_strip_lot_rollup();

INSERT INTO pass_rate_strip_lot_hourly
SELECT date_bin(INTERVAL '1 hour', measured_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS b,
       market_id, analyte, strip_lot, count(*),
       sum(CASE WHEN server_result = 'negative' THEN 1 ELSE 0 END),
       sum(CASE WHEN server_result = 'positive' THEN 1 ELSE 0 END),
       sum(CASE WHEN server_result = 'suspicious' THEN 1 ELSE 0 END),
       sum(CASE WHEN server_result = 'invalid' THEN 1 ELSE 0 END),
       sum(CASE WHEN verdict_mismatch THEN 1 ELSE 0 END),
       sum(CASE WHEN cutoff_mismatch THEN 1 ELSE 0 END)
FROM verdicts GROUP BY b, market_id, analyte, strip_lot;
