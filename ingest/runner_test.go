package ingest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sinks"
)

// retryAfterSink refuses its first write with a Retry-After and records
// when each write happened.
type retryAfterSink struct {
	mu    sync.Mutex
	times []time.Time
	after time.Duration
}

func (s *retryAfterSink) Write(_ context.Context, batch []sinks.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.times = append(s.times, time.Now())
	if len(s.times) == 1 {
		return &sinks.RetryAfterError{After: s.after, Err: errors.New("429 Too Many Requests")}
	}
	return nil
}

func (s *retryAfterSink) Close() error { return nil }

func TestRunnerHonoursRetryAfter(t *testing.T) {
	cfg := testConfig(t) // backoff 5-50ms: far below the Retry-After
	sink := &retryAfterSink{after: 300 * time.Millisecond}
	h := start(t, cfg, routeAll("s"), map[string]sinks.Sink{"s": sink})
	if err := waitAck(t, h.publish("c", 0, 1)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "second write", func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		return len(sink.times) >= 2
	})
	sink.mu.Lock()
	gap := sink.times[1].Sub(sink.times[0])
	sink.mu.Unlock()
	if gap < 300*time.Millisecond {
		t.Fatalf("retried after %v, before the 300ms Retry-After", gap)
	}
	eventually(t, "delivered", func() bool { return flowOf(h.p.Accounting().Snapshot(), "all", "s").Delivered == 1 })
}

// TestRunnerPartialFailureKeepsKeyOrder: when a batch fails in part, the
// failed record and every later record with the same key are resent, so
// the destination sees each key in order.
func TestRunnerPartialFailureKeepsKeyOrder(t *testing.T) {
	cfg := testConfig(t)
	cfg.Lanes = 1
	cfg.Batch.Linger = 50 * time.Millisecond
	var once sync.Once
	sink := &memSink{}
	sink.setFail(func(r sinks.Record) error {
		var err error
		if string(r.Value) == `{"seq":1}` && r.Source.ClientID == "a" {
			once.Do(func() { err = errors.New("transient") })
		}
		return err
	})
	h := start(t, cfg, routeAll("m"), map[string]sinks.Sink{"m": sink})
	var acks []chan error
	for i := 0; i < 4; i++ {
		acks = append(acks, h.publish("a", i, 1), h.publish("b", i, 1))
	}
	for _, a := range acks {
		if err := waitAck(t, a); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "all delivered", func() bool { return flowOf(h.p.Accounting().Snapshot(), "all", "m").Delivered == 8 })
	// The sink took a:2 and a:3 although a:1 failed; the runner resends
	// a:1 and everything after it with key a, so key a's arrivals end with
	// the in-order run 1, 2, 3 (a consumer keeping the latest value per
	// key ends in the right state), and key b is untouched.
	var seqA, seqB []string
	for _, r := range sink.records() {
		if r.Source.ClientID == "a" {
			seqA = append(seqA, string(r.Value))
		} else {
			seqB = append(seqB, string(r.Value))
		}
	}
	wantTail := []string{`{"seq":1}`, `{"seq":2}`, `{"seq":3}`}
	if len(seqA) < 3 || !slices.Equal(seqA[len(seqA)-3:], wantTail) || seqA[0] != `{"seq":0}` {
		t.Errorf("key a arrived as %q, want {seq:0} first and ending with %q", seqA, wantTail)
	}
	if want := []string{`{"seq":0}`, `{"seq":1}`, `{"seq":2}`, `{"seq":3}`}; !slices.Equal(seqB, want) {
		t.Errorf("key b arrived as %q, want %q", seqB, want)
	}
	// 3 when a:1..3 shared a batch (a:1 and the two later a records), 1
	// when the batch closed right after a:1.
	if f := flowOf(h.p.Accounting().Snapshot(), "all", "m"); f.Retried != 3 && f.Retried != 1 {
		t.Errorf("retried = %d, want 3 or 1", f.Retried)
	}
	assertBalanced(t, h.p)
}
