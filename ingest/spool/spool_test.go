package spool

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// smallOpts gives segments of a few KiB so tests cross many of them.
func smallOpts() Options {
	return Options{SegmentBytes: 4 << 10, MaxBytes: 64 << 20, CheckpointInterval: 5 * time.Millisecond}
}

func TestRoundTripAcrossSegments(t *testing.T) {
	tests := []struct {
		name     string
		records  int
		size     int
		segBytes int64
		minSegs  int
	}{
		{name: "tiny records", records: 2000, size: 20, segBytes: 4 << 10, minSegs: 10},
		{name: "200B records", records: 1000, size: 200, segBytes: 8 << 10, minSegs: 20},
		{name: "empty records", records: 300, size: 0, segBytes: 4 << 10, minSegs: 1},
		{name: "record nearly a segment", records: 20, size: 4<<10 - segHeaderSize - frameOverhead, segBytes: 4 << 10, minSegs: 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir, Options{SegmentBytes: tc.segBytes, MaxBytes: 64 << 20})
			c, err := s.Cursor("sink")
			if err != nil {
				t.Fatal(err)
			}
			recs := make([][]byte, tc.records)
			for i := range recs {
				recs[i] = payload(i, tc.size)
			}
			offs := appendAll(t, s, recs)
			for i, off := range offs {
				if off != uint64(i) {
					t.Fatalf("record %d got offset %d", i, off)
				}
			}
			got := readN(t, c, tc.records)
			checkRecords(t, got, 0, func(off uint64) []byte { return recs[off] })
			expectNoRecord(t, c)
			st := s.Stats()
			if st.Segments < tc.minSegs {
				t.Fatalf("segments = %d, want >= %d", st.Segments, tc.minSegs)
			}
			if st.Head != uint64(tc.records) || st.Appended != uint64(tc.records) {
				t.Fatalf("head %d appended %d, want %d", st.Head, st.Appended, tc.records)
			}
			for _, path := range mustGlob(t, filepath.Join(dir, "*"+segSuffix)) {
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Size() > tc.segBytes {
					t.Fatalf("segment %s is %d bytes, limit %d", path, fi.Size(), tc.segBytes)
				}
			}
		})
	}
}

