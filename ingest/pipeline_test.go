package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/sinks"
)

// memSink records what it is given; fail decides per record whether to
// refuse it (nil = accept).
type memSink struct {
	mu     sync.Mutex
	got    []sinks.Record
	fail   func(r sinks.Record) error
	block  chan struct{} // when non-nil, Write waits for it to close
	writes int
}

func (s *memSink) Write(ctx context.Context, batch []sinks.Record) error {
	s.mu.Lock()
	block := s.block
	s.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	var be sinks.BatchError
	for i, r := range batch {
		if s.fail != nil {
			if err := s.fail(r); err != nil {
				be.Failed = append(be.Failed, sinks.ItemError{Index: i, Err: err})
				continue
			}
		}
		r.Value = append([]byte(nil), r.Value...)
		s.got = append(s.got, r)
	}
	if len(be.Failed) > 0 {
		return &be
	}
	return nil
}

func (s *memSink) Close() error { return nil }

func (s *memSink) setFail(f func(sinks.Record) error) {
	s.mu.Lock()
	s.fail = f
	s.mu.Unlock()
}

func (s *memSink) records() []sinks.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sinks.Record(nil), s.got...)
}

// routeAll sends every message to each named sink under rule "all".
func routeAll(sinkNames ...string) Router {
	return RouterFunc(func(in *Input, dst []Output) []Output {
		for _, s := range sinkNames {
			dst = append(dst, Output{Rule: "all", Sink: s})
		}
		return dst
	})
}

type harness struct {
	t      *testing.T
	p      *Pipeline
	cancel context.CancelFunc
	done   chan error
}

func testConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Retry.Initial = 5 * time.Millisecond
	cfg.Retry.Max = 50 * time.Millisecond
	cfg.Batch.Linger = time.Millisecond
	cfg.ShutdownTimeout = 2 * time.Second
	return cfg
}

func start(t *testing.T, cfg Config, r Router, ss map[string]sinks.Sink) *harness {
	t.Helper()
	return startWith(t, cfg, Options{Router: r, Sinks: ss})
}

// startWith opens a pipeline with opts and runs it until the test ends.
func startWith(t *testing.T, cfg Config, opts Options) *harness {
	t.Helper()
	p, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, p: p, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- p.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Fatal("pipeline did not stop")
	}
}

// publish delivers a message and returns a channel with its ack.
func (h *harness) publish(client string, seq int, qos byte) chan error {
	ch := make(chan error, 1)
	m := &broker.Message{
		Topic: "plant/" + client + "/t", ClientID: client, QoS: qos,
		Payload: []byte(fmt.Sprintf(`{"seq":%d}`, seq)), ReceivedAt: time.Now(),
	}
	h.p.Deliver(context.Background(), m, func(err error) { ch <- err })
	return ch
}

func waitAck(t *testing.T, ch chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no ack within 10s")
		return nil
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkOrder verifies per-client order and no gaps in recs, returning the
// number of duplicates.
func checkOrder(t *testing.T, recs []sinks.Record, clients, perClient int) int {
	t.Helper()
	last := map[string]int{}
	seen := map[string]bool{}
	dups := 0
	for _, r := range recs {
		s := strings.TrimSuffix(strings.TrimPrefix(string(r.Value), `{"seq":`), "}")
		seq, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("bad value %q", r.Value)
		}
		id := r.Source.ClientID + "/" + s
		if seen[id] {
			dups++
			continue
		}
		seen[id] = true
		if prev, ok := last[r.Source.ClientID]; ok && seq != prev+1 {
			t.Fatalf("client %s: seq %d after %d (order broken or gap)", r.Source.ClientID, seq, prev)
		} else if !ok && seq != 0 {
			t.Fatalf("client %s: first seq %d, want 0", r.Source.ClientID, seq)
		}
		last[r.Source.ClientID] = seq
	}
	if len(seen) != clients*perClient {
		t.Fatalf("got %d distinct records, want %d", len(seen), clients*perClient)
	}
	return dups
}

// distinct counts the different (client, value) pairs in recs.
func distinct(recs []sinks.Record) int {
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.Source.ClientID+"/"+string(r.Value)] = true
	}
	return len(seen)
}

func assertBalanced(t *testing.T, p *Pipeline) Stats {
	t.Helper()
	s := p.Accounting().Snapshot()
	for _, f := range s.Flows {
		if !f.Balanced() {
			t.Errorf("accounting identity broken for %s->%s: %+v", f.Rule, f.Sink, f)
		}
	}
	return s
}

func flowOf(s Stats, rule, sink string) FlowStats {
	for _, f := range s.Flows {
		if f.Rule == rule && f.Sink == sink {
			return f
		}
	}
	return FlowStats{}
}

