package ingest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/sinks"
)

// tapPublish delivers a message on topic and waits for its ack.
func tapPublish(t *testing.T, p *Pipeline, topicName, payload string) {
	t.Helper()
	ch := make(chan error, 1)
	m := &broker.Message{Topic: topicName, ClientID: "dev1", QoS: 1, Payload: []byte(payload), ReceivedAt: time.Now()}
	p.Deliver(context.Background(), m, func(err error) { ch <- err })
	if err := waitAck(t, ch); err != nil {
		t.Fatalf("ack for %s: %v", topicName, err)
	}
}

// drain reads the events buffered in tap without waiting.
func drain(tap *Tap) []TapEvent {
	var evs []TapEvent
	for {
		select {
		case ev := <-tap.Events():
			evs = append(evs, ev)
		default:
			return evs
		}
	}
}

func TestTapFilters(t *testing.T) {
	h := start(t, testConfig(t), routeAll("mem"), map[string]sinks.Sink{"mem": &memSink{}})
	tests := []struct {
		name   string
		filter string
		topics []string
		want   []string
	}{
		{"exact", "plant/a/t", []string{"plant/a/t", "plant/b/t"}, []string{"plant/a/t"}},
		{"single level", "plant/+/t", []string{"plant/a/t", "plant/b/t", "plant/a/x"}, []string{"plant/a/t", "plant/b/t"}},
		{"multi level", "plant/#", []string{"plant", "plant/a/t", "other/a"}, []string{"plant", "plant/a/t"}},
		{"dollar topics need an explicit filter", "#", []string{"$x/a", "a"}, []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tap, err := h.p.OpenTap(tt.filter, 16)
			if err != nil {
				t.Fatal(err)
			}
			defer tap.Close()
			for _, tp := range tt.topics {
				tapPublish(t, h.p, tp, `{"temp":21.5}`)
			}
			evs := drain(tap)
			var got []string
			for _, ev := range evs {
				got = append(got, ev.Msg.Topic)
				if m, ok := ev.Payload.(map[string]any); !ok || m["temp"] != 21.5 {
					t.Errorf("event payload = %#v, want the decoded JSON", ev.Payload)
				}
				if ev.At.IsZero() || ev.DeadLettered {
					t.Errorf("event = %+v", ev)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("tap %q saw %v, want %v", tt.filter, got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("tap %q saw %v, want %v", tt.filter, got, tt.want)
				}
			}
		})
	}
	if h.p.taps.on.Load() {
		t.Error("taps still marked on after every tap closed")
	}
}

func TestTapSlowReaderDropsWithoutBlocking(t *testing.T) {
	h := start(t, testConfig(t), routeAll("mem"), map[string]sinks.Sink{"mem": &memSink{}})
	slow, err := h.p.OpenTap("#", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast, err := h.p.OpenTap("#", 64)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	for range 10 {
		tapPublish(t, h.p, "plant/a/t", `{}`) // every ack arrives although nobody reads
	}
	if got := slow.Dropped(); got != 8 {
		t.Errorf("slow tap dropped %d, want 8", got)
	}
	if got := len(drain(slow)); got != 2 {
		t.Errorf("slow tap buffered %d, want 2", got)
	}
	if got, d := len(drain(fast)), fast.Dropped(); got != 10 || d != 0 {
		t.Errorf("fast tap got %d dropped %d, want 10 and 0", got, d)
	}
	if s, d := h.p.taps.seen.Load(), h.p.taps.dropped.Load(); s != 12 || d != 8 {
		t.Errorf("tap counters seen %d dropped %d, want 12 and 8", s, d)
	}
}

func TestTapLimits(t *testing.T) {
	p, err := New(testConfig(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("invalid filter", func(t *testing.T) {
		for _, f := range []string{"", "a/#/b", "a+"} {
			if _, err := p.OpenTap(f, 1); err == nil {
				t.Errorf("OpenTap(%q) = nil error", f)
			}
		}
	})
	t.Run("at most MaxTaps", func(t *testing.T) {
		var open []*Tap
		for range MaxTaps {
			tap, err := p.OpenTap("#", 1)
			if err != nil {
				t.Fatal(err)
			}
			open = append(open, tap)
		}
		if _, err := p.OpenTap("#", 1); !errors.Is(err, ErrTooManyTaps) {
			t.Fatalf("tap %d: err = %v, want ErrTooManyTaps", MaxTaps+1, err)
		}
		open[0].Close()
		open[0].Close() // twice is fine and frees one place only
		tap, err := p.OpenTap("#", 1)
		if err != nil {
			t.Fatalf("after closing one: %v", err)
		}
		if _, err := p.OpenTap("#", 1); !errors.Is(err, ErrTooManyTaps) {
			t.Fatalf("closing twice freed two places: err = %v", err)
		}
		tap.Close()
		for _, tp := range open[1:] {
			tp.Close()
		}
		if p.taps.on.Load() {
			t.Error("taps on with none open")
		}
	})
	t.Run("buffer bounded", func(t *testing.T) {
		tap, err := p.OpenTap("#", 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		defer tap.Close()
		if c := cap(tap.ch); c != MaxTapBuffer {
			t.Errorf("buffer = %d, want %d", c, MaxTapBuffer)
		}
	})
}

func TestTapSeesSchemaDeadLetters(t *testing.T) {
	cfg := testConfig(t)
	p, err := New(cfg, Options{Router: routeAll("mem"), Sinks: map[string]sinks.Sink{"mem": &memSink{}}, Decoder: rejectingDecoder{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	tap, err := p.OpenTap("#", 4)
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	tapPublish(t, p, "plant/a/t", `{"temp":"hot"}`)
	evs := drain(tap)
	if len(evs) != 1 || !evs[0].DeadLettered || evs[0].DecodeErr == nil {
		t.Fatalf("events = %+v, want one dead-lettered with its decode error", evs)
	}
}

// BenchmarkTapObserve is the cost Deliver pays per message with taps.
func BenchmarkTapObserve(b *testing.B) {
	in := &Input{Msg: &broker.Message{Topic: "plant/berlin/line/1/telemetry", Payload: []byte(`{}`)}}
	for _, bc := range []struct {
		name    string
		filters []string
	}{
		{"none open", nil},
		{"one not matching", []string{"other/#"}},
		{"one matching full buffer", []string{"plant/#"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p, err := New(DefaultConfig(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			for _, f := range bc.filters {
				tap, err := p.OpenTap(f, 1)
				if err != nil {
					b.Fatal(err)
				}
				defer tap.Close()
			}
			b.ReportAllocs()
			for b.Loop() {
				if p.taps.on.Load() {
					p.taps.observe(in)
				}
			}
		})
	}
}
