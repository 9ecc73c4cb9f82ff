-- Dead letters are keyed by the id given where they were made (schemas/deadletter.py), never by
-- their Kafka position: a log that starts over (a memory-only broker restarted, a topic recreated)
-- hands out the same offsets again, and the old unique rule silently dropped every new dead letter
-- whose position an earlier run had used.
--
-- Rows stored before this migration (v1 values, no id) get the deterministic id of their content and
-- time, the same one schemas.deadletter.content_id gives a v1 value read again.
ALTER TABLE deadletters ADD COLUMN deadletter_id uuid;

UPDATE deadletters SET deadletter_id = md5(
    source || E'\n' || source_topic || E'\n' || code || E'\n' || reason || E'\n' || encode(raw, 'hex')
    || E'\n' || (extract(epoch FROM received_at) * 1000000)::bigint::text
)::uuid;

-- The same dead letter produced twice (a producer retry) under two positions: keep the first.
DELETE FROM deadletters d USING deadletters e
 WHERE d.deadletter_id = e.deadletter_id AND d.id > e.id;

ALTER TABLE deadletters ALTER COLUMN deadletter_id SET NOT NULL;
ALTER TABLE deadletters ADD CONSTRAINT deadletters_deadletter_id_key UNIQUE (deadletter_id);
ALTER TABLE deadletters DROP CONSTRAINT deadletters_kafka_position;
-- The Kafka position stays, as where the dead letter was last read from.

-- Each time a consumer found its Kafka log started over (a memory-only broker restarted, a topic
-- recreated, its position out of range): /healthz reports the recent ones.
CREATE TABLE kafka_log_resets (
    id                 bigserial   PRIMARY KEY,
    detected_at        timestamptz NOT NULL DEFAULT now(),
    consumer           text        NOT NULL,
    topic              text        NOT NULL,
    reason             text        NOT NULL,
    partitions         integer[]   NOT NULL,
    records_maybe_lost bigint      NOT NULL CHECK (records_maybe_lost >= 0)
);
CREATE INDEX kafka_log_resets_detected ON kafka_log_resets (detected_at DESC);
