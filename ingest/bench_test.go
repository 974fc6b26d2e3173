package ingest

import (
	"context"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/sinks"
)

// countSink accepts every batch and counts records; it reads each value so
// the records' bytes are touched as a real sink's encoder would.
type countSink struct {
	n   atomic.Int64
	sum atomic.Int64
}

func (s *countSink) Write(_ context.Context, batch []sinks.Record) error {
	var sum int64
	for i := range batch {
		for _, c := range batch[i].Value {
			sum += int64(c)
		}
	}
	s.sum.Add(sum)
	s.n.Add(int64(len(batch)))
	return nil
}

func (s *countSink) Close() error { return nil }

// cpuTime is the process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPipeline measures the pipeline in process, from Deliver to the
// sink: publishers × window QoS 1 messages of 256 bytes in flight, one
// rule to one sink, as the e2e benchmark does minus the broker and HTTP.
// It reports the process CPU per message (cpu-ns/msg, which includes the
// benchmark's own publishers) and the rate. SLUICE_BENCH_DATA_BASE puts
// the spool elsewhere (e.g. /dev/shm: no disk).
func BenchmarkPipeline(b *testing.B) {
	for _, mode := range []Mode{ModeNone, ModeSpool} {
		b.Run(string(mode), func(b *testing.B) { benchPipeline(b, mode, 10, 64) })
	}
}

func benchPipeline(b *testing.B, mode Mode, publishers, window int) {
	cfg := DefaultConfig()
	cfg.DataDir = b.TempDir()
	if base := os.Getenv("SLUICE_BENCH_DATA_BASE"); base != "" {
		dir, err := os.MkdirTemp(base, "ingest-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		cfg.DataDir = dir
	}
	cfg.Durability = mode
	sink := &countSink{}
	p, err := New(cfg, Options{Router: routeAll("hook"), Sinks: map[string]sinks.Sink{"hook": sink}, Decoder: rawDecoder{}})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Open(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()

	payload := make([]byte, 256)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, t0 := cpuTime(b), time.Now()
	for w := 0; w < publishers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := "bench-" + strconv.Itoa(w)
			topic := "bench/" + client
			sem := make(chan struct{}, window)
			ack := func(err error) {
				if err != nil {
					b.Error(err)
				}
				<-sem
			}
			for next.Add(1) <= int64(b.N) {
				sem <- struct{}{}
				m := &broker.Message{Topic: topic, ClientID: client, QoS: 1, Payload: payload, ReceivedAt: time.Now()}
				p.Deliver(context.Background(), m, ack)
			}
			for range window {
				sem <- struct{}{}
			}
		}()
	}
	wg.Wait()
	for sink.n.Load() < int64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	elapsed, cpu := time.Since(t0), cpuTime(b)-cpu0
	b.StopTimer()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/msg")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msg/s")
	if mode == ModeSpool {
		st := p.spool.Stats()
		b.ReportMetric(st.AvgBatch, "records/fsync")
	}
}

// rawDecoder does no decoding: the benchmark measures the pipeline, not
// the JSON parser.
type rawDecoder struct{}

func (rawDecoder) Decode(string, []byte) (any, error) { return nil, nil }

// BenchmarkDecodeRecord is the feed's per-record decode: a 256-byte
// payload, one output, into a message and output array on the stack.
func BenchmarkDecodeRecord(b *testing.B) {
	m := &broker.Message{Topic: "bench/bench-1", ClientID: "bench-1", QoS: 1, Payload: make([]byte, 256), ReceivedAt: time.Now()}
	data := appendRecord(nil, m, []Output{{Rule: "all", Sink: "hook"}})
	b.ReportAllocs()
	for b.Loop() {
		var msg broker.Message
		var outs [4]Output
		if _, err := decodeInto(&msg, outs[:0], data, true); err != nil {
			b.Fatal(err)
		}
	}
}
