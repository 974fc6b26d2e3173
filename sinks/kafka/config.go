package kafka

import (
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/sluicehq/sluice/sinks/internal/secret"
	"github.com/sluicehq/sluice/sinks/internal/tlsfiles"
)

// Config configures a Kafka sink. A zero field means its default, so a
// Config decoded over a zero value (as a map entry is) is complete.
type Config struct {
	// Brokers lists bootstrap brokers as host:port. Required.
	// Default: none.
	Brokers []string `koanf:"brokers"`
	// Topic is the topic of records whose rule renders none. Default: ""
	// (every record must then carry its own topic).
	Topic string `koanf:"topic"`
	// ClientID names Sluice to the brokers (their logs and quotas).
	// Default: sluice.
	ClientID string `koanf:"client_id"`
	// RequiredAcks is the acknowledgement a write waits for: all (every
	// in-sync replica), one (the leader) or none (fire and forget; a
	// record counts as delivered once sent). Default: all.
	RequiredAcks string `koanf:"required_acks"`
	// Compression compresses record batches: none, gzip, snappy, lz4 or
	// zstd. Default: none.
	Compression string `koanf:"compression"`
	// BatchMaxRecords bounds the records of one partition sent in one
	// produce request; larger batches are split. Batching itself (count,
	// bytes, linger) is the runner's: the sink sends what it is given at
	// once. Default: 10000.
	BatchMaxRecords int `koanf:"batch_max_records"`
	// BatchMaxBytes bounds the approximate uncompressed size of one
	// partition's records in one produce request. Keep it under the
	// brokers' message.max.bytes (1048588 by default). Default: 1000000.
	BatchMaxBytes int `koanf:"batch_max_bytes"`
	// WriteTimeout bounds one produce request, acknowledgement included.
	// Default: 10s.
	WriteTimeout time.Duration `koanf:"write_timeout"`
	// DialTimeout bounds opening a connection, TLS and SASL included.
	// Default: 5s.
	DialTimeout time.Duration `koanf:"dial_timeout"`
	// MetadataTTL is how long topic and leader metadata is cached before
	// it is refreshed (sooner after a connection error). Default: 10s.
	MetadataTTL time.Duration `koanf:"metadata_ttl"`
	// AutoCreateTopics asks the brokers to create missing topics (they
	// must allow it: auto.create.topics.enable). Default: false.
	AutoCreateTopics bool `koanf:"auto_create_topics"`
	// TLS configures encrypted connections to the brokers.
	TLS TLSConfig `koanf:"tls"`
	// SASL configures authentication.
	SASL SASLConfig `koanf:"sasl"`
}

// TLSConfig configures TLS to the brokers.
type TLSConfig = tlsfiles.Config

// SASLConfig configures SASL authentication.
type SASLConfig struct {
	// Mechanism is plain, scram-sha-256 or scram-sha-512; "" disables
	// SASL. Default: "".
	Mechanism string `koanf:"mechanism"`
	// Username is the SASL user. Default: "".
	Username string `koanf:"username"`
	// Password is the SASL password; ${NAME} is replaced by environment
	// variable NAME when the sink is built. Default: "".
	Password string `koanf:"password"`
}

// DefaultConfig returns the defaults (Brokers still has to be set).
func DefaultConfig() Config {
	return Config{
		ClientID:        "sluice",
		RequiredAcks:    "all",
		Compression:     "none",
		BatchMaxRecords: 10000,
		BatchMaxBytes:   1000000,
		WriteTimeout:    10 * time.Second,
		DialTimeout:     5 * time.Second,
		MetadataTTL:     10 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(s *string, def string) {
		if *s == "" {
			*s = def
		}
	}
	set(&c.ClientID, d.ClientID)
	set(&c.RequiredAcks, d.RequiredAcks)
	set(&c.Compression, d.Compression)
	if c.BatchMaxRecords == 0 {
		c.BatchMaxRecords = d.BatchMaxRecords
	}
	if c.BatchMaxBytes == 0 {
		c.BatchMaxBytes = d.BatchMaxBytes
	}
	for _, p := range []struct{ v, def *time.Duration }{
		{&c.WriteTimeout, &d.WriteTimeout}, {&c.DialTimeout, &d.DialTimeout}, {&c.MetadataTTL, &d.MetadataTTL},
	} {
		if *p.v == 0 {
			*p.v = *p.def
		}
	}
	return c
}

var (
	acksNames        = []string{"all", "one", "none"}
	compressionNames = []string{"none", "gzip", "snappy", "lz4", "zstd"}
	mechanismNames   = []string{"", "plain", "scram-sha-256", "scram-sha-512"}
)

// Validate reports every problem in c, each with its key path relative
// to the sink's section.
func (c Config) Validate() []error {
	c = c.withDefaults()
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if len(c.Brokers) == 0 {
		bad("brokers", "at least one broker is required")
	}
	for i, b := range c.Brokers {
		if host, port, err := net.SplitHostPort(b); err != nil || host == "" || port == "" {
			bad(fmt.Sprintf("brokers[%d]", i), "want host:port, got %q", b)
		}
	}
	if c.Topic != "" {
		if err := validTopic(c.Topic); err != nil {
			bad("topic", "%v", err)
		}
	}
	if !slices.Contains(acksNames, c.RequiredAcks) {
		bad("required_acks", "must be all, one or none, not %q", c.RequiredAcks)
	}
	if !slices.Contains(compressionNames, c.Compression) {
		bad("compression", "must be none, gzip, snappy, lz4 or zstd, not %q", c.Compression)
	}
	if c.BatchMaxRecords < 1 {
		bad("batch_max_records", "must be at least 1")
	}
	if c.BatchMaxBytes < 1 {
		bad("batch_max_bytes", "must be at least 1")
	}
	if c.WriteTimeout < 0 {
		bad("write_timeout", "must not be negative")
	}
	if c.DialTimeout < 0 {
		bad("dial_timeout", "must not be negative")
	}
	if c.MetadataTTL < 0 {
		bad("metadata_ttl", "must not be negative")
	}
	errs = append(errs, c.TLS.Files().Validate("tls.")...)
	if !c.TLS.Enabled && c.TLS != (TLSConfig{}) {
		bad("tls.enabled", "must be true when other tls settings are given")
	}
	if !slices.Contains(mechanismNames, c.SASL.Mechanism) {
		bad("sasl.mechanism", "must be plain, scram-sha-256 or scram-sha-512, not %q", c.SASL.Mechanism)
	}
	if c.SASL.Mechanism != "" && c.SASL.Username == "" {
		bad("sasl.username", "is required with sasl.mechanism %s", c.SASL.Mechanism)
	}
	if c.SASL.Mechanism == "" && (c.SASL.Username != "" || c.SASL.Password != "") {
		bad("sasl.mechanism", "is required when sasl.username or sasl.password is set")
	}
	if err := secret.Check(c.SASL.Password); err != nil {
		bad("sasl.password", "%v", err)
	}
	return errs
}

// validTopic applies Kafka's topic name rules: 1 to 249 characters of
// ASCII letters, digits, '.', '_' and '-', and not "." or "..".
func validTopic(t string) error {
	if t == "" || len(t) > 249 {
		return fmt.Errorf("topic name %q must be 1 to 249 characters", trunc(t))
	}
	if t == "." || t == ".." {
		return fmt.Errorf("topic name %q is reserved", t)
	}
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("topic name %q has an invalid character %q (want letters, digits, '.', '_', '-')", trunc(t), c)
		}
	}
	return nil
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
