// Package sinktest is the contract every sink passes: a batch written
// with Write arrives at a live peer complete, once, with its keys and in
// order per key; empty and large values survive; Close is idempotent; a
// cancelled context and a peer outage produce a prompt, retryable error
// rather than a success. Each sink's tests call Run with a Harness that
// starts a real peer (kfake, an httptest server, the embedded broker).
package sinktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sinks"
)

// Message is a record as read back from the peer.
type Message struct {
	Key   []byte
	Value []byte
}

// Peer is a live destination and a sink writing to it.
type Peer struct {
	// Sink writes to the peer. The suite closes it; the harness may close
	// it again in its cleanup.
	Sink sinks.Sink
	// Topic is set as Record.Topic on every record the suite writes;
	// "" leaves the sink's configured default in charge.
	Topic string
	// Read waits until at least n messages have arrived at the peer since
	// it was started (or ctx ends) and returns every message that arrived,
	// in the order the peer holds them (per key, at least).
	Read func(ctx context.Context, n int) ([]Message, error)
	// Down takes the peer down so that writes fail; Up brings it back at
	// the same address (an empty destination is fine). Both are nil when
	// the peer cannot be taken down.
	Down, Up func(t *testing.T)
}

// Harness adapts one sink to the suite.
type Harness struct {
	// New starts a fresh peer and builds a sink for it. Cleanup belongs
	// to the harness (t.Cleanup).
	New func(t *testing.T) *Peer
	// NoKeys says the destination does not carry Record.Key, so keys are
	// not compared (order per key is still checked, from the values).
	NoKeys bool
	// LargeValue is the size in bytes of the large-value check.
	// Default: 512 KiB.
	LargeValue int
	// Recover bounds how long after Up the sink may keep failing before
	// a write succeeds again. Default: 30s.
	Recover time.Duration
}

// prompt bounds how long a Write may take to notice a cancelled context.
const prompt = 2 * time.Second

// readTimeout bounds how long the suite waits for messages to arrive.
const readTimeout = 20 * time.Second

// Run runs the contract suite against h.
func Run(t *testing.T, h Harness) {
	if h.LargeValue <= 0 {
		h.LargeValue = 512 << 10
	}
	if h.Recover <= 0 {
		h.Recover = 30 * time.Second
	}
	t.Run("round trip", func(t *testing.T) { roundTrip(t, h, 1) })
	t.Run("batches in sequence", func(t *testing.T) { roundTrip(t, h, 5) })
	t.Run("empty values", func(t *testing.T) { emptyValues(t, h) })
	t.Run("large value", func(t *testing.T) { largeValue(t, h) })
	t.Run("close twice", func(t *testing.T) { closeTwice(t, h) })
	t.Run("cancelled context", func(t *testing.T) { cancelled(t, h) })
	t.Run("peer outage", func(t *testing.T) { outage(t, h) })
}

// Records builds n records spread over keys, for topic. Values are
// unique, name their key and sequence number, and mix JSON, text and
// binary bodies.
func Records(topic string, keys, n int, tag string) []sinks.Record {
	recs := make([]sinks.Record, n)
	now := time.Now()
	for i := range recs {
		k := fmt.Sprintf("client-%d", i%keys)
		var v []byte
		switch i % 3 {
		case 0:
			v = fmt.Appendf(nil, `{"tag":%q,"key":%q,"seq":%d,"temp":21.5}`, tag, k, i)
		case 1:
			v = fmt.Appendf(nil, "%s %s %d plain text", tag, k, i)
		default:
			v = fmt.Appendf(nil, "%s %s %d \x00\xff\xfe binary", tag, k, i)
		}
		recs[i] = sinks.Record{
			Rule:  "sinktest",
			Topic: topic,
			Key:   []byte(k),
			Value: v,
			QoS:   1,
			Source: sinks.Source{
				Topic:          "sinktest/" + k,
				ClientID:       k,
				QoS:            1,
				ContentType:    "application/octet-stream",
				ReceivedAt:     now,
				UserProperties: []sinks.UserProperty{{Name: "trace", Value: tag}},
			},
		}
	}
	return recs
}

func write(t *testing.T, s sinks.Sink, recs []sinks.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	if err := s.Write(ctx, recs); err != nil {
		t.Fatalf("Write(%d records) = %v, want nil", len(recs), err)
	}
}

func read(t *testing.T, p *Peer, n int) []Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	got, err := p.Read(ctx, n)
	if err != nil {
		t.Fatalf("reading %d messages back: %v (got %d)", n, err, len(got))
	}
	return got
}

func roundTrip(t *testing.T, h Harness, batches int) {
	p := h.New(t)
	defer p.Sink.Close()
	all := Records(p.Topic, 3, 60*batches, t.Name())
	for b := 0; b < batches; b++ {
		write(t, p.Sink, all[b*60:(b+1)*60])
	}
	got := read(t, p, len(all))
	if len(got) != len(all) {
		t.Fatalf("read %d messages, want exactly %d (duplicates?)", len(got), len(all))
	}
	checkSame(t, h, all, got, true)
}

