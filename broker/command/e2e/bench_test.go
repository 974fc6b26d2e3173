package e2e

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/command/kafkasource"
)

// envInt reads a positive integer from the environment, def otherwise.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// latencies collects what the devices receive: one latency per distinct
// sequence number, duplicates counted.
type latencies struct {
	mu   sync.Mutex
	seen []bool
	lat  []time.Duration
	at   []time.Time // scheduled send time of lat[i]
	dups int
	bad  int
	done chan struct{} // closed when every sequence number arrived
}

func (l *latencies) record(p *paho.Publish) { l.add(p.Payload, time.Now()) }

// add records one command's payload received at now: 8 bytes sequence
// number and 8 bytes scheduled send time (little-endian nanoseconds), then
// anything. A "warm-up" payload is not counted.
func (l *latencies) add(payload []byte, now time.Time) {
	if string(payload) == "warm-up" {
		return
	}
	if len(payload) < 16 {
		l.mu.Lock()
		l.bad++
		l.mu.Unlock()
		return
	}
	seq := int(binary.LittleEndian.Uint64(payload))
	sent := time.Unix(0, int64(binary.LittleEndian.Uint64(payload[8:])))
	l.mu.Lock()
	defer l.mu.Unlock()
	if seq < 0 || seq >= len(l.seen) {
		l.bad++
		return
	}
	if l.seen[seq] {
		l.dups++
		return
	}
	l.seen[seq] = true
	l.lat = append(l.lat, now.Sub(sent))
	l.at = append(l.at, sent)
	if len(l.lat) == len(l.seen) {
		close(l.done)
	}
}

// TestBenchKafkaToDevices measures the target: Kafka → device at
// 1,000 commands/s spread over 1,000 connected MQTT 5 devices, p99
// record-to-device latency ≤ 20 ms, zero lost. The latency runs from the
// record's scheduled produce time to the device's receipt (one clock, one
// process). Kafka (kfake), the broker, the command service (its store on
// disk), the status events to Kafka and the devices all share this
// machine.
//
//	SLUICE_BENCH=1 go test -run BenchKafkaToDevices -v ./broker/command/e2e
//
// SLUICE_BENCH_DEVICES, SLUICE_BENCH_RATE (per second),
// SLUICE_BENCH_SECONDS and SLUICE_BENCH_LANES (the source's concurrency)
// change the load.
func TestBenchKafkaToDevices(t *testing.T) {
	if os.Getenv("SLUICE_BENCH") != "1" {
		t.Skip("set SLUICE_BENCH=1 to run the benchmark")
	}
	devices := envInt("SLUICE_BENCH_DEVICES", 1000)
	rate := envInt("SLUICE_BENCH_RATE", 1000)
	seconds := envInt("SLUICE_BENCH_SECONDS", 10)
	n := rate * seconds

	st := startStack(t, 3, func(c *kafkasource.Config) {
		c.CommitInterval = 100 * time.Millisecond
		c.Concurrency = envInt("SLUICE_BENCH_LANES", c.Concurrency)
	})
	l := &latencies{seen: make([]bool, n), lat: make([]time.Duration, 0, n), done: make(chan struct{})}
	names := make([]string, devices)
	t0 := time.Now()
	for i := range devices {
		names[i] = fmt.Sprintf("dev-%04d", i)
		connectDevice(t, st.mqtt, names[i], nil, l.record)
	}
	t.Logf("%d devices connected in %s", devices, time.Since(t0).Round(time.Millisecond))
	prod := newProducer(t, st.kafka)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds)*time.Second+2*time.Minute)
	defer cancel()

	// Warm up: one command per partition's worth of devices, not counted,
	// so the consumer group has joined before the clock starts.
	warm := &kgo.Record{Key: []byte(names[0]), Value: []byte("warm-up")}
	if err := prod.ProduceSync(ctx, warm).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitWarm := time.Now().Add(30 * time.Second)
	for {
		if s, ok, _ := st.svc.Get(commandsTopic + "-" + strconv.Itoa(int(warm.Partition)) + "-" + strconv.FormatInt(warm.Offset, 10)); ok && s.State != "accepted" {
			break
		}
		if time.Now().After(waitWarm) {
			t.Fatal("warm-up command not delivered")
		}
		time.Sleep(10 * time.Millisecond)
	}

	gc0 := gcStats()
	start := time.Now()
	err := producePaced(ctx, prod, names, n, rate, start)
	sendTime := time.Since(start)
	if err != nil {
		t.Fatalf("producing: %v", err)
	}
	select {
	case <-l.done:
	case <-time.After(30 * time.Second):
	}
	gc1 := gcStats()
	sum := l.summarize(t, start, n, devices, sendTime)
	// The harness shares the process (and its GC) with Sluice: 1,000
	// paho.golang clients alone hold ~500 MB (a 65,535-slot receive
	// channel each). GOGC=400 shows what the tail is without GC cycles.
	t.Logf("GC during the run: %d cycles, heap %d MB after, GC CPU %s (GOGC=%q)", gc1.cycles-gc0.cycles,
		gc1.heapMB, (gc1.cpu - gc0.cpu).Round(time.Millisecond), os.Getenv("GOGC"))
	for _, h := range []string{"sluice_commands_kafka_record_age_seconds", "sluice_commands_kafka_submit_seconds",
		"sluice_commands_store_flush_seconds"} {
		t.Logf("%s: %s", h, histSummary(t, st.reg, h))
	}
	sum.check(t)
}