func TestPipelineModes(t *testing.T) {
	for _, mode := range []Mode{ModeSpool, ModeSinks, ModeNone} {
		t.Run(string(mode), func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Durability = mode
			sink := &memSink{}
			h := start(t, cfg, routeAll("mem"), map[string]sinks.Sink{"mem": sink})
			const clients, per = 4, 200
			var acks []chan error
			for i := 0; i < per; i++ {
				for c := 0; c < clients; c++ {
					acks = append(acks, h.publish("c"+strconv.Itoa(c), i, 1))
				}
			}
			for _, a := range acks {
				if err := waitAck(t, a); err != nil {
					t.Fatalf("ack: %v", err)
				}
			}
			eventually(t, "all records delivered", func() bool { return len(sink.records()) >= clients*per })
			if dups := checkOrder(t, sink.records(), clients, per); dups != 0 {
				t.Errorf("%d duplicates without any failure", dups)
			}
			eventually(t, "accounting settles", func() bool {
				return flowOf(h.p.Accounting().Snapshot(), "all", "mem").Buffered == 0
			})
			s := assertBalanced(t, h.p)
			if f := flowOf(s, "all", "mem"); f.Received != clients*per || f.Delivered != clients*per {
				t.Errorf("flow = %+v, want %d received and delivered", f, clients*per)
			}
		})
	}
}

func TestSinksModeAcksOnlyAfterSinkAccepts(t *testing.T) {
	cfg := testConfig(t)
	cfg.Durability = ModeSinks
	sink := &memSink{block: make(chan struct{})}
	h := start(t, cfg, routeAll("mem"), map[string]sinks.Sink{"mem": sink})
	ack := h.publish("c", 0, 1)
	select {
	case err := <-ack:
		t.Fatalf("acked (%v) before the sink accepted", err)
	case <-time.After(100 * time.Millisecond):
	}
	sink.mu.Lock()
	close(sink.block)
	sink.block = nil
	sink.mu.Unlock()
	if err := waitAck(t, ack); err != nil {
		t.Fatal(err)
	}
}

func TestSinkOutageLosesNothing(t *testing.T) {
	cfg := testConfig(t)
	down := errors.New("connection refused")
	sink := &memSink{fail: func(sinks.Record) error { return down }}
	other := &memSink{}
	h := start(t, cfg, routeAll("flaky", "healthy"), map[string]sinks.Sink{"flaky": sink, "healthy": other})
	const clients, per = 3, 300
	publishAll := func(from, to int) {
		var acks []chan error
		for i := from; i < to; i++ {
			for c := 0; c < clients; c++ {
				acks = append(acks, h.publish("c"+strconv.Itoa(c), i, 1))
			}
		}
		for _, a := range acks {
			if err := waitAck(t, a); err != nil {
				t.Fatalf("ack during outage: %v", err)
			}
		}
	}
	// The outage neither blocks acks (spool mode) nor the healthy sink.
	publishAll(0, per/2)
	eventually(t, "healthy sink unaffected by the outage", func() bool { return len(other.records()) == clients*per/2 })
	if n := len(sink.records()); n != 0 {
		t.Fatalf("failing sink got %d records", n)
	}
	// The flaky sink's first failed write may still be in flight when the
	// healthy sink has everything: wait for its retries to be counted.
	eventually(t, "the failing sink's writes retried", func() bool {
		return flowOf(h.p.Accounting().Snapshot(), "all", "flaky").Retried > 0
	})
	s := assertBalanced(t, h.p)
	if f := flowOf(s, "all", "flaky"); f.Buffered != clients*per/2 || f.Retried == 0 {
		t.Errorf("during outage flaky flow = %+v, want all buffered and retries", f)
	}
	// Recover while live traffic continues.
	sink.setFail(nil)
	publishAll(per/2, per)
	eventually(t, "backlog drained", func() bool { return distinct(sink.records()) == clients*per })
	eventually(t, "live traffic reached the healthy sink", func() bool { return distinct(other.records()) == clients*per })
	checkOrder(t, sink.records(), clients, per)
	checkOrder(t, other.records(), clients, per)
	eventually(t, "accounting settles", func() bool {
		return flowOf(h.p.Accounting().Snapshot(), "all", "flaky").Buffered == 0
	})
	assertBalanced(t, h.p)
}

