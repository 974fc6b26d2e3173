package ingest

import (
	"fmt"
	"time"
)

// Config configures the ingest pipeline. It is the `ingest` section of the
// Sluice config file.
type Config struct {
	// Durability is the default durability mode: spool, sinks or none.
	// Rules may override it. Default: spool.
	Durability Mode `koanf:"durability"`
	// DataDir holds the spool and the dead-letter store.
	// Default: "sluice-data" (relative to the working directory).
	DataDir string `koanf:"data_dir"`
	// Spool configures the on-disk log.
	Spool SpoolConfig `koanf:"spool"`
	// Retry configures the backoff between attempts of a failing write.
	Retry RetryConfig `koanf:"retry"`
	// Lanes is the number of ordering lanes per sink: messages with the
	// same key (the client id unless a rule sets one) always use the same
	// lane, different keys proceed in parallel. Default: 4.
	Lanes int `koanf:"lanes"`
	// Batch bounds the batches handed to a sink.
	Batch BatchConfig `koanf:"batch"`
	// QueueSize bounds each lane's in-memory queue, in records. When it is
	// full, readers wait (spool mode) or publishers are pushed back
	// (sinks and none modes). Default: 1024.
	QueueSize int `koanf:"queue_size"`
	// ShutdownTimeout bounds how long shutdown waits for in-flight writes
	// to finish before abandoning them (they stay in the spool).
	// Default: 10s.
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
}

// SpoolConfig configures the on-disk log of accepted messages.
type SpoolConfig struct {
	// MaxBytes bounds the spool's size on disk. Default: 1 GiB.
	MaxBytes int64 `koanf:"max_bytes"`
	// Policy says what happens when the spool is full: block (publishers
	// are pushed back; v5 clients get 0x97 after BlockTimeout) or
	// drop_oldest (the oldest segment is deleted; every record lost is
	// counted per sink with reason spool_full). Default: block.
	Policy string `koanf:"policy"`
	// BlockTimeout is how long a publish waits for space under the block
	// policy before it is refused (0x97 for v5; 3.1.1 clients are
	// disconnected without an ack). Default: 5s.
	BlockTimeout time.Duration `koanf:"block_timeout"`
	// CommitInterval is the longest a record waits for its group commit
	// (fsync). Default: 2ms.
	CommitInterval time.Duration `koanf:"commit_interval"`
	// CommitBytes closes a group commit early once this many bytes are
	// pending. Default: 1 MiB.
	CommitBytes int `koanf:"commit_bytes"`
	// SegmentBytes is the size at which a segment file is rolled.
	// Default: 64 MiB.
	SegmentBytes int64 `koanf:"segment_bytes"`
}

// RetryConfig is an exponential backoff with jitter.
type RetryConfig struct {
	// Initial is the first delay. Default: 100ms.
	Initial time.Duration `koanf:"initial"`
	// Max caps the delay. Default: 30s.
	Max time.Duration `koanf:"max"`
	// MaxAttempts dead-letters a record after this many failed attempts;
	// 0 retries forever (the spool keeps the record). Default: 0.
	MaxAttempts int `koanf:"max_attempts"`
}

// BatchConfig bounds batches written to a sink. Sinks may override it.
type BatchConfig struct {
	// MaxRecords is the most records in one batch. Default: 1000.
	MaxRecords int `koanf:"max_records"`
	// MaxBytes is the most value bytes in one batch. Default: 1 MiB.
	MaxBytes int `koanf:"max_bytes"`
	// Linger is how long a partial batch waits for more records.
	// Default: 5ms.
	Linger time.Duration `koanf:"linger"`
}

// DefaultConfig returns the ingest defaults.
func DefaultConfig() Config {
	return Config{
		Durability: ModeSpool,
		DataDir:    "sluice-data",
		Spool: SpoolConfig{
			MaxBytes:       1 << 30,
			Policy:         "block",
			BlockTimeout:   5 * time.Second,
			CommitInterval: 2 * time.Millisecond,
			CommitBytes:    1 << 20,
			SegmentBytes:   64 << 20,
		},
		Retry:           RetryConfig{Initial: 100 * time.Millisecond, Max: 30 * time.Second},
		Lanes:           4,
		Batch:           BatchConfig{MaxRecords: 1000, MaxBytes: 1 << 20, Linger: 5 * time.Millisecond},
		QueueSize:       1024,
		ShutdownTimeout: 10 * time.Second,
	}
}

// Validate reports every problem in c with its key path relative to the
// ingest section.
func (c Config) Validate() []error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if !c.Durability.valid() {
		bad("durability", "must be spool, sinks or none, not %q", c.Durability)
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	if c.Spool.MaxBytes <= 0 {
		bad("spool.max_bytes", "must be positive")
	}
	if c.Spool.Policy != "block" && c.Spool.Policy != "drop_oldest" {
		bad("spool.policy", "must be block or drop_oldest, not %q", c.Spool.Policy)
	}
	if c.Spool.BlockTimeout < 0 {
		bad("spool.block_timeout", "must not be negative")
	}
	if c.Spool.CommitInterval <= 0 {
		bad("spool.commit_interval", "must be positive")
	}
	if c.Spool.SegmentBytes < 4096 {
		bad("spool.segment_bytes", "must be at least 4096")
	}
	if c.Spool.MaxBytes < 2*c.Spool.SegmentBytes {
		bad("spool.max_bytes", "must be at least twice spool.segment_bytes (%d)", c.Spool.SegmentBytes)
	}
	if c.Retry.Initial <= 0 {
		bad("retry.initial", "must be positive")
	}
	if c.Retry.Max < c.Retry.Initial {
		bad("retry.max", "must be at least retry.initial")
	}
	if c.Retry.MaxAttempts < 0 {
		bad("retry.max_attempts", "must not be negative")
	}
	if c.Lanes < 1 || c.Lanes > 1024 {
		bad("lanes", "must be between 1 and 1024")
	}
	if c.Batch.MaxRecords < 1 {
		bad("batch.max_records", "must be at least 1")
	}
	if c.Batch.MaxBytes < 1 {
		bad("batch.max_bytes", "must be at least 1")
	}
	if c.Batch.Linger < 0 {
		bad("batch.linger", "must not be negative")
	}
	if c.QueueSize < 1 {
		bad("queue_size", "must be at least 1")
	}
	return errs
}

func (m Mode) valid() bool { return m == ModeSpool || m == ModeSinks || m == ModeNone }

// rank orders modes by strength; a message takes its strongest output's.
func (m Mode) rank() int {
	switch m {
	case ModeSpool:
		return 3
	case ModeSinks:
		return 2
	case ModeNone:
		return 1
	}
	return 0
}
