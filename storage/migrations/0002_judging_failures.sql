-- Issue 3: the strip-lot threshold registry, server verdicts, failures and
-- their append-only workflow history, the alert outbox, device activity.

-- Versioned thresholds: a reading is judged with the newest row per scope
-- whose valid_from <= its measured_at (domain.judging.resolve).  Rows are
-- never updated: a change is a new version.
CREATE TABLE threshold_sets (
    id          bigserial   PRIMARY KEY,
    scope       text        NOT NULL CHECK (scope IN ('project', 'analyte', 'strip_lot')),
    analyte     text,
    strip_lot   text,
    valid_from  timestamptz NOT NULL,
    params      jsonb       NOT NULL CHECK (jsonb_typeof(params) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    created_by  text        NOT NULL DEFAULT 'system',
    note        text,
    CONSTRAINT threshold_sets_scope_keys CHECK (
        (scope = 'project' AND analyte IS NULL AND strip_lot IS NULL)
        OR (scope = 'analyte' AND analyte IS NOT NULL AND strip_lot IS NULL)
        OR (scope = 'strip_lot' AND analyte IS NOT NULL AND strip_lot IS NOT NULL))
);
CREATE UNIQUE INDEX threshold_sets_version
    ON threshold_sets (scope, coalesce(analyte, ''), coalesce(strip_lot, ''), valid_from);

-- DOMAIN.md §1 project defaults (uncertain; a regulator edits them through the API).
INSERT INTO threshold_sets (scope, valid_from, params, note) VALUES (
    'project', '1970-01-01T00:00:00Z',
    '{"mode": "ratio", "c_min": 100.0, "r_pos": 0.80, "r_neg": 0.95, "inhibition_fail_pct": 50.0}',
    'DOMAIN.md project defaults (uncertain)');

CREATE FUNCTION rt_forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER threshold_sets_append_only BEFORE UPDATE OR DELETE ON threshold_sets
    FOR EACH ROW EXECUTE FUNCTION rt_forbid_change();

-- Every distinct resolved threshold set a verdict was judged with, by the
-- SHA-256 of its canonical JSON (verdicts name it instead of repeating it).
CREATE TABLE threshold_snapshots (
    digest      text        PRIMARY KEY,
    thresholds  jsonb       NOT NULL,
    first_used  timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER threshold_snapshots_append_only BEFORE UPDATE OR DELETE ON threshold_snapshots
    FOR EACH ROW EXECUTE FUNCTION rt_forbid_change();

-- The server's verdict beside the device's, with the thresholds it used.
-- Keyed like readings: a hypertable's unique keys must include its time column.
CREATE TABLE verdicts (
    reading_id          uuid        NOT NULL,
    measured_at         timestamptz NOT NULL,
    received_at         timestamptz NOT NULL,
    judged_at           timestamptz NOT NULL DEFAULT now(),
    market_id           text        NOT NULL,
    station_id          text        NOT NULL,
    device_id           text        NOT NULL,
    analyte             text        NOT NULL,
    commodity           text        NOT NULL,
    commodity_category  text,
    region_code         text        NOT NULL DEFAULT '',
    strip_lot           text        NOT NULL,
    method              text        NOT NULL,
    device_result       text,
    server_result       text        NOT NULL CHECK (server_result IN ('negative', 'positive', 'suspicious', 'invalid')),
    rule                text        NOT NULL,
    reason              text        NOT NULL,
    ratio               double precision,
    concentration       double precision,
    device_cutoff       double precision,
    verdict_mismatch    boolean     NOT NULL,
    cutoff_mismatch     boolean     NOT NULL,
    thresholds_digest   text        NOT NULL,  -- threshold_snapshots.digest
    CONSTRAINT verdicts_pkey PRIMARY KEY (reading_id, measured_at)
);
CREATE INDEX verdicts_device_time ON verdicts (device_id, measured_at DESC);
CREATE INDEX verdicts_lot_time ON verdicts (analyte, strip_lot, measured_at DESC);
-- (lookups by reading_id alone use the primary key's leading column)

-- Verdicts are facts: no update or delete, on either storage path (a row
-- trigger, which hypertables support; the plain path's rollups and the
-- TimescaleDB continuous aggregates both count each verdict once).
CREATE TRIGGER verdicts_append_only BEFORE UPDATE OR DELETE ON verdicts
    FOR EACH ROW EXECUTE FUNCTION rt_forbid_change();

-- One row per failure; workflow columns are a cache of failure_events
-- (domain.workflow.current), rewritten in the same transaction as each event.
CREATE TABLE failures (
    failure_id          uuid        PRIMARY KEY,
    dedup_key           text        NOT NULL UNIQUE,
    kind                text        NOT NULL,
    workflow            text        NOT NULL CHECK (workflow IN ('screen', 'review')),
    raised_at           timestamptz NOT NULL,
    summary             text        NOT NULL,
    details             jsonb       NOT NULL DEFAULT '{}',
    reading_id          uuid,
    measured_at         timestamptz,
    market_id           text,
    station_id          text,
    device_id           text,
    analyte             text,
    commodity           text,
    commodity_category  text,
    region_code         text        NOT NULL DEFAULT '',
    strip_lot           text,
    sample_id           text,
    vendor_id           text,
    certificate_no      text,
    lot_code            text,
    subject             text,
    parent_failure_id   uuid        REFERENCES failures (failure_id),
    wholesale           boolean     NOT NULL DEFAULT false,
    state               text        NOT NULL,
    state_since         timestamptz NOT NULL,
    due_at              timestamptz,
    closed_at           timestamptz
);
CREATE INDEX failures_raised ON failures (raised_at DESC, failure_id DESC);
CREATE INDEX failures_market_raised ON failures (market_id, raised_at DESC);
CREATE INDEX failures_open_due ON failures (due_at) WHERE closed_at IS NULL;
CREATE INDEX failures_open_subject ON failures (kind, subject) WHERE closed_at IS NULL;
CREATE INDEX failures_reading ON failures (reading_id);

-- The workflow history: append-only; seq orders the live stream (SSE ids).
-- Writers take pg_advisory_xact_lock(7520121) just before inserting, so seq
-- order is commit order and a reader that has passed seq N never misses one.
CREATE TABLE failure_events (
    seq          bigserial   PRIMARY KEY,
    failure_id   uuid        NOT NULL REFERENCES failures (failure_id),
    action       text        NOT NULL,
    from_state   text,
    to_state     text        NOT NULL,
    actor        text        NOT NULL,
    role         text        NOT NULL,
    at           timestamptz NOT NULL,
    note         text,
    evidence     jsonb       NOT NULL DEFAULT '{}',
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX failure_events_failure ON failure_events (failure_id, seq);

CREATE TRIGGER failure_events_append_only BEFORE UPDATE OR DELETE ON failure_events
    FOR EACH ROW EXECUTE FUNCTION rt_forbid_change();

-- Transactional outbox: a failure's alert row commits with the failure; the
-- flagger publishes pending rows to rt.alerts.v1 after the commit and marks them.
CREATE TABLE alert_outbox (
    failure_id  uuid        PRIMARY KEY REFERENCES failures (failure_id),
    market_id   text,
    payload     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);
CREATE INDEX alert_outbox_pending ON alert_outbox (created_at) WHERE sent_at IS NULL;

-- What the flagger has seen of each reader (GET /v1/devices, silence detection).
CREATE TABLE device_activity (
    device_id         text        PRIMARY KEY,
    market_id         text        NOT NULL,
    station_id        text        NOT NULL,
    first_seen        timestamptz NOT NULL,
    last_measured_at  timestamptz NOT NULL,
    last_received_at  timestamptz NOT NULL,
    tests             bigint      NOT NULL DEFAULT 0,
    negative          bigint      NOT NULL DEFAULT 0,
    positive          bigint      NOT NULL DEFAULT 0,
    suspicious        bigint      NOT NULL DEFAULT 0,
    invalid           bigint      NOT NULL DEFAULT 0,
    verdict_mismatch  bigint      NOT NULL DEFAULT 0
);
CREATE INDEX device_activity_market ON device_activity (market_id, device_id);