// latencySummary is a run's received latencies, sorted, and what went
// missing or arrived malformed.
type latencySummary struct {
	lat       []time.Duration
	lost, bad int
}

// summarize logs the run's counts, latency quantiles and worst latency
// per second, after the devices are done.
func (l *latencies) summarize(t testing.TB, start time.Time, n, devices int, sendTime time.Duration) latencySummary {
	t.Helper()
	l.mu.Lock()
	lat := slices.Clone(l.lat)
	perSecond := secondMax(start, l.at, l.lat)
	dups, bad := l.dups, l.bad
	l.mu.Unlock()
	slices.Sort(lat)
	s := latencySummary{lat: lat, lost: n - len(lat), bad: bad}
	t.Logf("%d commands to %d devices in %s (%.0f/s): received %d, lost %d, duplicates %d, malformed %d",
		n, devices, sendTime.Round(time.Millisecond), float64(n)/sendTime.Seconds(), len(lat), s.lost, dups, bad)
	t.Logf("record→device latency: p50 %s  p90 %s  p99 %s  p99.9 %s  max %s", s.q(0.50), s.q(0.90), s.q(0.99), s.q(0.999), s.q(1))
	t.Logf("worst latency per second of the run: %v", perSecond)
	return s
}

// q returns the p quantile of the latencies (0 when none arrived).
func (s latencySummary) q(p float64) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	return s.lat[min(len(s.lat)-1, int(p*float64(len(s.lat))))].Round(10 * time.Microsecond)
}

// check fails the benchmark on a lost or malformed command or a p99 above
// the 20 ms target.
func (s latencySummary) check(t testing.TB) {
	t.Helper()
	if s.lost > 0 || s.bad > 0 {
		t.Errorf("%d commands lost, %d malformed", s.lost, s.bad)
	}
	if p99 := s.q(0.99); p99 > 20*time.Millisecond {
		t.Errorf("p99 %s above the 20 ms target", p99)
	}
}

// secondMax returns the worst latency of the commands scheduled in each
// second after start: stalls show up as a few bad seconds.
func secondMax(start time.Time, at []time.Time, lat []time.Duration) []time.Duration {
	var out []time.Duration
	for i, a := range at {
		s := int(a.Sub(start) / time.Second)
		if s < 0 {
			continue
		}
		for len(out) <= s {
			out = append(out, 0)
		}
		out[s] = max(out[s], lat[i].Round(time.Millisecond))
	}
	return out
}

// histSummary describes each series of histogram name: p50, p99 and max
// as the upper bound of the bucket holding them.
func histSummary(t testing.TB, reg *prometheus.Registry, name string) string {
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return familySummary(mfs, name)
}

// familySummary is histSummary over gathered metric families.
func familySummary(mfs []*dto.MetricFamily, name string) string {
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			q := func(q float64) string {
				want := uint64(math.Ceil(q * float64(h.GetSampleCount())))
				for _, b := range h.GetBucket() {
					if b.GetCumulativeCount() >= want {
						return time.Duration(b.GetUpperBound() * float64(time.Second)).String()
					}
				}
				return "+Inf"
			}
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			out = append(out, fmt.Sprintf("{%s} n=%d p50 ≤ %s p99 ≤ %s max ≤ %s", strings.Join(labels, ","), h.GetSampleCount(), q(0.5), q(0.99), q(1)))
		}
	}
	return strings.Join(out, "; ")
}

// gcCounters is what the benchmark reports of the garbage collector.
type gcCounters struct {
	cycles uint64
	heapMB uint64
	cpu    time.Duration // GC CPU time (background and assists)
}

func gcStats() gcCounters {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(s)
	c := gcCounters{cycles: uint64(ms.NumGC), heapMB: ms.HeapAlloc >> 20}
	if s[0].Value.Kind() == metrics.KindFloat64 {
		c.cpu = time.Duration(s[0].Value.Float64() * float64(time.Second))
	}
	return c
}

// producePaced produces n commands at rate per second from start, device
// names[seq % len(names)], and waits for every produce to finish. Each
// value carries its sequence number and scheduled time (little-endian
// uint64s) before the JSON command: a producer running late counts
// against the latency (no coordinated omission).
func producePaced(ctx context.Context, prod *kgo.Client, names []string, n, rate int, start time.Time) error {
	interval := time.Second / time.Duration(rate)
	var produced sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	for seq := range n {
		sched := start.Add(time.Duration(seq) * interval)
		if d := time.Until(sched); d > 0 {
			time.Sleep(d)
		}
		v := make([]byte, 16, 64)
		binary.LittleEndian.PutUint64(v, uint64(seq))
		binary.LittleEndian.PutUint64(v[8:], uint64(sched.UnixNano()))
		v = append(v, `{"set_point":21.5}`...)
		produced.Add(1)
		prod.Produce(ctx, &kgo.Record{Key: []byte(names[seq%len(names)]), Value: v}, func(_ *kgo.Record, err error) {
			defer produced.Done()
			if err != nil {
				errMu.Lock()
				firstErr = cmp.Or(firstErr, err)
				errMu.Unlock()
			}
		})
	}
	produced.Wait()
	return firstErr
}
