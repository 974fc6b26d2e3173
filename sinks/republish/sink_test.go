package republish

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/sinks"
)

// fakePublisher records what is published; fail, when set, decides an
// error per message.
type fakePublisher struct {
	mu   sync.Mutex
	msgs []*broker.Message
	fail func(m *broker.Message) error
}

func (p *fakePublisher) Publish(m *broker.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		if err := p.fail(m); err != nil {
			return err
		}
	}
	cp := *m
	p.msgs = append(p.msgs, &cp)
	return nil
}

func props(kv ...string) []sinks.UserProperty {
	var out []sinks.UserProperty
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, sinks.UserProperty{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func TestHops(t *testing.T) {
	tests := []struct {
		name      string
		in        []sinks.UserProperty
		maxHops   int
		wantProps string // published user properties, "" when dead-lettered
	}{
		{name: "first hop", in: props("site", "north"), wantProps: "[{site north} {sluice-hop 1}]"},
		{name: "counted up", in: props("sluice-hop", "3", "site", "north"), wantProps: "[{site north} {sluice-hop 4}]"},
		{name: "last allowed hop", in: props("sluice-hop", "7"), wantProps: "[{sluice-hop 8}]"},
		{name: "at the limit", in: props("sluice-hop", "8")},
		{name: "beyond the limit", in: props("sluice-hop", "42")},
		{name: "custom limit", in: props("sluice-hop", "2"), maxHops: 2},
		{name: "malformed counts as zero", in: props("sluice-hop", "x"), wantProps: "[{sluice-hop 1}]"},
		{name: "negative counts as zero", in: props("sluice-hop", "-5"), wantProps: "[{sluice-hop 1}]"},
		{name: "largest of several", in: props("sluice-hop", "2", "a", "b", "sluice-hop", "5"), wantProps: "[{a b} {sluice-hop 6}]"},
		{name: "repeated properties kept in order", in: props("a", "1", "a", "2"), wantProps: "[{a 1} {a 2} {sluice-hop 1}]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := &fakePublisher{}
			s, err := New(Config{MaxHops: tt.maxHops}, pub, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Write(context.Background(), []sinks.Record{{Topic: "out", Value: []byte("v"), Source: sinks.Source{UserProperties: tt.in}}})
			if tt.wantProps == "" {
				if !sinks.IsPermanent(err) || !strings.Contains(err.Error(), "max_hops") {
					t.Fatalf("Write = %v, want a permanent max_hops error", err)
				}
				if len(pub.msgs) != 0 {
					t.Fatalf("published %d messages past max_hops", len(pub.msgs))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(pub.msgs[0].UserProperties); got != tt.wantProps {
				t.Fatalf("user properties %s, want %s", got, tt.wantProps)
			}
		})
	}
}

func TestMessage(t *testing.T) {
	pub := &fakePublisher{}
	s, err := New(Config{Topic: "default/out"}, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	recs := []sinks.Record{
		{Topic: "alerts/high", Value: []byte(`{"t":30}`), QoS: 2, Retain: true,
			Source: sinks.Source{Topic: "in/1", ClientID: "dev1", Username: "alice", ContentType: "application/json"}},
		{Value: []byte("to the default"), QoS: 0},
	}
	if err := s.Write(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	m := pub.msgs[0]
	if m.Topic != "alerts/high" || string(m.Payload) != `{"t":30}` || m.QoS != 2 || !m.Retain ||
		m.ClientID != "dev1" || m.Username != "alice" || m.ContentType != "application/json" {
		t.Fatalf("published %+v", m)
	}
	if m := pub.msgs[1]; m.Topic != "default/out" || m.QoS != 0 || m.Retain {
		t.Fatalf("published %+v", m)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name       string
		defTopic   string
		rec        sinks.Record
		pubErr     error
		wantPerm   bool
		wantFailed bool
	}{
		{name: "no topic", rec: sinks.Record{}, wantFailed: true, wantPerm: true},
		{name: "wildcard topic", rec: sinks.Record{Topic: "a/+/b"}, wantFailed: true, wantPerm: true},
		{name: "empty level is fine", rec: sinks.Record{Topic: "a//b"}},
		{name: "invalid qos", rec: sinks.Record{Topic: "a", QoS: 3}, wantFailed: true, wantPerm: true},
		{name: "broker error is retryable", rec: sinks.Record{Topic: "a"}, pubErr: errors.New("server closing"), wantFailed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub := &fakePublisher{fail: func(*broker.Message) error { return tt.pubErr }}
			s, err := New(Config{Topic: tt.defTopic}, pub, nil)
			if err != nil {
				t.Fatal(err)
			}
			ok := sinks.Record{Topic: "fine", Value: []byte("x")}
			batch := []sinks.Record{ok, tt.rec, ok}
			if tt.pubErr != nil {
				batch = []sinks.Record{tt.rec}
			}
			err = s.Write(context.Background(), batch)
			if !tt.wantFailed {
				if err != nil {
					t.Fatalf("Write = %v", err)
				}
				return
			}
			if tt.pubErr != nil {
				if err == nil || sinks.IsPermanent(err) {
					t.Fatalf("Write = %v, want a retryable error", err)
				}
				return
			}
			var be *sinks.BatchError
			if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[0].Index != 1 || sinks.IsPermanent(be.Failed[0].Err) != tt.wantPerm {
				t.Fatalf("Write = %v, want record #1 failed (permanent %v)", err, tt.wantPerm)
			}
			if len(pub.msgs) != 2 {
				t.Fatalf("published %d, want the 2 good records", len(pub.msgs))
			}
		})
	}
}

func TestCancelMidBatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	pub := &fakePublisher{fail: func(*broker.Message) error {
		if n++; n == 2 {
			cancel()
		}
		return nil
	}}
	s, _ := New(Config{Topic: "t"}, pub, nil)
	batch := make([]sinks.Record, 5)
	err := s.Write(ctx, batch)
	var be *sinks.BatchError
	if !errors.As(err, &be) || len(be.Failed) != 3 || be.Failed[0].Index != 2 || !errors.Is(be.Failed[0].Err, context.Canceled) {
		t.Fatalf("Write = %v, want records 2..4 failed with context.Canceled", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want int
	}{
		{name: "zero", cfg: Config{}},
		{name: "defaults", cfg: DefaultConfig()},
		{name: "topic", cfg: Config{Topic: "a/b"}},
		{name: "wildcard topic", cfg: Config{Topic: "a/#"}, want: 1},
		{name: "negative hops", cfg: Config{MaxHops: -1}, want: 1},
		{name: "both", cfg: Config{Topic: "+", MaxHops: 5000}, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.Validate(); len(got) != tt.want {
				t.Fatalf("Validate() = %v, want %d errors", got, tt.want)
			}
		})
	}
	if _, err := New(Config{}, nil, nil); err == nil {
		t.Fatal("New without a publisher = nil error")
	}
}
