-- Access: MQTT accounts of readers and the bridge, API bearer tokens, the audit log.

-- The device registry. Each reader has one MQTT account (username = device_id)
-- that may publish only to its own readings topic; the bridge has a 'bridge'
-- account. Only Mosquitto $7$ (PBKDF2-SHA512) hashes are kept, never a password.
-- A revoked account stays here (revoked_at) and leaves Mosquitto's files.
CREATE TABLE mqtt_accounts (
    username       text        PRIMARY KEY CHECK (username ~ '^[A-Za-z0-9._-]{1,64}$'),
    kind           text        NOT NULL CHECK (kind IN ('device', 'bridge')),
    market_id      text,
    station_id     text,
    device_id      text,
    password_hash  text        NOT NULL CHECK (password_hash ~ '^\$[67]\$'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    created_by     text        NOT NULL,
    rotated_at     timestamptz,
    revoked_at     timestamptz,
    revoked_by     text,
    CONSTRAINT mqtt_accounts_device_ids CHECK (
        (kind = 'device') = (market_id IS NOT NULL AND station_id IS NOT NULL AND device_id IS NOT NULL)
    ),
    CONSTRAINT mqtt_accounts_device_username CHECK (kind <> 'device' OR username = device_id)
);

CREATE INDEX mqtt_accounts_market ON mqtt_accounts (market_id, device_id) WHERE kind = 'device';

-- API bearer tokens: only the SHA-256 of a token is kept; token_id is its public
-- handle (shown in lists, used to revoke). An operator is scoped to markets, a
-- producer to its holder id; rate_per_minute bounds each token's requests.
CREATE TABLE api_tokens (
    token_id         text        PRIMARY KEY,
    token_sha256     bytea       NOT NULL UNIQUE CHECK (octet_length(token_sha256) = 32),
    name             text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    role             text        NOT NULL CHECK (role IN ('regulator', 'operator', 'producer')),
    markets          text[],
    holder_id        text,
    rate_per_minute  integer     NOT NULL DEFAULT 600 CHECK (rate_per_minute > 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    created_by       text        NOT NULL,
    expires_at       timestamptz,
    revoked_at       timestamptz,
    revoked_by       text,
    CONSTRAINT api_tokens_operator_markets CHECK (
        (role = 'operator') = (markets IS NOT NULL AND cardinality(markets) > 0)
    ),
    CONSTRAINT api_tokens_producer_holder CHECK ((role = 'producer') = (holder_id IS NOT NULL))
);

-- Every write through the API or the admin CLI: who, what, on which target, when.
-- Append-only: UPDATE, DELETE and TRUNCATE are refused by triggers.
CREATE TABLE audit_log (
    id       bigserial   PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text        NOT NULL,
    action   text        NOT NULL,
    target   text        NOT NULL,
    details  jsonb       NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_actor ON audit_log (actor, at DESC);
CREATE INDEX audit_log_target ON audit_log (target, at DESC);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
