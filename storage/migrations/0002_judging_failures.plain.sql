-- Plain PostgreSQL: hourly pass-rate rollups with the same names and columns
-- as the TimescaleDB continuous aggregates, kept exact by a statement-level
-- trigger on verdicts (verdicts are insert-only; ON CONFLICT DO NOTHING rows
-- never reach the transition table, so a redelivery counts nothing twice).
-- Plain path only: TimescaleDB before 2.18 refuses a trigger with transition
-- tables on a hypertable ("hypertables do not support transition tables in
-- triggers", raised by create_hypertable or at the first new chunk), and on
-- TimescaleDB the continuous aggregates of 0002_*.timescale.sql do this work.
DO $$
DECLARE
    dim record;
BEGIN
    FOR dim IN SELECT * FROM (VALUES
        ('market', ''), ('station', 'station_id'), ('analyte', 'analyte'),
        ('commodity', 'commodity'), ('region', 'region_code')) AS d(name, keycol)
    LOOP
        EXECUTE format(
            'CREATE TABLE %I (
                bucket timestamptz NOT NULL, market_id text NOT NULL %s,
                n_tests bigint NOT NULL, n_negative bigint NOT NULL, n_positive bigint NOT NULL,
                n_suspicious bigint NOT NULL, n_invalid bigint NOT NULL,
                n_verdict_mismatch bigint NOT NULL, n_cutoff_mismatch bigint NOT NULL,
                PRIMARY KEY (bucket, market_id %s))',
            'pass_rate_' || dim.name || '_hourly',
            CASE WHEN dim.keycol = '' THEN '' ELSE format(', %I text NOT NULL', dim.keycol) END,
            CASE WHEN dim.keycol = '' THEN '' ELSE format(', %I', dim.keycol) END);
    END LOOP;
END $$;

CREATE FUNCTION rt_pass_rate_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    dim record;
    keys text;
BEGIN
    FOR dim IN SELECT * FROM (VALUES
        ('market', ''), ('station', 'station_id'), ('analyte', 'analyte'),
        ('commodity', 'commodity'), ('region', 'region_code')) AS d(name, keycol)
    LOOP
        keys := 'market_id' || CASE WHEN dim.keycol = '' THEN '' ELSE ', ' || quote_ident(dim.keycol) END;
        EXECUTE format(
            'INSERT INTO %1$I AS t (bucket, %2$s, n_tests, n_negative, n_positive, n_suspicious, n_invalid,
                                    n_verdict_mismatch, n_cutoff_mismatch)
             SELECT date_bin(INTERVAL ''1 hour'', measured_at, TIMESTAMPTZ ''2000-01-01 00:00:00+00'') AS b, %2$s,
                    count(*),
                    sum(CASE WHEN server_result = ''negative'' THEN 1 ELSE 0 END),
                    sum(CASE WHEN server_result = ''positive'' THEN 1 ELSE 0 END),
                    sum(CASE WHEN server_result = ''suspicious'' THEN 1 ELSE 0 END),
                    sum(CASE WHEN server_result = ''invalid'' THEN 1 ELSE 0 END),
                    sum(CASE WHEN verdict_mismatch THEN 1 ELSE 0 END),
                    sum(CASE WHEN cutoff_mismatch THEN 1 ELSE 0 END)
             FROM new_verdicts GROUP BY b, %2$s ORDER BY b, %2$s
             ON CONFLICT (bucket, %2$s) DO UPDATE SET
                n_tests = t.n_tests + EXCLUDED.n_tests,
                n_negative = t.n_negative + EXCLUDED.n_negative,
                n_positive = t.n_positive + EXCLUDED.n_positive,
                n_suspicious = t.n_suspicious + EXCLUDED.n_suspicious,
                n_invalid = t.n_invalid + EXCLUDED.n_invalid,
                n_verdict_mismatch = t.n_verdict_mismatch + EXCLUDED.n_verdict_mismatch,
                n_cutoff_mismatch = t.n_cutoff_mismatch + EXCLUDED.n_cutoff_mismatch',
            'pass_rate_' || dim.name || '_hourly', keys);
    END LOOP;
    RETURN NULL;
END $$;

CREATE TRIGGER verdicts_pass_rate_rollup AFTER INSERT ON verdicts
    REFERENCING NEW TABLE AS new_verdicts
    FOR EACH STATEMENT EXECUTE FUNCTION rt_pass_rate_rollup();
