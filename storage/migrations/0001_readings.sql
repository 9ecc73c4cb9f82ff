-- Readings as published by the strip readers, and the dead letters of every path.
CREATE TABLE readings (
    reading_id          uuid        NOT NULL,
    measured_at         timestamptz NOT NULL,
    received_at         timestamptz NOT NULL,
    stored_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    market_id           text        NOT NULL,
    station_id          text        NOT NULL,
    device_id           text        NOT NULL,
    sample_id           text,
    commodity           text        NOT NULL,
    commodity_category  text,
    vendor_id           text,
    certificate_no      text,
    lot_code            text,
    analyte             text        NOT NULL,
    method              text        NOT NULL,
    method_standard     text,
    strip_lot           text        NOT NULL,
    cutoff_ratio        double precision,
    c_line              double precision,
    t_line              double precision,
    inhibition_pct      double precision,
    device_result       text,
    operator_id         text,
    firmware            text,
    raw                 jsonb       NOT NULL,
    -- A hypertable's unique keys must include its time column; a reading_id
    -- always comes with the measured_at it was published with.
    CONSTRAINT readings_reading_id_key UNIQUE (reading_id, measured_at)
);

CREATE INDEX readings_market_time ON readings (market_id, measured_at DESC, reading_id DESC);
CREATE INDEX readings_station_time ON readings (station_id, measured_at DESC);
CREATE INDEX readings_device_time ON readings (device_id, measured_at DESC);
CREATE INDEX readings_analyte_time ON readings (analyte, measured_at DESC);
CREATE INDEX readings_certificate ON readings (certificate_no) WHERE certificate_no IS NOT NULL;
CREATE INDEX readings_lot_code ON readings (lot_code) WHERE lot_code IS NOT NULL;

CREATE TABLE deadletters (
    id            bigserial   PRIMARY KEY,
    received_at   timestamptz NOT NULL,
    stored_at     timestamptz NOT NULL DEFAULT now(),
    source        text        NOT NULL CHECK (source IN ('mqtt', 'http', 'kafka')),
    source_topic  text        NOT NULL,
    code          text        NOT NULL,
    reason        text        NOT NULL,
    raw           bytea       NOT NULL,
    raw_text      text,
    kafka_topic   text        NOT NULL,
    kafka_partition integer   NOT NULL,
    kafka_offset  bigint      NOT NULL,
    CONSTRAINT deadletters_kafka_position UNIQUE (kafka_topic, kafka_partition, kafka_offset)
);
CREATE INDEX deadletters_received ON deadletters (received_at DESC, id DESC);
CREATE INDEX deadletters_code ON deadletters (code, received_at DESC);
