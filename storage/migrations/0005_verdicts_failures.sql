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
