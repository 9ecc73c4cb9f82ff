-- Issue 9: one reading per reading_id, one open failure per cause, outcomes
-- (false positives on record), per-strip-lot figures.

-- One row per reading_id whatever its measured_at (a hypertable's unique keys
-- must include the time column, so readings alone cannot say this).  Both
-- writers of reading_id-keyed rows (the store: readings; the flagger:
-- verdicts) claim the id here in their batch's transaction; a different
-- measured_at or payload under a claimed id is a conflict.  Lookups by
-- reading_id alone read measured_at here first, so on TimescaleDB they touch
-- one chunk.  content_sha256 is SHA-256 of the payload as jsonb text.
CREATE TABLE reading_ids (
    reading_id      uuid        PRIMARY KEY,
    measured_at     timestamptz NOT NULL,
    content_sha256  bytea       CHECK (octet_length(content_sha256) = 32),  -- NULL: not known (backfill)
    claimed_at      timestamptz NOT NULL DEFAULT now()
);

-- Backfill: the first-stored row of each id (an id stored twice before this
-- migration keeps its first measured_at here; the later row stays readable by
-- (reading_id, measured_at) but lookups by id alone find the first).
INSERT INTO reading_ids (reading_id, measured_at, content_sha256)
SELECT DISTINCT ON (reading_id) reading_id, measured_at, sha256(convert_to(raw::text, 'UTF8'))
FROM readings ORDER BY reading_id, stored_at, measured_at;
-- Verdicts whose reading the store has not written (yet): the flagger's claim, content unknown.
INSERT INTO reading_ids (reading_id, measured_at)
SELECT DISTINCT ON (reading_id) reading_id, measured_at
FROM verdicts v WHERE NOT EXISTS (SELECT 1 FROM reading_ids i WHERE i.reading_id = v.reading_id)
ORDER BY reading_id, judged_at, measured_at;

-- One open failure per cause (reader faults: verdict_mismatch per reader,
-- cutoff_mismatch per reader and reported cut-off): later readings of the
-- cause add to it; once it is closed the cause recurring opens a new one.
-- Per-strip failures (positive, suspicious, invalid) keep cause_key NULL.
ALTER TABLE failures
    ADD COLUMN cause_key   text,
    ADD COLUMN occurrences integer NOT NULL DEFAULT 1 CHECK (occurrences >= 1),
    ADD COLUMN first_seen  timestamptz,
    ADD COLUMN last_seen   timestamptz,
    -- how a screen failure ended (domain.workflow.outcome): confirmed, destroyed,
    -- released_on_retest, false_positive (lab negative); NULL while undecided
    ADD COLUMN outcome     text CHECK (outcome IN ('confirmed', 'destroyed', 'released_on_retest', 'false_positive'));
UPDATE failures SET first_seen = coalesce(measured_at, raised_at), last_seen = coalesce(measured_at, raised_at);
UPDATE failures f SET outcome = CASE e.action
        WHEN 'lab_positive' THEN 'confirmed' WHEN 'destroy' THEN 'destroyed'
        WHEN 'retest_negative' THEN 'released_on_retest' WHEN 'lab_negative' THEN 'false_positive' END
    FROM (SELECT DISTINCT ON (failure_id) failure_id, action FROM failure_events
          WHERE action IN ('lab_positive', 'destroy', 'retest_negative', 'lab_negative')
          ORDER BY failure_id, seq DESC) e
    WHERE e.failure_id = f.failure_id;
CREATE UNIQUE INDEX failures_open_cause ON failures (cause_key) WHERE closed_at IS NULL AND cause_key IS NOT NULL;
CREATE INDEX failures_device_outcome ON failures (device_id, outcome) WHERE outcome IS NOT NULL;
CREATE INDEX failures_lot_outcome ON failures (analyte, strip_lot, outcome) WHERE outcome IS NOT NULL;

-- The readings each per-cause failure covers (the failure's page lists the newest).
CREATE TABLE failure_readings (
    failure_id   uuid        NOT NULL REFERENCES failures (failure_id),
    reading_id   uuid        NOT NULL,
    measured_at  timestamptz NOT NULL,
    PRIMARY KEY (failure_id, reading_id)
);
CREATE INDEX failure_readings_newest ON failure_readings (failure_id, measured_at DESC);
INSERT INTO failure_readings (failure_id, reading_id, measured_at)
SELECT failure_id, reading_id, measured_at FROM failures WHERE reading_id IS NOT NULL AND measured_at IS NOT NULL;

-- The append-only refusal names the table written to; on TimescaleDB a row
-- trigger fires on the chunk (_hyper_2_1_chunk), so name its parent, the
-- hypertable (pg_inherits: a chunk inherits from its hypertable).
CREATE OR REPLACE FUNCTION rt_forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    parent text;
BEGIN
    SELECT c.relname INTO parent FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent
        WHERE i.inhrelid = TG_RELID LIMIT 1;
    RAISE EXCEPTION '% is append-only', coalesce(parent, TG_TABLE_NAME) USING ERRCODE = 'restrict_violation';
END $$;
