package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/internal/e2etest"
)

// TestBenchKafkaToDevicesProc measures the target the way a plant
// runs Sluice: the real `sluice` binary alone in its process (commands
// on, the Kafka command source, status events to Kafka through the Kafka
// sink), Kafka in another (internal/kfakeserver), and in this process the
// producer and 1,000 light MQTT 5 devices (a bare connection with the
// packet codec each, PUBACK per command; see fleet). 1,000 records/s for
// 10 s, each stamped with its scheduled produce time; the latency runs
// from that time to the command's arrival at the device (one machine,
// one clock). It reports the latency quantiles, lost and duplicated
// commands, and Sluice's CPU, RSS and GC cycles during the run.
//
//	SLUICE_BENCH=1 go test -run BenchKafkaToDevicesProc -v ./broker/command/e2e
//
// SLUICE_BENCH_DEVICES, SLUICE_BENCH_RATE (per second),
// SLUICE_BENCH_SECONDS and SLUICE_BENCH_LANES (the source's concurrency)
// change the load; SLUICE_BENCH_GC_PERCENT sets Sluice's runtime.gc_percent
// (GOGC, if set for the test, reaches every child process too).
func TestBenchKafkaToDevicesProc(t *testing.T) {
	if os.Getenv("SLUICE_BENCH") != "1" {
		t.Skip("set SLUICE_BENCH=1 to run the benchmark")
	}
	devices := envInt("SLUICE_BENCH_DEVICES", 1000)
	rate := envInt("SLUICE_BENCH_RATE", 1000)
	seconds := envInt("SLUICE_BENCH_SECONDS", 10)
	n := rate * seconds

	sluiceBin := e2etest.BuildSluice(t)
	kfakeBin := e2etest.Binary(t, "github.com/sluicehq/sluice/internal/kfakeserver")
	kafka := startKfake(t, kfakeBin, "-topics", commandsTopic+","+statusTopic, "-partitions", "3")
	s := e2etest.Start(t, sluiceBin, procConfig(t, kafka.addr, filepath.Join(t.TempDir(), "data")))

	l := &latencies{seen: make([]bool, n), lat: make([]time.Duration, 0, n), done: make(chan struct{})}
	warmed := make(chan struct{})
	var warmOnce sync.Once
	f := &fleet{onCommand: func(payload []byte, at time.Time) {
		if string(payload) == "warm-up" {
			warmOnce.Do(func() { close(warmed) })
		}
		l.add(payload, at)
	}}
	t.Cleanup(f.close)
	names := make([]string, devices)
	for i := range names {
		names[i] = fmt.Sprintf("dev-%04d", i)
	}
	t0 := time.Now()
	if err := connectAll(f, s.MQTTAddr, names, 32); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d devices connected in %s", devices, time.Since(t0).Round(time.Millisecond))

	prod := newProducer(t, kafka.addr)
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds)*time.Second+2*time.Minute)
	defer cancel()
	// Warm up: the consumer group joins and the paths are exercised
	// before the clock starts. The source starts at the first offset, so
	// one warm-up record suffices once the group has joined.
	if err := prod.ProduceSync(ctx, &kgo.Record{Key: []byte(names[0]), Value: []byte("warm-up")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-warmed:
	case <-time.After(60 * time.Second):
		t.Fatal("warm-up command not delivered within 60s")
	}

	load0, psi0 := e2etest.LoadAvg(), cpuPressure()
	m0 := scrape(t, s.AdminURL)
	cpu0 := cpuTimes(t, s.Pid(), kafka.proc.Pid(), os.Getpid())
	rss0 := procStatus(s.Pid(), "VmRSS:")
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
	runTime := time.Since(start)
	cpu1 := cpuTimes(t, s.Pid(), kafka.proc.Pid(), os.Getpid())
	rss1, hwm := procStatus(s.Pid(), "VmRSS:"), procStatus(s.Pid(), "VmHWM:")
	m1 := scrape(t, s.AdminURL)
	load1, psi1 := e2etest.LoadAvg(), cpuPressure()

	t.Logf("load average (1 min) %s before, %s after; CPU pressure (some, avg10) %s before, %s after", load0, load1, psi0, psi1)
	sum := l.summarize(t, start, n, devices, sendTime)
	for i, who := range []string{"sluice", "kfakeserver", "test (producer, devices)"} {
		d := cpu1[i] - cpu0[i]
		t.Logf("CPU %s: %s in %s (%.0f %% of a core, %.0f µs per command)", who, d, runTime.Round(time.Millisecond),
			100*d.Seconds()/runTime.Seconds(), float64(d.Microseconds())/float64(n))
	}
	t.Logf("sluice RSS: %d MB before the run, %d MB after, peak %d MB; GC: %.0f cycles, %.1f ms pauses, heap %.0f MB after (runtime.gc_percent %q)",
		rss0>>10, rss1>>10, hwm>>10, gauge(m1, "go_gc_duration_seconds_count")-gauge(m0, "go_gc_duration_seconds_count"),
		1000*(gauge(m1, "go_gc_duration_seconds_sum")-gauge(m0, "go_gc_duration_seconds_sum")),
		gauge(m1, "go_memstats_heap_alloc_bytes")/(1<<20), os.Getenv("SLUICE_BENCH_GC_PERCENT"))
	for _, h := range []string{"sluice_commands_kafka_record_age_seconds", "sluice_commands_kafka_submit_seconds",
		"sluice_commands_store_flush_seconds"} {
		t.Logf("%s: %s", h, familySummary(m1, h))
	}
	if errs, first := f.errors(); errs > 0 {
		t.Errorf("%d devices lost their connection; first: %v", errs, first)
	}
	if e := s.Errors(); e > 0 {
		t.Errorf("sluice logged %d errors", e)
	}
	sum.check(t)
}

