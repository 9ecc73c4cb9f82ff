-- Certificates of conformity and hand-off records: the traceability chain (issue 4).
-- Records are immutable: a correction is a new record whose `supersedes` names the old one.
CREATE TABLE certificates (
    certificate_no    text             PRIMARY KEY,
    kind              text             NOT NULL CHECK (kind IN ('origin', 'handoff', 'split', 'merge')),
    issued_at         timestamptz      NOT NULL,
    lot_code          text,
    product_name      text             NOT NULL,
    product_category  text             NOT NULL,
    quantity_value    double precision NOT NULL CHECK (quantity_value > 0),
    quantity_unit     text             NOT NULL,
    quantity_base     double precision NOT NULL,
    holder_id         text             NOT NULL,
    holder_role       text             NOT NULL,
    market_id         text,
    stall_id          text,
    -- one correction per record; the corrected record stays readable
    supersedes        text             UNIQUE REFERENCES certificates (certificate_no),
    record            jsonb            NOT NULL,   -- the canonical record
    digest            text             NOT NULL CHECK (digest ~ '^[0-9a-f]{64}$'),
    depth             integer          NOT NULL,   -- longest path up to an origin
    stored_at         timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX certificates_lot_code ON certificates (lot_code) WHERE lot_code IS NOT NULL;

-- Parent links with the quantity each child took, and the parent's digest when it was linked.
CREATE TABLE certificate_links (
    child_no        text             NOT NULL REFERENCES certificates (certificate_no),
    parent_no       text             NOT NULL REFERENCES certificates (certificate_no),
    quantity_value  double precision NOT NULL CHECK (quantity_value > 0),
    quantity_unit   text             NOT NULL,
    quantity_base   double precision NOT NULL,
    parent_digest   text             NOT NULL,
    PRIMARY KEY (child_no, parent_no)
);
CREATE INDEX certificate_links_parent ON certificate_links (parent_no) INCLUDE (child_no, quantity_base);

-- Records whose parents (or the record they correct) have not arrived yet.
CREATE TABLE certificate_held (
    certificate_no  text        PRIMARY KEY,
    record          jsonb       NOT NULL,
    waits_for       text[]      NOT NULL,
    raw             bytea       NOT NULL,
    source_topic    text        NOT NULL,
    held_at         timestamptz NOT NULL DEFAULT now()
);
-- What each held record waits for, one row per number (a btree finds the records a new one releases).
CREATE TABLE certificate_waits (
    waiting_no  text NOT NULL REFERENCES certificate_held (certificate_no) ON DELETE CASCADE,
    awaited_no  text NOT NULL,
    PRIMARY KEY (awaited_no, waiting_no)
);
CREATE INDEX certificate_waits_waiting ON certificate_waits (waiting_no);

CREATE FUNCTION rt_certificate_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'certificate records are immutable (% on %); submit a superseding record instead',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END
$$;
CREATE TRIGGER certificates_immutable BEFORE UPDATE OR DELETE ON certificates
    FOR EACH ROW EXECUTE FUNCTION rt_certificate_immutable();
CREATE TRIGGER certificate_links_immutable BEFORE UPDATE OR DELETE ON certificate_links
    FOR EACH ROW EXECUTE FUNCTION rt_certificate_immutable();
