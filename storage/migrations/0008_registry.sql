-- Issue 12: the registry of markets, their stations and the administrative regions they sit in.
-- Readings never reference it (no foreign key): a reading of an unregistered market is stored
-- like any other and shows up in GET /v1/markets/unregistered.

-- Statistical division codes, 12 digits: 6 county, 3 town, 3 village (000 where the level ends).
CREATE TABLE regions (
    code        text        PRIMARY KEY CHECK (code ~ '^[0-9]{12}$'),
    level       text        NOT NULL CHECK (level IN ('county', 'town', 'village')),
    name_zh     text        NOT NULL CHECK (length(name_zh) BETWEEN 1 AND 100),
    name_en     text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT regions_level_shape CHECK (
        (level = 'county' AND substr(code, 7) = '000000')
        OR (level = 'town' AND substr(code, 7, 3) <> '000' AND substr(code, 10) = '000')
        OR (level = 'village' AND substr(code, 7, 3) <> '000' AND substr(code, 10) <> '000'))
);

CREATE TABLE markets (
    market_id    text        PRIMARY KEY CHECK (market_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    name_zh      text        NOT NULL CHECK (length(name_zh) BETWEEN 1 AND 200),
    name_en      text        CHECK (length(name_en) <= 200),
    market_kind  text        NOT NULL CHECK (market_kind IN ('farmers', 'wholesale', 'supermarket', 'village_station')),
    -- its town (village part 000) or village; never a whole county
    region_code  text        NOT NULL CHECK (region_code ~ '^[0-9]{12}$' AND substr(region_code, 7, 3) <> '000'),
    grid_id      text        CHECK (length(grid_id) BETWEEN 1 AND 64),
    address      text        CHECK (length(address) <= 500),
    time_zone    text        NOT NULL DEFAULT 'Asia/Shanghai',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    updated_by   text        NOT NULL
);
CREATE INDEX markets_region ON markets (region_code);
CREATE INDEX markets_grid ON markets (grid_id) WHERE grid_id IS NOT NULL;

-- A station (快检室) of a market; hours: {"mon": "06:00-18:00", ..., "sun": null} (null or absent: closed).
CREATE TABLE stations (
    market_id   text        NOT NULL REFERENCES markets (market_id) ON DELETE CASCADE,
    station_id  text        NOT NULL CHECK (station_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    hours       jsonb       NOT NULL CHECK (jsonb_typeof(hours) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text        NOT NULL,
    PRIMARY KEY (market_id, station_id)
);
