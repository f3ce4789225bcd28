-- abmesh's PostgreSQL schema, version 1. Applied by internal/adapter/postgres
-- on open (goose); never edit an applied migration, add the next one.

-- +goose Up
-- The configuration version; the row is locked by every config write.
CREATE TABLE config_meta (
    id      int PRIMARY KEY CHECK (id = 1),
    version bigint NOT NULL
);
INSERT INTO config_meta VALUES (1, 0);

-- Config entities: the domain type as JSON and its resource version (the
-- configuration version that last wrote it).
CREATE TABLE experiments (
    id   text PRIMARY KEY,
    rv   bigint NOT NULL,
    body jsonb NOT NULL
);
CREATE TABLE layers (
    id   text PRIMARY KEY,
    rv   bigint NOT NULL,
    body jsonb NOT NULL
);
CREATE TABLE overrides (
    experiment text NOT NULL,
    unit       text NOT NULL,
    rv         bigint NOT NULL,
    body       jsonb NOT NULL,
    PRIMARY KEY (experiment, unit)
);
-- json, not jsonb: an entry reads back byte for byte (before/after).
CREATE TABLE audit_log (
    seq  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body json NOT NULL
);
CREATE TABLE sticky (
    test    text NOT NULL,
    unit    text NOT NULL,
    variant text NOT NULL,
    phase   int NOT NULL,
    PRIMARY KEY (test, unit)
);
-- Named values of other packages (the service graph).
CREATE TABLE blobs (
    name  text PRIMARY KEY,
    value bytea NOT NULL
);
-- Analysis windows: the snapshot as JSON, and the units' running totals
-- (uint64 keys and cells stored bit for bit in bigint).
CREATE TABLE windows (
    viewpoint text NOT NULL,
    seq       int NOT NULL,
    cells     json NOT NULL,
    PRIMARY KEY (viewpoint, seq)
);
CREATE TABLE units (
    viewpoint text NOT NULL,
    seq       int NOT NULL,
    key       bigint NOT NULL,
    cell      bigint NOT NULL,
    sum       double precision NOT NULL,
    requests  bigint NOT NULL,
    non_zero  boolean NOT NULL,
    PRIMARY KEY (viewpoint, seq, key)
);

-- +goose Down
DROP TABLE units, windows, blobs, sticky, audit_log, overrides, layers, experiments, config_meta;
