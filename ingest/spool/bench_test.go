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

// BenchmarkCursorRead measures reading committed 200-byte records and
// acking each: Next (a copy owned by the caller) and NextBatch (up to 256
// records aliasing the read buffer). Records are prefilled in chunks
// (timer stopped) so the spool never holds more than one chunk: the
// cursor acks, retention frees segments.
func BenchmarkCursorRead(b *testing.B) {
	for _, batch := range []int{0, 256} {
		name := "Next"
		if batch > 0 {
			name = fmt.Sprintf("NextBatch=%d", batch)
		}
		b.Run(name, func(b *testing.B) { benchCursorRead(b, batch) })
	}
}

func benchCursorRead(b *testing.B, batch int) {
	s := openT(b, b.TempDir(), Options{SegmentBytes: 16 << 20})
	c, err := s.Cursor("bench")
	if err != nil {
		b.Fatal(err)
	}
	rec := payload(0, 200)
	var wg sync.WaitGroup
	ctx := context.Background()
	done := func(uint64, error) { wg.Done() }
	var recs []Record
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
		for read := 0; read < n; {
			if batch == 0 {
				r, err := c.Next(ctx)
				if err != nil {
					b.Fatal(err)
				}
				recs = append(recs[:0], r)
			} else if recs, err = c.NextBatch(ctx, recs[:0], min(batch, n-read)); err != nil {
				b.Fatal(err)
			}
			for _, r := range recs {
				if err := c.Ack(r.Offset); err != nil {
					b.Fatal(err)
				}
			}
			read += len(recs)
		}
	}
}

// BenchmarkAppendWindow is the broker's QoS 1 path with many messages in
// flight: producers each keep window records appended but not yet durable
// (publishers waiting for PUBACKs). The batch that forms during one
// fdatasync is what the next one covers, so the commit cycle decides the
// rate; the pipelined committer writes that batch while the sync runs.
func BenchmarkAppendWindow(b *testing.B) {
	for _, bc := range []struct{ producers, window, size int }{
		{10, 64, 270},
		{50, 100, 270},
	} {
		b.Run(fmt.Sprintf("%dx%d", bc.producers, bc.window), func(b *testing.B) {
			s := openT(b, b.TempDir(), Options{})
			rec := payload(0, bc.size)
			var wg sync.WaitGroup
			per := b.N/bc.producers + 1
			b.SetBytes(int64(bc.size))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for range bc.producers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					sem := make(chan struct{}, bc.window)
					done := func(uint64, error) { <-sem }
					for range per {
						sem <- struct{}{}
						if err := s.Append(context.Background(), rec, done); err != nil {
							b.Error(err)
							return
						}
					}
					for range bc.window {
						sem <- struct{}{}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			st := s.Stats()
			b.ReportMetric(float64(st.Appended)/elapsed.Seconds(), "records/s")
			b.ReportMetric(st.AvgBatch, "records/fsync")
			b.ReportMetric(float64(st.FsyncTime.Microseconds())/float64(st.Fsyncs), "us/fsync")
		})
	}
}
