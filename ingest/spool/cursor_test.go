package spool

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func TestAckRing(t *testing.T) {
	tests := []struct {
		name  string
		size  int
		base  uint64
		limit uint64
		acks  []uint64
		want  uint64
	}{
		{name: "nothing acked", size: 64, base: 10, limit: 20, want: 10},
		{name: "in order", size: 64, base: 0, limit: 3, acks: []uint64{0, 1, 2}, want: 3},
		{name: "gap holds prefix", size: 64, base: 0, limit: 5, acks: []uint64{0, 1, 3, 4}, want: 2},
		{name: "reverse order", size: 64, base: 5, limit: 9, acks: []uint64{8, 7, 6, 5}, want: 9},
		{name: "stops at limit", size: 64, base: 0, limit: 2, acks: []uint64{0, 1, 2}, want: 2},
		{name: "crosses words", size: 256, base: 60, limit: 200, acks: seq(60, 200), want: 200},
		{name: "wraps the ring", size: 64, base: 100, limit: 164, acks: seq(100, 164), want: 164},
		{name: "full words fast path", size: 1024, base: 0, limit: 1024, acks: seq(0, 1024), want: 1024},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newAckRing(tc.size)
			for _, a := range tc.acks {
				r.set(a)
			}
			if got := r.advance(tc.base, tc.limit); got != tc.want {
				t.Fatalf("advance = %d, want %d", got, tc.want)
			}
		})
	}
	t.Run("bits cleared after advance", func(t *testing.T) {
		r := newAckRing(64)
		for _, a := range seq(0, 64) {
			r.set(a)
		}
		if got := r.advance(0, 64); got != 64 {
			t.Fatalf("advance = %d", got)
		}
		// Offsets 64..127 reuse the same bits and must read as unacked.
		if got := r.advance(64, 128); got != 64 {
			t.Fatalf("stale bits: advance = %d, want 64", got)
		}
	})
}

func seq(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func TestOutOfOrderAcks(t *testing.T) {
	tests := []struct {
		name    string
		records int
		order   func(n int) []uint64
	}{
		{name: "reverse", records: 300, order: func(n int) []uint64 {
			s := seq(0, uint64(n))
			for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
				s[i], s[j] = s[j], s[i]
			}
			return s
		}},
		{name: "shuffled", records: 1000, order: func(n int) []uint64 {
			s := seq(0, uint64(n))
			rand.New(rand.NewPCG(1, 2)).Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
			return s
		}},
		{name: "odd then even", records: 400, order: func(n int) []uint64 {
			var s []uint64
			for i := 1; i < n; i += 2 {
				s = append(s, uint64(i))
			}
			for i := 0; i < n; i += 2 {
				s = append(s, uint64(i))
			}
			return s
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir(), smallOpts())
			c, err := s.Cursor("sink")
			if err != nil {
				t.Fatal(err)
			}
			recs := make([][]byte, tc.records)
			for i := range recs {
				recs[i] = payload(i, 30)
			}
			appendAll(t, s, recs)
			readN(t, c, tc.records)
			acked := make(map[uint64]bool)
			for _, off := range tc.order(tc.records) {
				if err := c.Ack(off); err != nil {
					t.Fatal(err)
				}
				acked[off] = true
				want := uint64(0)
				for acked[want] {
					want++
				}
				if got := c.Lag().Records; got != uint64(tc.records)-want {
					t.Fatalf("after ack %d: lag %d, want %d", off, got, uint64(tc.records)-want)
				}
			}
			// Duplicates and stale acks are harmless.
			if err := c.Ack(0); err != nil {
				t.Fatalf("duplicate ack: %v", err)
			}
			if err := c.Ack(uint64(tc.records)); err == nil {
				t.Fatal("ack of an undelivered offset succeeded")
			}
			waitFor(t, func() bool { return c.Position() == uint64(tc.records) })
		})
	}
}

// waitFor polls cond for up to 5s.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestRewindRedeliversUnacked(t *testing.T) {
	s := openT(t, t.TempDir(), smallOpts())
	c, err := s.Cursor("sink")
	if err != nil {
		t.Fatal(err)
	}
	recs := make([][]byte, 100)
	for i := range recs {
		recs[i] = payload(i, 64)
	}
	appendAll(t, s, recs)
	readN(t, c, 60)
	for _, off := range []uint64{0, 1, 2, 3, 4, 10, 11} {
		if err := c.Ack(off); err != nil {
			t.Fatal(err)
		}
	}
	c.Rewind()
	got := readN(t, c, 95)
	checkRecords(t, got, 5, func(off uint64) []byte { return recs[off] })
	// An ack for a record delivered before the rewind is accepted.
	if err := c.Ack(99); err != nil {
		t.Fatalf("ack after rewind: %v", err)
	}
}

func TestInflightLimitBlocksNext(t *testing.T) {
	s := openT(t, t.TempDir(), Options{MaxInflight: 64})
	c, err := s.Cursor("sink")
	if err != nil {
		t.Fatal(err)
	}
	recs := make([][]byte, 100)
	for i := range recs {
		recs[i] = payload(i, 10)
	}
	appendAll(t, s, recs)
	readN(t, c, 64)
	expectNoRecord(t, c)
	got := make(chan Record, 1)
	go func() {
		r, err := c.Next(ctxT(t))
		if err != nil {
			t.Errorf("Next: %v", err)
		}
		got <- r
	}()
	if err := c.Ack(0); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if r.Offset != 64 {
			t.Fatalf("offset %d, want 64", r.Offset)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not resume after an ack freed the window")
	}
}

func TestNextWaitsForCommit(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	c, err := s.Cursor("sink")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan Record, 1)
	go func() {
		r, err := c.Next(ctxT(t))
		if err != nil {
			t.Errorf("Next: %v", err)
		}
		got <- r
	}()
	time.Sleep(20 * time.Millisecond)
	if _, err := s.AppendSync(ctxT(t), []byte("late")); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if string(r.Data) != "late" {
			t.Fatalf("data %q", r.Data)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not wake on commit")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with cancelled ctx: %v", err)
	}
}

func TestRemoveCursor(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, smallOpts())
	keep, _ := s.Cursor("keep")
	gone, err := s.Cursor("gone")
	if err != nil {
		t.Fatal(err)
	}
	recs := make([][]byte, 400)
	for i := range recs {
		recs[i] = payload(i, 100)
	}
	appendAll(t, s, recs)
	for _, r := range readN(t, keep, 400) {
		if err := keep.Ack(r.Offset); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return keep.Position() == 400 })
	if n := s.Stats().Segments; n < 5 {
		t.Fatalf("only %d segments: 'gone' should hold them", n)
	}
	blocked := make(chan error, 1)
	go func() {
		_, err := gone.Next(ctxT(t))
		for err == nil {
			_, err = gone.Next(ctxT(t))
		}
		blocked <- err
	}()
	if err := s.RemoveCursor("gone"); err != nil {
		t.Fatal(err)
	}
	if err := <-blocked; !errors.Is(err, ErrCursorRemoved) {
		t.Fatalf("Next on removed cursor: %v", err)
	}
	if err := gone.Ack(0); !errors.Is(err, ErrCursorRemoved) {
		t.Fatalf("Ack on removed cursor: %v", err)
	}
	waitFor(t, func() bool { return s.Stats().Segments == 1 })
	if err := s.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s2 := openT(t, dir, smallOpts())
	if got := s2.Cursors(); len(got) != 1 || got[0] != "keep" {
		t.Fatalf("Cursors() after reopen = %v", got)
	}
}
