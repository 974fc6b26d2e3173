package spool

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkAppendParallel measures durable appends of 200-byte records from
// many goroutines, each waiting for its own record to be fsynced (the
// broker's QoS 1 path). It reports records/s and records per fsync.
func BenchmarkAppendParallel(b *testing.B) {
	for _, perProc := range []int{8, 32, 128} {
		b.Run(fmt.Sprintf("goroutines=%d", perProc*2), func(b *testing.B) {
			s := openT(b, b.TempDir(), Options{})
			rec := payload(0, 200)
			b.SetParallelism(perProc)
			b.SetBytes(200)
			b.ReportAllocs()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := s.AppendSync(ctx, rec); err != nil {
						b.Error(err)
						return
					}
				}
			})
			elapsed := time.Since(start)
			st := s.Stats()
			b.ReportMetric(float64(st.Appended)/elapsed.Seconds(), "records/s")
			b.ReportMetric(st.AvgBatch, "records/fsync")
			b.ReportMetric(float64(st.Fsyncs), "fsyncs")
			b.ReportMetric(float64(st.FsyncTime.Microseconds())/float64(st.Fsyncs), "us/fsync")
		})
	}
}

// BenchmarkAppendAsync measures the pipelined path: one producer appends
// without waiting and counts completions through the done callback.
func BenchmarkAppendAsync(b *testing.B) {
	s := openT(b, b.TempDir(), Options{})
	rec := payload(0, 200)
	var wg sync.WaitGroup
	done := func(uint64, error) { wg.Done() }
	b.SetBytes(200)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	ctx := context.Background()
	for range b.N {
		wg.Add(1)
		if err := s.Append(ctx, rec, done); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	st := s.Stats()
	b.ReportMetric(float64(st.Appended)/elapsed.Seconds(), "records/s")
	b.ReportMetric(st.AvgBatch, "records/fsync")
}

// BenchmarkCursorRead measures Next+Ack over committed 200-byte records.
// Records are prefilled in chunks (timer stopped) so the spool never holds
// more than one chunk: the cursor acks, retention frees segments.
func BenchmarkCursorRead(b *testing.B) {
	s := openT(b, b.TempDir(), Options{SegmentBytes: 16 << 20})
	c, err := s.Cursor("bench")
	if err != nil {
		b.Fatal(err)
	}
	rec := payload(0, 200)
	var wg sync.WaitGroup
	ctx := context.Background()
	done := func(uint64, error) { wg.Done() }
	b.SetBytes(200)
	b.ReportAllocs()
	b.ResetTimer()
	const chunk = 200_000
	for left := b.N; left > 0; left -= chunk {
		n := min(left, chunk)
		b.StopTimer()
		for range n {
			wg.Add(1)
			if err := s.Append(ctx, rec, done); err != nil {
				b.Fatal(err)
			}
		}
		wg.Wait()
		b.StartTimer()
		for range n {
			r, err := c.Next(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Ack(r.Offset); err != nil {
				b.Fatal(err)
			}
		}
	}
}
