-- metrics.sql for ClickHouse before 20.1 (Debian's 18.16, the test
-- server): no DateTime64, codecs or TTL. Same columns and keys otherwise.
CREATE TABLE IF NOT EXISTS metrics
(
    ts          DateTime,
    device      String,
    metric      String,
    value       Float64,
    tags        String,
    inserted_at DateTime DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (metric, device, ts)
SETTINGS index_granularity = 8192;
