package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/sluicehq/sluice/sinks"
	"github.com/sluicehq/sluice/sinks/internal/testpki"
	"github.com/sluicehq/sluice/sinks/sinktest"
)

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestContract(t *testing.T) {
	sinktest.Run(t, harness(t))
}

func newSink(t testing.TB, cfg Config) *Sink {
	t.Helper()
	s, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func writeOK(t testing.TB, s *Sink, recs []sinks.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Write(ctx, recs); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func readBack(t testing.TB, addr, topic string, n int, opts ...kgo.Opt) []consumed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	got, err := consume(ctx, addr, topic, n, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("consumed %d records from %s, want %d", len(got), topic, n)
	}
	return got
}

func TestHeadersKeysAndOrder(t *testing.T) {
	cl := startCluster(t)
	cfg := DefaultConfig()
	cfg.Brokers = []string{cl.addr}
	cfg.Topic = "events"
	s := newSink(t, cfg)

	recs := sinktest.Records("", 4, 200, "headers")
	at := time.UnixMilli(1_700_000_000_123)
	for i := range recs {
		recs[i].Source.ReceivedAt = at
		recs[i].Source.QoS = byte(i % 3)
		recs[i].Source.UserProperties = []sinks.UserProperty{{Name: "site", Value: "north"}, {Name: "site", Value: "south"}}
	}
	recs[1].Source.ContentType = ""
	writeOK(t, s, recs)
	got := readBack(t, cl.addr, "events", len(recs))

	byValue := map[string]int{}
	for i, r := range recs {
		byValue[string(r.Value)] = i
	}
	partOfKey := map[string]int32{}
	lastOfKey := map[string]int{}
	for _, c := range got {
		i, ok := byValue[string(c.value)]
		if !ok {
			t.Fatalf("unexpected value %q", c.value)
		}
		r := recs[i]
		if !bytes.Equal(c.key, r.Key) {
			t.Fatalf("record %d: key %q, want %q", i, c.key, r.Key)
		}
		if p, ok := partOfKey[string(c.key)]; ok && p != c.partition {
			t.Fatalf("key %s in partitions %d and %d", c.key, p, c.partition)
		}
		partOfKey[string(c.key)] = c.partition
		if last, ok := lastOfKey[string(c.key)]; ok && last > i {
			t.Fatalf("key %s: record %d after %d", c.key, i, last)
		}
		lastOfKey[string(c.key)] = i
		if !c.ts.Equal(at) {
			t.Fatalf("record %d: timestamp %v, want %v", i, c.ts, at)
		}
		want := []kgo.RecordHeader{
			{Key: "mqtt_topic", Value: []byte(r.Source.Topic)},
			{Key: "client_id", Value: []byte(r.Source.ClientID)},
			{Key: "qos", Value: []byte(fmt.Sprint(r.Source.QoS))},
		}
		if r.Source.ContentType != "" {
			want = append(want, kgo.RecordHeader{Key: "content_type", Value: []byte(r.Source.ContentType)})
		}
		want = append(want, kgo.RecordHeader{Key: "site", Value: []byte("north")}, kgo.RecordHeader{Key: "site", Value: []byte("south")})
		if fmt.Sprint(c.headers) != fmt.Sprint(want) {
			t.Fatalf("record %d: headers %q, want %q", i, c.headers, want)
		}
	}
	// murmur2 partitioning like the Java client: with 4 keys over 3
	// partitions, more than one partition is used.
	parts := map[int32]bool{}
	for _, p := range partOfKey {
		parts[p] = true
	}
	if len(parts) < 2 {
		t.Fatalf("all keys in partitions %v, want them spread", parts)
	}
}

func TestTopics(t *testing.T) {
	cl := startCluster(t, kfake.SeedTopics(1, "other", "other2"))
	tests := []struct {
		name         string
		defaultTopic string
		recordTopic  string
		wantTopic    string
		wantErr      string // "", "permanent" or "retryable"
	}{
		{name: "default topic", defaultTopic: "events", wantTopic: "events"},
		{name: "record topic overrides", defaultTopic: "events", recordTopic: "other", wantTopic: "other"},
		{name: "record topic without default", recordTopic: "other2", wantTopic: "other2"},
		{name: "no topic at all", wantErr: "permanent"},
		{name: "invalid topic name", recordTopic: "sensors/room 1", wantErr: "permanent"},
		{name: "unknown topic", recordTopic: "missing", wantErr: "retryable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Brokers = []string{cl.addr}
			cfg.Topic = tt.defaultTopic
			s := newSink(t, cfg)
			recs := sinktest.Records(tt.recordTopic, 1, 1, t.Name())
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := s.Write(ctx, recs)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Write = %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatal("Write = nil, want an error")
			case tt.wantErr == "permanent" && !sinks.IsPermanent(err):
				t.Fatalf("Write = %v, want a permanent error", err)
			case tt.wantErr == "retryable" && sinks.IsPermanent(err):
				t.Fatalf("Write = %v, want a retryable error", err)
			}
			if tt.wantTopic != "" {
				got := readBack(t, cl.addr, tt.wantTopic, 1)
				if !bytes.Equal(got[0].value, recs[0].Value) {
					t.Fatalf("read %q, want %q", got[0].value, recs[0].Value)
				}
			}
		})
	}
}

