-- Manufacturing telemetry, narrow layout: one row per (device, metric,
-- reading). For current ClickHouse releases (22.x and later).
--
-- Suits fleets whose devices report many, changing metrics: a new metric
-- needs no ALTER. tags holds the reading's labels as a JSON object's text
-- (query with JSONExtractString(tags, 'line')); the sink writes an object
-- field into a String column as its JSON text.
--
-- ORDER BY (metric, device, ts): a dashboard panel reads one metric for a
-- set of devices over a time range, which is one contiguous key range per
-- device. Gorilla and Delta codecs suit slowly changing floats and
-- regular timestamps. Partitions are days, as narrow tables are large;
-- rows older than 30 days are deleted.
CREATE TABLE IF NOT EXISTS metrics
(
    ts          DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    device      LowCardinality(String),
    metric      LowCardinality(String),
    value       Float64 CODEC(Gorilla, ZSTD(1)),
    tags        String CODEC(ZSTD(3)),
    inserted_at DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (metric, device, ts)
TTL toDateTime(ts) + INTERVAL 30 DAY DELETE
SETTINGS index_granularity = 8192;
