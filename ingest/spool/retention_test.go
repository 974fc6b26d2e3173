package spool

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// ackAll reads n records from c and acknowledges them.
func ackAll(t testing.TB, c *Cursor, n int) {
	t.Helper()
	for _, r := range readN(t, c, n) {
		if err := c.Ack(r.Offset); err != nil {
			t.Fatal(err)
		}
	}
}

func segFiles(t testing.TB, dir string) int {
	return len(mustGlob(t, filepath.Join(dir, "*"+segSuffix)))
}

func TestSegmentDeletedOnlyWhenAllCursorsPassed(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, smallOpts())
	a, _ := s.Cursor("a")
	b, err := s.Cursor("b")
	if err != nil {
		t.Fatal(err)
	}
	recs := make([][]byte, 600)
	for i := range recs {
		recs[i] = payload(i, 100)
	}
	appendAll(t, s, recs)
	total := segFiles(t, dir)
	if total < 10 {
		t.Fatalf("only %d segments", total)
	}
	tests := []struct {
		name  string
		step  func()
		check func() bool
	}{
		{name: "a passes everything, b nothing: all kept", step: func() { ackAll(t, a, 600) }, check: func() bool {
			return a.Position() == 600 && segFiles(t, dir) == total
		}},
		{name: "b passes half: the first half goes", step: func() { ackAll(t, b, 300) }, check: func() bool {
			st := s.Stats()
			return b.Position() == 300 && st.Tail <= 300 && st.Tail > 0 &&
				segFiles(t, dir) == st.Segments && st.Segments < total
		}},
		{name: "b passes everything: only the active segment stays", step: func() { ackAll(t, b, 300) }, check: func() bool {
			return segFiles(t, dir) == 1 && s.Stats().Segments == 1
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.step()
			waitFor(t, tc.check)
			// A check that passed once must stay true: nothing extra goes.
			time.Sleep(30 * time.Millisecond)
			if !tc.check() {
				t.Fatal("retention deleted more than it should")
			}
		})
	}
	// The retained data is still readable by a new cursor.
	c, err := s.Cursor("late")
	if err != nil {
		t.Fatal(err)
	}
	tail := s.Stats().Tail
	got := readN(t, c, int(600-tail))
	checkRecords(t, got, tail, func(off uint64) []byte { return recs[off] })
}

func TestBlockPolicy(t *testing.T) {
	opts := Options{
		SegmentBytes: 4 << 10, MaxBytes: 32 << 10, QueueBytes: 2 << 10,
		Policy: PolicyBlock, CheckpointInterval: time.Hour, // only a blocked append's kick checkpoints
	}
	s := openT(t, t.TempDir(), opts)
	c, err := s.Cursor("sink")
	if err != nil {
		t.Fatal(err)
	}
	// Fill the spool until an append cannot get in.
	n := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		_, err := s.AppendSync(ctx, payload(n, 200))
		cancel()
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("append %d: %v", n, err)
			}
			break
		}
		n++
		if n > 1000 {
			t.Fatal("spool never filled up")
		}
	}
	if st := s.Stats(); st.Bytes > opts.MaxBytes || st.Bytes < opts.MaxBytes/2 {
		t.Fatalf("spool holds %d bytes when full, limit %d", st.Bytes, opts.MaxBytes)
	}
	t.Logf("full after %d records", n)
	done := make(chan error, 1)
	go func() {
		_, err := s.AppendSync(ctxT(t), payload(n, 200))
		done <- err
	}()
	waitFor(t, func() bool { return s.Stats().BlockedAppends == 1 })
	select {
	case err := <-done:
		t.Fatalf("append finished while the spool was full: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	ackAll(t, c, n) // the cursor passes every sealed segment
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("unblocked append: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("append still blocked after the cursor advanced")
	}
	if st := s.Stats(); st.Dropped != 0 || st.Head != uint64(n+1) {
		t.Fatalf("stats after unblocking: %+v", st)
	}
}

func TestDropOldestCountsPerCursor(t *testing.T) {
	var mu sync.Mutex
	drops := map[string]uint64{}
	opts := Options{
		SegmentBytes: 4 << 10, MaxBytes: 32 << 10, QueueBytes: 2 << 10,
		Policy: PolicyDropOldest, CheckpointInterval: 5 * time.Millisecond,
		OnDrop: func(cursor string, records uint64, reason string) {
			if reason != ReasonSpoolFull {
				t.Errorf("drop reason %q", reason)
			}
			mu.Lock()
			drops[cursor] += records
			mu.Unlock()
		},
	}
	s := openT(t, t.TempDir(), opts)
	fast, _ := s.Cursor("fast")
	slow, _ := s.Cursor("slow")
	idle, err := s.Cursor("idle")
	if err != nil {
		t.Fatal(err)
	}
	const rounds, per = 20, 50
	var maxBytes int64
	for r := range rounds {
		recs := make([][]byte, per)
		for i := range recs {
			recs[i] = payload(r*per+i, 200)
		}
		appendAll(t, s, recs)
		ackAll(t, fast, per)
		if r == 0 {
			ackAll(t, slow, 20) // slow reads a little, then stalls
		}
		maxBytes = max(maxBytes, s.Stats().Bytes)
	}
	if maxBytes > opts.MaxBytes {
		t.Fatalf("spool reached %d bytes, limit %d", maxBytes, opts.MaxBytes)
	}
	st := s.Stats()
	total := uint64(rounds * per)
	t.Logf("tail %d head %d bytes %d (max seen %d)", st.Tail, st.Head, st.Bytes, maxBytes)
	if st.Tail <= 20 {
		t.Fatalf("tail %d: nothing was dropped, the test proves nothing", st.Tail)
	}
	mu.Lock()
	defer mu.Unlock()
	tests := []struct {
		name     string
		c        *Cursor
		wantLost uint64
	}{
		{name: "fast", c: fast, wantLost: 0},
		{name: "slow", c: slow, wantLost: st.Tail - 20},
		{name: "idle", c: idle, wantLost: st.Tail},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if drops[tc.name] != tc.wantLost {
				t.Fatalf("OnDrop reported %d lost, want %d", drops[tc.name], tc.wantLost)
			}
			var cs CursorStats
			for _, x := range st.Cursors {
				if x.Name == tc.name {
					cs = x
				}
			}
			if cs.Dropped != tc.wantLost {
				t.Fatalf("CursorStats.Dropped = %d, want %d", cs.Dropped, tc.wantLost)
			}
			// Whatever was not dropped is still delivered, in order.
			if tc.name == "fast" {
				return
			}
			got := readN(t, tc.c, int(total-st.Tail))
			checkRecords(t, got, st.Tail, func(off uint64) []byte { return payload(int(off), 200) })
		})
	}
	if st.Dropped != drops["slow"]+drops["idle"] {
		t.Fatalf("Stats.Dropped = %d, want %d", st.Dropped, drops["slow"]+drops["idle"])
	}
}
