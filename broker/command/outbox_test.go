package command

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestOutboxBounds(t *testing.T) {
	cases := []struct {
		name     string
		max      int
		maxAge   time.Duration
		add      int
		age      time.Duration // of every event
		wantKept int
		reason   string
		dropped  float64
	}{
		{"within bound", 10, time.Hour, 5, 0, 5, "outbox_full", 0},
		{"full drops oldest", 3, time.Hour, 5, 0, 3, "outbox_full", 2},
		{"too old dropped", 10, time.Minute, 4, 2 * time.Minute, 0, "too_old", 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			met, _ := newMetrics(nil)
			sink := newRecSink()
			o := newOutbox(OutboxConfig{MaxEvents: c.max, MaxAge: c.maxAge, BatchSize: 100, RetryInitial: time.Millisecond, RetryMax: time.Millisecond},
				map[string]EventSink{"s": sink}, slog.New(slog.DiscardHandler), met)
			o.load(nil, nil)
			for i := range c.add {
				o.add(Event{ID: "x", State: Accepted, At: time.Now().Add(-c.age)}, 0)
				if i%2 == 1 { // some written between adds, as checkpoints would
					o.checkpointed(o.takeCheckpoint(nil))
				}
			}
			o.checkpointed(o.takeCheckpoint(nil))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { o.run(ctx); close(done) }()
			deadline := time.Now().Add(5 * time.Second)
			for len(sink.states("x")) < c.wantKept && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond)
			cancel()
			<-done
			if got := len(sink.states("x")); got != c.wantKept {
				t.Errorf("sink got %d events, want %d", got, c.wantKept)
			}
			if got := testutil.ToFloat64(met.eventsDropped.WithLabelValues("s", c.reason)); got != c.dropped {
				t.Errorf("dropped{%s} = %v, want %v", c.reason, got, c.dropped)
			}
		})
	}
}

// TestOutboxFloor: an accept flush writes the events of the commands it
// stores before older events of other commands; a sink still gets every
// event in seq order, the later ones only once the older are written.
func TestOutboxFloor(t *testing.T) {
	met, _ := newMetrics(nil)
	sink := newRecSink()
	o := newOutbox(DefaultConfig().Outbox, map[string]EventSink{"s": sink}, slog.New(slog.DiscardHandler), met)
	o.load(nil, nil)
	o.add(Event{ID: "a", State: Sent, At: time.Now()}, 0)     // 1: lazy
	o.add(Event{ID: "b", State: Accepted, At: time.Now()}, 0) // 2: accept flush
	o.add(Event{ID: "a", State: Delivered, At: time.Now()}, 0)
	o.markStored(toLog, o.takeFor(map[string]struct{}{"b": {}}))
	if evs, _, wait := o.next(0); wait == nil {
		t.Fatalf("handed %v before the older event 1 was written", evs)
	}
	cp := o.takeCheckpoint(nil)
	if len(cp.events) != 3 || len(cp.taken) != 2 {
		t.Errorf("checkpoint writes %d events (%d fresh), want 3 (2): the logged one too", len(cp.events), len(cp.taken))
	}
	o.checkpointed(cp)
	got, last, _ := o.next(0)
	var order []string
	for _, e := range got {
		order = append(order, e.ID+":"+string(e.State))
	}
	if want := []string{"a:sent", "b:accepted", "a:delivered"}; !slices.Equal(order, want) || last != 3 {
		t.Errorf("handed %v up to %d, want %v up to 3", order, last, want)
	}
}