func TestAutoCreateTopics(t *testing.T) {
	cl := startCluster(t, kfake.AllowAutoTopicCreation())
	cfg := DefaultConfig()
	cfg.Brokers = []string{cl.addr}
	cfg.AutoCreateTopics = true
	s := newSink(t, cfg)
	recs := sinktest.Records("created", 1, 3, "auto")
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.Write(context.Background(), recs)
		if err == nil {
			break
		}
		if sinks.IsPermanent(err) || time.Now().After(deadline) {
			t.Fatalf("Write to an auto-created topic = %v", err)
		}
		time.Sleep(50 * time.Millisecond) // a new topic's leader may take a moment
	}
	readBack(t, cl.addr, "created", 3)
}

func TestCompressionAndAcks(t *testing.T) {
	var topics []string
	for _, codec := range compressionNames {
		for _, acks := range acksNames {
			topics = append(topics, "c-"+codec+"-"+acks)
		}
	}
	cl := startCluster(t, kfake.SeedTopics(2, topics...))
	for _, codec := range compressionNames {
		for _, acks := range acksNames {
			t.Run(codec+"/"+acks, func(t *testing.T) {
				topic := "c-" + codec + "-" + acks
				cfg := DefaultConfig()
				cfg.Brokers = []string{cl.addr}
				cfg.Topic = topic
				cfg.Compression = codec
				cfg.RequiredAcks = acks
				s := newSink(t, cfg)
				recs := sinktest.Records("", 2, 50, t.Name())
				writeOK(t, s, recs)
				got := readBack(t, cl.addr, topic, len(recs))
				for i, c := range got {
					if !strings.Contains(string(c.value), t.Name()) {
						t.Fatalf("record %d: value %q", i, c.value)
					}
				}
			})
		}
	}
}

func TestSplitRequests(t *testing.T) {
	cl := startCluster(t)
	cfg := DefaultConfig()
	cfg.Brokers = []string{cl.addr}
	cfg.Topic = "events"
	cfg.BatchMaxRecords = 7
	cfg.BatchMaxBytes = 2000
	s := newSink(t, cfg)
	recs := sinktest.Records("", 2, 100, "split")
	writeOK(t, s, recs)
	got := readBack(t, cl.addr, "events", 100)
	last := map[string]int{}
	for _, c := range got {
		var seq int
		for i, r := range recs {
			if bytes.Equal(r.Value, c.value) {
				seq = i
			}
		}
		if prev, ok := last[string(c.key)]; ok && prev > seq {
			t.Fatalf("key %s: %d after %d", c.key, seq, prev)
		}
		last[string(c.key)] = seq
	}
}

func TestMessageTooLarge(t *testing.T) {
	cl := startCluster(t, kfake.BrokerConfigs(map[string]string{"message.max.bytes": "4000"}))
	cfg := DefaultConfig()
	cfg.Brokers = []string{cl.addr}
	cfg.Topic = "events"
	cfg.Compression = "none"
	s := newSink(t, cfg)
	recs := sinktest.Records("", 1, 40, "big")
	recs[7].Value = bytes.Repeat([]byte("x"), 10000)
	err := s.Write(context.Background(), recs)
	var be *sinks.BatchError
	if !errors.As(err, &be) {
		t.Fatalf("Write = %v, want a *BatchError", err)
	}
	if len(be.Failed) != 1 || be.Failed[0].Index != 7 || !sinks.IsPermanent(be.Failed[0].Err) {
		t.Fatalf("failed = %v, want only #7, permanently", be.Failed)
	}
	// The other 39 records, together over 4000 bytes, were split until
	// they fit.
	readBack(t, cl.addr, "events", 39)
}