func mustGlob(t testing.TB, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestGroupCommitBatches(t *testing.T) {
	tests := []struct {
		name       string
		goroutines int
		perG       int
		interval   time.Duration
	}{
		{name: "64 goroutines default interval", goroutines: 64, perG: 50},
		{name: "200 goroutines 1ms interval", goroutines: 200, perG: 20, interval: time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir(), Options{CommitInterval: tc.interval})
			var wg sync.WaitGroup
			for g := range tc.goroutines {
				wg.Go(func() {
					for i := range tc.perG {
						if _, err := s.AppendSync(ctxT(t), payload(g*tc.perG+i, 200)); err != nil {
							t.Errorf("AppendSync: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			st := s.Stats()
			total := uint64(tc.goroutines * tc.perG)
			if st.Appended != total {
				t.Fatalf("appended %d, want %d", st.Appended, total)
			}
			// Every goroutine waits for its own fsync, so with G writers a
			// batch can hold up to G records; demand a real fraction of it.
			if st.Fsyncs*8 > total {
				t.Fatalf("%d fsyncs for %d records (avg batch %.1f): group commit is not batching", st.Fsyncs, total, st.AvgBatch)
			}
			t.Logf("%d records, %d fsyncs, avg batch %.1f", total, st.Fsyncs, st.AvgBatch)
		})
	}
}

func TestRestartResumesCursors(t *testing.T) {
	dir := t.TempDir()
	opts := smallOpts()
	s := openT(t, dir, opts)
	a, err := s.Cursor("a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Cursor("b")
	if err != nil {
		t.Fatal(err)
	}
	recs := make([][]byte, 500)
	for i := range recs {
		recs[i] = payload(i, 100)
	}
	appendAll(t, s, recs)
	// a acks 0..299 except 150; b reads 100 and acks nothing.
	for _, r := range readN(t, a, 300) {
		if r.Offset != 150 {
			if err := a.Ack(r.Offset); err != nil {
				t.Fatal(err)
			}
		}
	}
	readN(t, b, 100)
	if err := s.Close(ctxT(t)); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s2 := openT(t, dir, opts)
	if got := s2.Cursors(); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("Cursors() = %v, want [a b]", got)
	}
	tests := []struct {
		name string
		from uint64
	}{
		{name: "a", from: 150},
		{name: "b", from: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := s2.Cursor(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			if c.Position() != tc.from {
				t.Fatalf("Position() = %d, want %d", c.Position(), tc.from)
			}
			got := readN(t, c, 500-int(tc.from))
			checkRecords(t, got, tc.from, func(off uint64) []byte { return recs[off] })
			expectNoRecord(t, c)
		})
	}
	// New records continue the offset sequence.
	off, err := s2.AppendSync(ctxT(t), []byte("after restart"))
	if err != nil || off != 500 {
		t.Fatalf("AppendSync after restart = %d, %v; want 500", off, err)
	}
}

func TestAppendErrors(t *testing.T) {
	s := openT(t, t.TempDir(), Options{MaxRecordBytes: 100})
	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{name: "too large", run: func() error {
			return s.Append(ctxT(t), make([]byte, 101), nil)
		}, want: ErrTooLarge},
		{name: "limit is inclusive", run: func() error {
			_, err := s.AppendSync(ctxT(t), make([]byte, 100))
			return err
		}},
		{name: "bad cursor name", run: func() error {
			_, err := s.Cursor("../etc")
			return err
		}, want: errAny},
		{name: "closed", run: func() error {
			if err := s.Close(ctxT(t)); err != nil {
				return err
			}
			return s.Append(ctxT(t), []byte("x"), nil)
		}, want: ErrClosed},
		{name: "close twice", run: func() error { return s.Close(ctxT(t)) }},
		{name: "cursor after close", run: func() error {
			_, err := s.Cursor("late")
			return err
		}, want: ErrClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("error %v, want nil", err)
			case tc.want == errAny && err == nil:
				t.Fatal("no error, want one")
			case tc.want != nil && tc.want != errAny && !errors.Is(err, tc.want):
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestCloseDrainsQueue(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	const n = 1000
	var mu sync.Mutex
	done := 0
	for i := range n {
		err := s.Append(ctxT(t), payload(i, 50), func(off uint64, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Errorf("record %d failed: %v", i, err)
			}
			done++
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if done != n {
		t.Fatalf("%d done callbacks after Close, want %d", done, n)
	}
	mu.Unlock()
	s2 := openT(t, dir, Options{})
	if h := s2.Stats().Head; h != n {
		t.Fatalf("head after reopen = %d, want %d", h, n)
	}
}

func TestOpenLocksDirectory(t *testing.T) {
	dir := t.TempDir()
	openT(t, dir, Options{})
	if s, err := Open(dir, Options{}); err == nil {
		_ = s.Close(context.Background())
		t.Fatal("second Open of the same directory succeeded")
	}
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{name: "zero value", opts: Options{}},
		{name: "small max bytes derives segment size", opts: Options{MaxBytes: 1 << 20}},
		{name: "unknown policy", opts: Options{Policy: "spill"}, wantErr: true},
		{name: "segment too small", opts: Options{SegmentBytes: 100}, wantErr: true},
		{name: "max below two segments", opts: Options{SegmentBytes: 1 << 20, MaxBytes: 1 << 20}, wantErr: true},
		{name: "record larger than segment", opts: Options{SegmentBytes: 8 << 10, MaxRecordBytes: 16 << 10}, wantErr: true},
		{name: "negative interval", opts: Options{CommitInterval: -1}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.opts.withDefaults()
			if (err != nil) != tc.wantErr {
				t.Fatalf("withDefaults() error = %v, wantErr %v", err, tc.wantErr)
			}
		})
	}
}

func TestCloseDeadlineFailsQueued(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	const n = 5000
	var mu sync.Mutex
	calls, ok := 0, 0
	for i := range n {
		err := s.Append(ctxT(t), payload(i, 200), func(_ uint64, err error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, ErrClosed):
				t.Errorf("record %d: %v", i, err)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Close: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != n {
		t.Fatalf("%d done callbacks, want %d", calls, n)
	}
	s2 := openT(t, dir, Options{})
	if h := s2.Stats().Head; h != uint64(ok) {
		t.Fatalf("head after reopen = %d, but %d records were reported durable", h, ok)
	}
	t.Logf("%d of %d committed before the deadline", ok, n)
}

func TestStatsAndLag(t *testing.T) {
	s := openT(t, t.TempDir(), Options{SegmentBytes: 1 << 20, MaxBytes: 64 << 20})
	c, err := s.Cursor("sink")
	if err != nil {
		t.Fatal(err)
	}
	const n, size = 100, 92 // 100 bytes per frame
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = payload(i, size)
	}
	appendAll(t, s, recs)
	tests := []struct {
		name  string
		acked int
		want  Lag
	}{
		{name: "nothing acked", acked: 0, want: Lag{Records: n, Bytes: n * 100}},
		{name: "mid-segment", acked: 40, want: Lag{Records: 60, Bytes: 6000}},
		{name: "caught up", acked: n, want: Lag{}},
	}
	read := 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ackAll(t, c, tc.acked-read)
			read = tc.acked
			if got := c.Lag(); got != tc.want {
				t.Fatalf("Lag() = %+v, want %+v", got, tc.want)
			}
			st := s.Stats()
			if len(st.Cursors) != 1 || st.Cursors[0].Lag != tc.want || st.Cursors[0].Acked != uint64(tc.acked) {
				t.Fatalf("Stats().Cursors = %+v", st.Cursors)
			}
			if st.Head != n || st.Segments != 1 || st.Bytes != segHeaderSize+n*100 || st.Fsyncs == 0 {
				t.Fatalf("Stats() = %+v", st)
			}
			var inBuckets uint64
			for _, c := range st.FsyncBuckets {
				inBuckets += c
			}
			if len(st.FsyncBuckets) != len(FsyncBucketBounds)+1 || inBuckets != st.Fsyncs || st.FsyncMax <= 0 || st.FsyncMax > st.FsyncTime {
				t.Fatalf("fsync histogram %v (max %v) for %d fsyncs taking %v", st.FsyncBuckets, st.FsyncMax, st.Fsyncs, st.FsyncTime)
			}
		})
	}
}

func TestFsyncBucket(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want int
	}{
		{name: "zero", d: 0, want: 0},
		{name: "on the first bound", d: 250 * time.Microsecond, want: 0},
		{name: "just above it", d: 251 * time.Microsecond, want: 1},
		{name: "3 ms", d: 3 * time.Millisecond, want: 4},
		{name: "on the last bound", d: 128 * time.Millisecond, want: len(FsyncBucketBounds) - 1},
		{name: "above every bound", d: time.Second, want: len(FsyncBucketBounds)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := fsyncBucket(tc.d); got != tc.want {
				t.Fatalf("fsyncBucket(%v) = %d, want %d", tc.d, got, tc.want)
			}
		})
	}
	var c counters
	if len(c.fsyncBuckets) != len(FsyncBucketBounds)+1 {
		t.Fatalf("counters hold %d buckets for %d bounds", len(c.fsyncBuckets), len(FsyncBucketBounds))
	}
}
