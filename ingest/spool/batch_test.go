package spool

import (
	"bytes"
	"path/filepath"
	"testing"
)

// TestNextBatch reads committed records in batches and checks every
// record of each batch right after the call (they alias the cursor's
// buffer, so a read that moved bytes under an earlier record of the same
// batch would show here), the batch bounds (n, segment end, in-flight
// window) and interleaving with Next.
func TestNextBatch(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		records int
		size    int
		n       int
	}{
		{name: "small records, one segment", opts: Options{SegmentBytes: 16 << 20}, records: 3000, size: 100, n: 64},
		{name: "batch beyond the read buffer", opts: Options{SegmentBytes: 16 << 20}, records: 3000, size: 300, n: 100000},
		{name: "segments of a few records", opts: smallOpts(), records: 300, size: 200, n: 1000},
		{name: "records larger than the read buffer", opts: Options{SegmentBytes: 4 << 20}, records: 20, size: 150 << 10, n: 8},
		{name: "in-flight window", opts: Options{MaxInflight: 64}, records: 500, size: 50, n: 1000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir(), tc.opts)
			c, err := s.Cursor("sink")
			if err != nil {
				t.Fatal(err)
			}
			recs := make([][]byte, tc.records)
			for i := range recs {
				recs[i] = payload(i, tc.size)
			}
			appendAll(t, s, recs)
			segEnds := segmentEnds(s)
			ctx := ctxT(t)
			var batch []Record
			next, calls := uint64(0), 0
			for next < uint64(tc.records) {
				calls++
				if calls%5 == 0 { // Next in between must agree with batches
					r, err := c.Next(ctx)
					if err != nil {
						t.Fatal(err)
					}
					checkRecords(t, []Record{r}, next, func(off uint64) []byte { return recs[off] })
					next++
					if err := c.Ack(r.Offset); err != nil {
						t.Fatal(err)
					}
					continue
				}
				batch, err = c.NextBatch(ctx, batch[:0], tc.n)
				if err != nil {
					t.Fatalf("NextBatch at %d: %v", next, err)
				}
				if len(batch) == 0 || len(batch) > tc.n {
					t.Fatalf("batch of %d records, want 1..%d", len(batch), tc.n)
				}
				checkRecords(t, batch, next, func(off uint64) []byte { return recs[off] })
				first, last := batch[0].Offset, batch[len(batch)-1].Offset
				for _, end := range segEnds {
					if first < end && last >= end {
						t.Fatalf("batch %d..%d crosses the segment boundary at %d", first, last, end)
					}
				}
				if w := uint64(tc.opts.MaxInflight); w > 0 && last-first >= w {
					t.Fatalf("batch of %d records exceeds the in-flight window %d", len(batch), w)
				}
				next = last + 1
				for off := first; off <= last; off++ {
					if err := c.Ack(off); err != nil {
						t.Fatal(err)
					}
				}
			}
			expectNoRecord(t, c)
		})
	}
}

// segmentEnds lists the first offset of every segment but the first.
func segmentEnds(s *Spool) []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ends []uint64
	for _, g := range s.segs[1:] {
		ends = append(ends, g.base)
	}
	return ends
}

// TestNextBatchStopsBeforeCorruption: records before a damaged frame of
// the active segment are delivered; the damage is reported on the call
// that reaches it.
func TestNextBatchStopsBeforeCorruption(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 1 << 20}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	recs := make([][]byte, 50)
	for i := range recs {
		recs[i] = payload(i, recSize)
	}
	appendAll(t, s, recs)
	c, err := s.Cursor("sink")
	if err != nil {
		t.Fatal(err)
	}
	segs := mustGlob(t, filepath.Join(dir, "*"+segSuffix))
	flip(t, segs[0], frameAt(30)+frameOverhead+2)
	batch, err := c.NextBatch(ctxT(t), nil, 100)
	if err != nil {
		t.Fatalf("first batch: %v", err)
	}
	if len(batch) != 30 {
		t.Fatalf("first batch has %d records, want the 30 before the damage", len(batch))
	}
	for i, r := range batch {
		if !bytes.Equal(r.Data, recs[i]) {
			t.Fatalf("record %d: wrong data", i)
		}
	}
	if _, err := c.NextBatch(ctxT(t), nil, 100); err == nil {
		t.Fatal("NextBatch over a damaged record in the active segment succeeded")
	}
}
