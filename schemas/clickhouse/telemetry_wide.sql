-- Manufacturing telemetry, wide layout: one row per device reading, one
-- column per measurement. For current ClickHouse releases (22.x and later).
--
-- The columns match the `line-telemetry` example rule's transform output
-- (see sinks/clickhouse/README.md): the sink fills each column from the
-- JSON field of the same name. Measurements are Nullable because devices
-- report different subsets; a missing one is stored as NULL.
--
-- ORDER BY starts with the columns dashboards filter on (site, line,
-- device) and ends with time, so a device's readings are contiguous and
-- time ranges prune granules. Partitions are months: few parts, cheap TTL
-- drops. Rows older than 90 days are deleted (change the TTL to taste).
CREATE TABLE IF NOT EXISTS telemetry
(
    ts          DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    site        LowCardinality(String),
    line        LowCardinality(String),
    device      LowCardinality(String),
    temperature Nullable(Float32),
    pressure    Nullable(Float32),
    vibration   Nullable(Float32),
    rpm         Nullable(UInt32),
    power_kw    Nullable(Float32),
    state       LowCardinality(String),
    inserted_at DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (site, line, device, ts)
TTL toDateTime(ts) + INTERVAL 90 DAY DELETE
SETTINGS index_granularity = 8192;