// procConfig is Sluice's config for the benchmark: commands on, the Kafka
// source on the commands topic (device = the record key), status events
// to Kafka, settings as in the in-process benchmark (startStack).
func procConfig(t testing.TB, kafkaAddr, dataDir string) string {
	t.Helper()
	var extra string
	if v := os.Getenv("SLUICE_BENCH_GC_PERCENT"); v != "" {
		if _, err := strconv.Atoi(v); err != nil {
			t.Fatalf("SLUICE_BENCH_GC_PERCENT=%q: %v", v, err)
		}
		extra = "runtime: {gc_percent: " + v + "}\n"
	}
	lanes := ""
	if v := envInt("SLUICE_BENCH_LANES", 0); v > 0 {
		lanes = "    concurrency: " + strconv.Itoa(v) + "\n"
	}
	return `log: {level: info, format: json}
broker:
  listeners: [{name: bench, address: "127.0.0.1:0", allow_anonymous: true}]
admin: {address: "127.0.0.1:0"}
ingest:
  data_dir: ` + strconv.Quote(dataDir) + `
sinks:
  status:
    type: kafka
    kafka:
      brokers: [` + strconv.Quote(kafkaAddr) + `]
      topic: ` + statusTopic + `
commands:
  enabled: true
  acl:
    - {permission: allow, action: publish, users: ["kafka:` + commandsTopic + `"], topic: "devices/%c/commands"}
  status: [{sink: status, topic: ` + statusTopic + `}]
  kafka:
    enabled: true
    brokers: [` + strconv.Quote(kafkaAddr) + `]
    topics: [` + commandsTopic + `]
    device: "{{ key }}"
    max_wait: 100ms
    commit_interval: 100ms
` + lanes + extra
}

// kfakeProc is internal/kfakeserver running in its own process.
type kfakeProc struct {
	addr string
	proc *e2etest.Process
}

// startKfake runs kfakeserver on free ports with the given flags and
// kills it when the test ends.
func startKfake(t testing.TB, bin string, flags ...string) *kfakeProc {
	t.Helper()
	addrs := make(chan string, 1)
	p, err := e2etest.StartProcess(bin, flags, func(line string) {
		if a, ok := strings.CutPrefix(line, "listening "); ok {
			select {
			case addrs <- a:
			default:
			}
		}
	})
	if err != nil {
		t.Fatalf("starting kfakeserver: %v", err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			p.Dump(t, "kfakeserver")
		}
	})
	select {
	case a := <-addrs:
		return &kfakeProc{addr: a, proc: p}
	case <-p.Exited():
		t.Fatalf("kfakeserver exited: %v\n%s", p.Err(), p.Tail())
	case <-time.After(60 * time.Second):
		t.Fatal("kfakeserver printed no address within 60s")
	}
	return nil
}

// connectAll connects the named devices, par at a time.
func connectAll(f *fleet, addr string, names []string, par int) error {
	next := make(chan string)
	errs := make(chan error, par)
	var wg sync.WaitGroup
	for range par {
		wg.Go(func() {
			var first error
			for id := range next {
				if first == nil {
					first = f.connect(addr, id)
				}
			}
			errs <- first
		})
	}
	for _, id := range names {
		next <- id
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// cpuTimes is the CPU time of each pid so far.
func cpuTimes(t testing.TB, pids ...int) []time.Duration {
	t.Helper()
	out := make([]time.Duration, len(pids))
	for i, pid := range pids {
		d, err := e2etest.CPUTime(pid)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = d
	}
	return out
}

// procStatus is the value in KiB of the /proc/PID/status field key
// ("VmRSS:"), 0 where unknown.
func procStatus(pid int, key string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, key); ok {
			v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v
		}
	}
	return 0
}

// cpuPressure is the share of the last 10 s some task waited for a CPU
// (/proc/pressure/cpu), "?" where unknown.
func cpuPressure() string {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return "?"
	}
	for f := range strings.FieldsSeq(string(b)) {
		if v, ok := strings.CutPrefix(f, "avg10="); ok {
			return v + " %"
		}
	}
	return "?"
}

// scrape reads Sluice's Prometheus metrics from the admin listener.
func scrape(t testing.TB, adminURL string) []*dto.MetricFamily {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(adminURL + "/metrics")
	if err != nil {
		t.Fatalf("scraping metrics: %v", err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing metrics: %v", err)
	}
	out := make([]*dto.MetricFamily, 0, len(fams))
	for _, mf := range fams {
		out = append(out, mf)
	}
	return out
}

// gauge is the value of the first series of the gauge, counter or
// summary count/sum name (name_count and name_sum read a summary's).
func gauge(mfs []*dto.MetricFamily, name string) float64 {
	for _, mf := range mfs {
		suffix := ""
		if mf.GetName() != name {
			if b, ok := strings.CutSuffix(name, "_count"); ok && b == mf.GetName() {
				suffix = "_count"
			} else if b, ok := strings.CutSuffix(name, "_sum"); ok && b == mf.GetName() {
				suffix = "_sum"
			} else {
				continue
			}
		}
		for _, m := range mf.GetMetric() {
			switch {
			case suffix == "_count" && m.GetSummary() != nil:
				return float64(m.GetSummary().GetSampleCount())
			case suffix == "_sum" && m.GetSummary() != nil:
				return m.GetSummary().GetSampleSum()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