// checkSame checks that got holds each of want's values exactly once
// (at least once when !exact), with its key, and in order per key.
func checkSame(t *testing.T, h Harness, want []sinks.Record, got []Message, exact bool) {
	t.Helper()
	index := make(map[string]int, len(want))
	for i, r := range want {
		index[string(r.Value)] = i
	}
	seen := make(map[int]int, len(want))
	last := map[string]int{} // key -> index in want of the last value seen
	for _, m := range got {
		i, ok := index[string(m.Value)]
		if !ok {
			t.Fatalf("read an unexpected value %q", trunc(m.Value))
		}
		seen[i]++
		r := want[i]
		if !h.NoKeys && !bytes.Equal(m.Key, r.Key) {
			t.Fatalf("value %q arrived with key %q, want %q", trunc(m.Value), m.Key, r.Key)
		}
		k := string(r.Key)
		if prev, ok := last[k]; ok && prev > i && exact {
			t.Fatalf("key %s: record #%d arrived after #%d", k, prev, i)
		}
		last[k] = max(last[k], i)
	}
	for i, r := range want {
		switch n := seen[i]; {
		case n == 0:
			t.Fatalf("record #%d (%q) never arrived", i, trunc(r.Value))
		case n > 1 && exact:
			t.Fatalf("record #%d arrived %d times", i, n)
		}
	}
}

func trunc(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

func emptyValues(t *testing.T, h Harness) {
	p := h.New(t)
	defer p.Sink.Close()
	recs := Records(p.Topic, 1, 3, t.Name())
	recs[0].Value = nil
	recs[2].Value = []byte{}
	write(t, p.Sink, recs)
	got := read(t, p, 3)
	if len(got) != 3 {
		t.Fatalf("read %d messages, want 3", len(got))
	}
	empty := 0
	for _, m := range got {
		switch {
		case len(m.Value) == 0:
			empty++
		case !bytes.Equal(m.Value, recs[1].Value):
			t.Fatalf("read value %q, want %q or empty", trunc(m.Value), recs[1].Value)
		}
	}
	if empty != 2 {
		t.Fatalf("read %d empty values, want 2", empty)
	}
	if len(got[0].Value) != 0 || len(got[2].Value) != 0 {
		t.Fatalf("order lost: values %q, %q, %q", trunc(got[0].Value), trunc(got[1].Value), trunc(got[2].Value))
	}
}

func largeValue(t *testing.T, h Harness) {
	p := h.New(t)
	defer p.Sink.Close()
	recs := Records(p.Topic, 1, 2, t.Name())
	big := make([]byte, h.LargeValue)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	recs[0].Value = big
	write(t, p.Sink, recs)
	got := read(t, p, 2)
	checkSame(t, h, recs, got, true)
}

func closeTwice(t *testing.T, h Harness) {
	p := h.New(t)
	write(t, p.Sink, Records(p.Topic, 1, 1, t.Name()))
	if err := p.Sink.Close(); err != nil {
		t.Fatalf("first Close() = %v", err)
	}
	if err := p.Sink.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), prompt)
	defer cancel()
	if err := p.Sink.Write(ctx, Records(p.Topic, 1, 1, t.Name())); err == nil {
		t.Fatal("Write after Close = nil, want an error")
	}
}

func cancelled(t *testing.T, h Harness) {
	p := h.New(t)
	defer p.Sink.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	err := p.Sink.Write(ctx, Records(p.Topic, 2, 10, t.Name()))
	if took := time.Since(start); took > prompt {
		t.Fatalf("Write with a cancelled context took %s, want under %s", took, prompt)
	}
	if err == nil {
		t.Fatal("Write with a cancelled context = nil, want an error")
	}
	if sinks.IsPermanent(err) {
		t.Fatalf("Write with a cancelled context = %v, a permanent error; want a retryable one", err)
	}
}

func outage(t *testing.T, h Harness) {
	p := h.New(t)
	defer p.Sink.Close()
	if p.Down == nil || p.Up == nil {
		t.Skip("the peer cannot be taken down")
	}
	write(t, p.Sink, Records(p.Topic, 1, 1, t.Name()+"/warmup"))
	p.Down(t)
	recs := Records(p.Topic, 3, 30, t.Name())

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	start := time.Now()
	err := p.Sink.Write(ctx, recs)
	cancel()
	if took := time.Since(start); took > 500*time.Millisecond+prompt {
		t.Fatalf("Write during an outage took %s with a 500ms deadline", took)
	}
	if err == nil {
		t.Fatal("Write during an outage = nil, want an error")
	}
	if sinks.IsPermanent(err) {
		t.Fatalf("Write during an outage = %v, a permanent error; want a retryable one", err)
	}
	var be *sinks.BatchError
	if errors.As(err, &be) {
		for _, f := range be.Failed {
			if sinks.IsPermanent(f.Err) {
				t.Fatalf("record #%d failed permanently during an outage: %v", f.Index, f.Err)
			}
		}
	}

	p.Up(t)
	deadline := time.Now().Add(h.Recover)
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := p.Sink.Write(ctx, recs)
		cancel()
		if err == nil {
			t.Logf("recovered after %d attempts", attempt)
			break
		}
		if sinks.IsPermanent(err) {
			t.Fatalf("Write after the peer came back = %v, a permanent error", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Write still failing %s after the peer came back: %v", h.Recover, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := read(t, p, len(recs))
	// The warm-up record may or may not have survived the outage.
	var kept []Message
	for _, m := range got {
		if !bytes.Contains(m.Value, []byte("/warmup")) {
			kept = append(kept, m)
		}
	}
	checkSame(t, h, recs, kept, false)
}
