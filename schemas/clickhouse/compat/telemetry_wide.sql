-- telemetry_wide.sql for ClickHouse before 20.1 (Debian's 18.16, the test
-- server): no DateTime64 (seconds only), no column codecs (19.1), no TTL
-- (19.6), LowCardinality only with allow_experimental_low_cardinality_type.
-- Same columns and keys otherwise; the sink writes both alike.
CREATE TABLE IF NOT EXISTS telemetry
(
    ts          DateTime,
    site        String,
    line        String,
    device      String,
    temperature Nullable(Float32),
    pressure    Nullable(Float32),
    vibration   Nullable(Float32),
    rpm         Nullable(UInt32),
    power_kw    Nullable(Float32),
    state       String,
    inserted_at DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (site, line, device, ts)
SETTINGS index_granularity = 8192;
