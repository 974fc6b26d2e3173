package spool

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestConcurrentAppendReadAck runs appenders, a tailing reader and parallel
// ack lanes at once on small segments, so commits, tail reads, rolls,
// checkpoints and retention all interleave.
func TestConcurrentAppendReadAck(t *testing.T) {
	tests := []struct {
		name      string
		appenders int
		per       int
		lanes     int
		policy    Policy
	}{
		{name: "block", appenders: 8, per: 300, lanes: 4, policy: PolicyBlock},
		{name: "drop_oldest with a fast reader", appenders: 4, per: 500, lanes: 2, policy: PolicyDropOldest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir(), Options{
				SegmentBytes: 8 << 10, MaxBytes: 4 << 20, Policy: tc.policy,
				CheckpointInterval: 2 * time.Millisecond, MaxInflight: 128,
			})
			c, err := s.Cursor("sink")
			if err != nil {
				t.Fatal(err)
			}
			total := tc.appenders * tc.per
			var mu sync.Mutex
			sent := make(map[uint64][]byte, total)
			var wg sync.WaitGroup
			for a := range tc.appenders {
				wg.Go(func() {
					for i := range tc.per {
						data := fmt.Appendf(nil, "a%d-i%d-%s", a, i, bytes.Repeat([]byte{'x'}, (a*i)%150))
						off, err := s.AppendSync(ctxT(t), data)
						if err != nil {
							t.Errorf("AppendSync: %v", err)
							return
						}
						mu.Lock()
						sent[off] = data
						mu.Unlock()
					}
				})
			}
			lanes := make([]chan uint64, tc.lanes)
			var lw sync.WaitGroup
			for i := range lanes {
				lanes[i] = make(chan uint64, 64)
				lw.Go(func() {
					for off := range lanes[i] {
						if err := c.Ack(off); err != nil {
							t.Errorf("Ack(%d): %v", off, err)
						}
					}
				})
			}
			got := make([]Record, 0, total)
			for len(got) < total {
				r, err := c.Next(ctxT(t))
				if err != nil {
					t.Fatalf("Next after %d: %v", len(got), err)
				}
				got = append(got, r)
				lanes[r.Offset%uint64(tc.lanes)] <- r.Offset
			}
			for _, l := range lanes {
				close(l)
			}
			lw.Wait()
			wg.Wait()
			for i, r := range got {
				if r.Offset != uint64(i) {
					t.Fatalf("delivery %d has offset %d", i, r.Offset)
				}
				if !bytes.Equal(r.Data, sent[r.Offset]) {
					t.Fatalf("offset %d: got %q, appended %q", r.Offset, trunc(r.Data), trunc(sent[r.Offset]))
				}
			}
			waitFor(t, func() bool { return c.Position() == uint64(total) && s.Stats().Segments == 1 })
			if st := s.Stats(); st.Dropped != 0 {
				t.Fatalf("dropped %d records with a reader keeping up", st.Dropped)
			}
		})
	}
}
