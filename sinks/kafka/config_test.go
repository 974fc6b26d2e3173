package kafka

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		paths []string // key paths of the expected errors, in order
	}{
		{name: "minimal", cfg: Config{Brokers: []string{"localhost:9092"}}},
		{name: "defaults are valid with brokers", cfg: func() Config { c := DefaultConfig(); c.Brokers = []string{"[::1]:9092"}; return c }()},
		{name: "no brokers", cfg: Config{}, paths: []string{"brokers"}},
		{name: "broker without port", cfg: Config{Brokers: []string{"a:1", "kafka"}}, paths: []string{"brokers[1]"}},
		{name: "bad default topic", cfg: Config{Brokers: []string{"a:1"}, Topic: "a/b"}, paths: []string{"topic"}},
		{name: "tls settings without enabled", cfg: Config{Brokers: []string{"a:1"}, TLS: TLSConfig{CAFile: "ca.pem"}}, paths: []string{"tls.enabled"}},
		{name: "sasl without user", cfg: Config{Brokers: []string{"a:1"}, SASL: SASLConfig{Mechanism: "plain"}}, paths: []string{"sasl.username"}},
		{name: "user without mechanism", cfg: Config{Brokers: []string{"a:1"}, SASL: SASLConfig{Username: "u"}}, paths: []string{"sasl.mechanism"}},
		{name: "everything wrong", cfg: Config{
			Brokers: []string{"a:1"}, RequiredAcks: "some", Compression: "brotli", BatchMaxRecords: -1, BatchMaxBytes: -1,
			WriteTimeout: -time.Second, DialTimeout: -time.Second, MetadataTTL: -time.Second,
			TLS:  TLSConfig{Enabled: true, KeyFile: "k.pem"},
			SASL: SASLConfig{Mechanism: "gssapi", Username: "u", Password: "${"},
		}, paths: []string{"required_acks", "compression", "batch_max_records", "batch_max_bytes", "write_timeout", "dial_timeout", "metadata_ttl", "tls.cert_file", "sasl.mechanism", "sasl.password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.cfg.Validate()
			if len(errs) != len(tt.paths) {
				t.Fatalf("Validate() = %v, want errors at %v", errs, tt.paths)
			}
			for i, err := range errs {
				if !strings.HasPrefix(err.Error(), tt.paths[i]+": ") {
					t.Fatalf("error %d = %q, want it at %s", i, err, tt.paths[i])
				}
			}
		})
	}
}

func TestValidTopic(t *testing.T) {
	tests := []struct {
		topic string
		ok    bool
	}{
		{"events", true}, {"a.b_c-D9", true}, {strings.Repeat("x", 249), true},
		{"", false}, {".", false}, {"..", false}, {"a b", false}, {"a/b", false}, {strings.Repeat("x", 250), false}, {"é", false},
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			if err := validTopic(tt.topic); (err == nil) != tt.ok {
				t.Fatalf("validTopic(%q) = %v, want ok %v", tt.topic, err, tt.ok)
			}
		})
	}
}