func TestSASL(t *testing.T) {
	cl := startCluster(t, kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "plainuser", "plainpass"),
		kfake.Superuser("SCRAM-SHA-256", "scram256", "pass256"),
		kfake.Superuser("SCRAM-SHA-512", "scram512", "pass512"))
	t.Setenv("SLUICE_TEST_KAFKA_PASS", "pass512")
	tests := []struct {
		name    string
		sasl    SASLConfig
		wantErr bool
	}{
		{name: "plain", sasl: SASLConfig{Mechanism: "plain", Username: "plainuser", Password: "plainpass"}},
		{name: "scram-sha-256", sasl: SASLConfig{Mechanism: "scram-sha-256", Username: "scram256", Password: "pass256"}},
		{name: "scram-sha-512 from env", sasl: SASLConfig{Mechanism: "scram-sha-512", Username: "scram512", Password: "${SLUICE_TEST_KAFKA_PASS}"}},
		{name: "wrong password", sasl: SASLConfig{Mechanism: "scram-sha-256", Username: "scram256", Password: "nope"}, wantErr: true},
		{name: "no sasl", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Brokers = []string{cl.addr}
			cfg.Topic = "events"
			cfg.SASL = tt.sasl
			s := newSink(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := s.Connect(ctx)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Connect = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if werr := s.Write(ctx, sinktest.Records("", 1, 1, t.Name())); werr == nil || sinks.IsPermanent(werr) {
					t.Fatalf("Write without authentication = %v, want a retryable error", werr)
				}
				return
			}
			writeOK(t, s, sinktest.Records("", 1, 1, t.Name()))
		})
	}
	readBack(t, cl.addr, "events", 3, kgo.SASL(plain.Auth{User: "plainuser", Pass: "plainpass"}.AsMechanism()))
}

func TestTLS(t *testing.T) {
	pki := testpki.New(t)
	cl := startCluster(t, kfake.TLS(pki.ServerConfig(true)))
	tests := []struct {
		name    string
		tls     TLSConfig
		wantErr bool
	}{
		{name: "ca and client certificate", tls: TLSConfig{Enabled: true, CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}},
		{name: "insecure skip verify", tls: TLSConfig{Enabled: true, InsecureSkipVerify: true, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}},
		{name: "unknown CA", tls: TLSConfig{Enabled: true, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}, wantErr: true},
		{name: "no client certificate", tls: TLSConfig{Enabled: true, CAFile: pki.CAFile}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Brokers = []string{cl.addr}
			cfg.Topic = "events"
			cfg.TLS = tt.tls
			cfg.DialTimeout = 2 * time.Second
			s := newSink(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := s.Connect(ctx)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Connect = %v, want error %v", err, tt.wantErr)
			}
			if err == nil {
				writeOK(t, s, sinktest.Records("", 1, 5, t.Name()))
			}
		})
	}
}

func TestConnect(t *testing.T) {
	cl := startCluster(t)
	tests := []struct {
		name    string
		brokers []string
		topic   string
		wantErr bool
	}{
		{name: "reachable", brokers: []string{cl.addr}, topic: "events"},
		{name: "no default topic", brokers: []string{cl.addr}},
		{name: "default topic missing", brokers: []string{cl.addr}, topic: "missing", wantErr: true},
		{name: "nothing listening", brokers: []string{"127.0.0.1:1"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSink(t, Config{Brokers: tt.brokers, Topic: tt.topic, DialTimeout: time.Second})
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			if err := s.Connect(ctx); (err != nil) != tt.wantErr {
				t.Fatalf("Connect = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		permanent bool
	}{
		{name: "message too large", err: fmt.Errorf("x: %w", kafkago.MessageSizeTooLarge), permanent: true},
		{name: "invalid topic", err: kafkago.InvalidTopic, permanent: true},
		{name: "topic authorization", err: kafkago.TopicAuthorizationFailed, permanent: true},
		{name: "not leader", err: kafkago.NotLeaderForPartition},
		{name: "leader not available", err: kafkago.LeaderNotAvailable},
		{name: "request timed out", err: kafkago.RequestTimedOut},
		{name: "not enough replicas", err: kafkago.NotEnoughReplicas},
		{name: "sasl authentication", err: kafkago.SASLAuthenticationFailed},
		{name: "network", err: errors.New("dial tcp 127.0.0.1:9092: connection refused")},
		{name: "deadline", err: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sinks.IsPermanent(Classify(tt.err)); got != tt.permanent {
				t.Fatalf("IsPermanent(Classify(%v)) = %v, want %v", tt.err, got, tt.permanent)
			}
		})
	}
}