func TestPermanentFailureDeadLettersAndReplays(t *testing.T) {
	cfg := testConfig(t)
	sink := &memSink{}
	sink.setFail(func(r sinks.Record) error {
		if strings.Contains(string(r.Value), `"seq":3}`) {
			return sinks.Permanent(errors.New("value too large for column"))
		}
		return nil
	})
	h := start(t, cfg, routeAll("mem"), map[string]sinks.Sink{"mem": sink})
	for i := 0; i < 6; i++ {
		if err := waitAck(t, h.publish("c", i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "5 delivered", func() bool { return len(sink.records()) == 5 })
	eventually(t, "1 dead-lettered", func() bool {
		return flowOf(h.p.Accounting().Snapshot(), "all", "mem").DeadLettered == 1
	})
	entries, err := h.p.DeadLetters().List(0, 10, true)
	if err != nil || len(entries) != 1 {
		t.Fatalf("dead letters = %v, %v", entries, err)
	}
	e := entries[0]
	if e.Sink != "mem" || e.Rule != "all" || e.ClientID != "c" || !strings.Contains(e.Error, "value too large") || e.Attempts != 1 || string(e.Payload) != `{"seq":3}` {
		t.Errorf("entry = %+v", e)
	}
	assertBalanced(t, h.p)
	sink.setFail(nil)
	if err := h.p.Replay(context.Background(), e.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "replayed record delivered", func() bool { return len(sink.records()) == 6 })
	if err := h.p.Replay(context.Background(), e.ID); err == nil {
		t.Error("second replay of the same entry succeeded")
	}
	eventually(t, "accounting settles", func() bool {
		f := flowOf(h.p.Accounting().Snapshot(), "all", "mem")
		return f.Buffered == 0 && f.Delivered == 6
	})
	assertBalanced(t, h.p)
}

func TestRestartResumesFromSpool(t *testing.T) {
	cfg := testConfig(t)
	sink := &memSink{fail: func(sinks.Record) error { return errors.New("down") }}
	h := start(t, cfg, routeAll("mem"), map[string]sinks.Sink{"mem": sink})
	for i := 0; i < 50; i++ {
		if err := waitAck(t, h.publish("c", i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	h.stop()
	sink2 := &memSink{}
	h2 := start(t, cfg, routeAll("mem"), map[string]sinks.Sink{"mem": sink2})
	eventually(t, "recovered records delivered", func() bool { return len(sink2.records()) >= 50 })
	checkOrder(t, sink2.records(), 1, 50)
	eventually(t, "accounting settles", func() bool {
		return flowOf(h2.p.Accounting().Snapshot(), "all", "mem").Buffered == 0
	})
	s := assertBalanced(t, h2.p)
	if f := flowOf(s, "all", "mem"); f.Received != 50 || f.Delivered != 50 {
		t.Errorf("after restart flow = %+v, want 50 recovered and delivered", f)
	}
}

func TestSpoolFullBlockRejectsWithQuotaExceeded(t *testing.T) {
	cfg := testConfig(t)
	cfg.Spool.MaxBytes = 64 << 10
	cfg.Spool.SegmentBytes = 8 << 10
	cfg.Spool.BlockTimeout = 50 * time.Millisecond
	sink := &memSink{fail: func(sinks.Record) error { return errors.New("down") }}
	h := start(t, cfg, routeAll("mem"), map[string]sinks.Sink{"mem": sink})
	var rejected *broker.RejectError
	accepted := 0
	for i := 0; i < 5000 && rejected == nil; i++ {
		err := waitAck(t, h.publish("c", i, 1))
		if err != nil && !errors.As(err, &rejected) {
			t.Fatalf("unexpected ack error %v", err)
		}
		if err == nil {
			accepted++
		}
	}
	if rejected == nil || rejected.Code != 0x97 {
		t.Fatalf("spool never refused with 0x97 (got %v after %d accepted)", rejected, accepted)
	}
	s := assertBalanced(t, h.p)
	f := flowOf(s, "all", "mem")
	if f.Dropped[DropRejected] != 1 || f.Buffered != int64(accepted) {
		t.Errorf("flow = %+v, want 1 rejected and %d buffered", f, accepted)
	}
	// Once the sink recovers, the spool drains and accepts again.
	sink.setFail(nil)
	eventually(t, "backlog delivered", func() bool { return len(sink.records()) >= accepted })
	eventually(t, "spool accepts again", func() bool { return waitAck(t, h.publish("d", 0, 1)) == nil })
}

func TestSpoolFullDropOldestCounts(t *testing.T) {
	cfg := testConfig(t)
	cfg.Spool.MaxBytes = 64 << 10
	cfg.Spool.SegmentBytes = 8 << 10
	cfg.Spool.Policy = "drop_oldest"
	sink := &memSink{fail: func(sinks.Record) error { return errors.New("down") }}
	h := start(t, cfg, routeAll("mem"), map[string]sinks.Sink{"mem": sink})
	const n = 3000
	for i := 0; i < n; i++ {
		if err := waitAck(t, h.publish("c", i, 1)); err != nil {
			t.Fatalf("drop_oldest refused a publish: %v", err)
		}
	}
	sink.setFail(nil)
	eventually(t, "accounting settles", func() bool {
		f := flowOf(h.p.Accounting().Snapshot(), "all", "mem")
		return f.Buffered == 0
	})
	s := assertBalanced(t, h.p)
	f := flowOf(s, "all", "mem")
	if f.Dropped[DropSpoolFull] == 0 || f.Delivered+f.Dropped[DropSpoolFull] != n {
		t.Errorf("flow = %+v, want drops counted and delivered+dropped = %d", f, n)
	}
	if got := len(sink.records()); int64(got) < f.Delivered {
		t.Errorf("sink saw %d records, accounting says %d delivered", got, f.Delivered)
	}
}

func TestRemovedSinkReleasesItsCursor(t *testing.T) {
	cfg := testConfig(t)
	down := &memSink{fail: func(sinks.Record) error { return errors.New("down") }}
	h := start(t, cfg, routeAll("a", "b"), map[string]sinks.Sink{"a": &memSink{}, "b": down})
	if err := waitAck(t, h.publish("c", 0, 1)); err != nil {
		t.Fatal(err)
	}
	h.stop()
	h2 := start(t, cfg, routeAll("a"), map[string]sinks.Sink{"a": &memSink{}})
	if got := h2.p.spool.Cursors(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("cursors after removing sink b = %v, want [a]", got)
	}
}

type invalidErr struct{}

func (invalidErr) Error() string           { return "validating payload at \"/temp\": want number" }
func (invalidErr) DeadLetterPayload() bool { return true }

type rejectingDecoder struct{}

func (rejectingDecoder) Decode(string, []byte) (any, error) { return nil, invalidErr{} }

func TestInvalidPayloadDeadLettered(t *testing.T) {
	cfg := testConfig(t)
	sink := &memSink{}
	p, err := New(cfg, Options{Router: routeAll("mem"), Sinks: map[string]sinks.Sink{"mem": sink}, Decoder: rejectingDecoder{}})
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
	h := &harness{t: t, p: p}
	if err := waitAck(t, h.publish("c", 0, 1)); err != nil {
		t.Fatalf("ack: %v", err)
	}
	entries, _ := p.DeadLetters().List(0, 10, false)
	if len(entries) != 1 || !strings.Contains(entries[0].Error, "/temp") || entries[0].Rule != "schemas" {
		t.Fatalf("dead letters = %+v", entries)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(sink.records()); n != 0 {
		t.Fatalf("an invalid payload was routed to the sink (%d records)", n)
	}
	s := assertBalanced(t, p)
	if f := flowOf(s, "schemas", "dead_letter"); f.Received != 1 || f.DeadLettered != 1 {
		t.Errorf("flow = %+v", f)
	}
}

// TestPushedBackPublisherGoneAcksOnce: in the memory modes a full lane
// pushes back on Deliver; when the publisher's context ends there, the
// message is refused (counted) and ack is still called exactly once.
func TestPushedBackPublisherGoneAcksOnce(t *testing.T) {
	for _, mode := range []Mode{ModeNone, ModeSinks} {
		t.Run(string(mode), func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Durability = mode
			cfg.Lanes, cfg.QueueSize = 1, 1
			cfg.Batch.MaxRecords = 1
			sink := &memSink{block: make(chan struct{})}
			h := start(t, cfg, routeAll("mem"), map[string]sinks.Sink{"mem": sink})
			defer func() {
				sink.mu.Lock()
				close(sink.block)
				sink.block = nil
				sink.mu.Unlock()
			}()
			// Fill the writing batch and the lane.
			h.publish("c", 0, 1)
			h.publish("c", 1, 1)
			time.Sleep(50 * time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			acks := make(chan error, 2)
			h.p.Deliver(ctx, &broker.Message{Topic: "t", ClientID: "c", QoS: 1, Payload: []byte("{}")}, func(err error) { acks <- err })
			select {
			case err := <-acks:
				var rej *broker.RejectError
				if !errors.As(err, &rej) {
					t.Fatalf("ack = %v, want a RejectError", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no ack for a publisher that went away while pushed back")
			}
			select {
			case err := <-acks:
				t.Fatalf("second ack %v", err)
			case <-time.After(50 * time.Millisecond):
			}
			if f := flowOf(h.p.Accounting().Snapshot(), "all", "mem"); f.Dropped[DropRejected] != 1 {
				t.Errorf("flow = %+v, want one rejected", f)
			}
		})
	}
}
