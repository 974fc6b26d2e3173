package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The ingest benchmarks (SLUICE_BENCH=1). Each starts the real binary
// with a webhook sink that only counts records, loads it with `sluice
// bench pub` or the ack-latency client and prints figures for
// ingest/DESIGN.md, "Ingest benchmarks". Knobs: SLUICE_BENCH_ROUNDS,
// SLUICE_BENCH_SECONDS, SLUICE_BENCH_CLIENTS, SLUICE_BENCH_INFLIGHT,
// SLUICE_BENCH_COMMIT_BYTES, SLUICE_BENCH_RATE, SLUICE_BENCH_RSS_SECONDS,
// SLUICE_BENCH_PERF (1: a perf profile of each throughput run),
// SLUICE_BENCH_PERF_KEEP (a directory to keep each perf.data in).

// throughput is one run of TestBenchThroughput.
type throughput struct {
	Mode        string
	Acked       int64
	AckRate     float64 // acked per second of publishing
	SteadyRate  float64 // records per second reaching the webhook mid-run
	E2ERate     float64 // acked / (start of publishing .. last record at the webhook)
	Drain       time.Duration
	CPUPerMsg   time.Duration // sluice CPU time per acked message
	MaxRSSMiB   float64
	SpoolBatch  float64 // records per fsync (spool mode)
	FsyncMillis float64 // mean fsync time (spool mode)
}

func (r throughput) String() string {
	return fmt.Sprintf("%-5s acked %9d  ack %7.0f/s  steady %7.0f/s  e2e %7.0f/s  drain %6v  cpu %5.1fµs/msg  rss max %5.0f MiB  batch %5.0f  fsync %.2fms",
		r.Mode, r.Acked, r.AckRate, r.SteadyRate, r.E2ERate, r.Drain.Round(time.Millisecond),
		float64(r.CPUPerMsg)/1e3, r.MaxRSSMiB, r.SpoolBatch, r.FsyncMillis)
}

// TestBenchThroughput compares QoS 1 end-to-end throughput in spool mode
// with none mode, alternating the two on the same machine. Target: spool
// ≥ 70% of none.
func TestBenchThroughput(t *testing.T) {
	requireBench(t)
	rounds := envInt(t, "SLUICE_BENCH_ROUNDS", 2)
	dur := time.Duration(envInt(t, "SLUICE_BENCH_SECONDS", 15)) * time.Second
	clients := envInt(t, "SLUICE_BENCH_CLIENTS", 10)
	t.Logf("machine: %s; %d publishers, QoS 1, 256 B, %v per run, %d rounds", machine(), clients, dur, rounds)
	sums := map[string]*throughput{"none": {Mode: "none"}, "spool": {Mode: "spool"}}
	for round := 1; round <= rounds; round++ {
		for _, mode := range []string{"none", "spool"} {
			r := throughputRun(t, mode, dur, clients)
			t.Logf("round %d: %v", round, r)
			s := sums[mode]
			s.Acked += r.Acked
			s.AckRate += r.AckRate / float64(rounds)
			s.SteadyRate += r.SteadyRate / float64(rounds)
			s.E2ERate += r.E2ERate / float64(rounds)
			s.Drain += r.Drain / time.Duration(rounds)
			s.CPUPerMsg += r.CPUPerMsg / time.Duration(rounds)
			s.MaxRSSMiB = max(s.MaxRSSMiB, r.MaxRSSMiB)
			s.SpoolBatch += r.SpoolBatch / float64(rounds)
			s.FsyncMillis += r.FsyncMillis / float64(rounds)
		}
	}
	none, spool := sums["none"], sums["spool"]
	t.Logf("mean: %v", none)
	t.Logf("mean: %v", spool)
	ratio := spool.E2ERate / none.E2ERate
	verdict := "met"
	if ratio < 0.7 {
		verdict = "MISSED"
	}
	t.Logf("spool/none end-to-end: %.0f%% (ack rate %.0f%%, steady %.0f%%); target >= 70%%: %s",
		100*ratio, 100*spool.AckRate/none.AckRate, 100*spool.SteadyRate/none.SteadyRate, verdict)
}

// throughputRun runs sluice in mode, publishes at full speed for dur and
// waits until every acknowledged message reached the webhook.
func throughputRun(t *testing.T, mode string, dur time.Duration, clients int) throughput {
	t.Helper()
	h := newCountHook(t)
	dir := t.TempDir()
	cfg := setup{
		DataDir: benchDataDir(t, dir), HookURL: h.URL(), Body: "array", Topics: []string{"bench/#"},
		Durability: mode, RetryInitial: 100 * time.Millisecond, RetryMax: 5 * time.Second,
		CommitBytes: os.Getenv("SLUICE_BENCH_COMMIT_BYTES"),
	}.write(t, dir)
	p := startSluice(t, cfg)
	before, err := readProcStat(p.Pid())
	if err != nil {
		t.Fatal(err)
	}
	type point struct {
		at time.Duration
		n  int64
	}
	var mu sync.Mutex
	var points []point
	var maxRSS int64
	smp := startSampler(250*time.Millisecond, func(at time.Duration) {
		ps, _ := readProcStat(p.Pid())
		mu.Lock()
		points = append(points, point{at, h.records.Load()})
		maxRSS = max(maxRSS, ps.RSSKiB)
		mu.Unlock()
	})
	var profile string
	profDir := t.TempDir()
	profiled := make(chan struct{})
	go func() {
		defer close(profiled)
		if dur > 4*time.Second {
			time.Sleep(2 * time.Second)
			profile = perfProfile(profDir, p.Pid(), dur-4*time.Second, 40)
		}
	}()
	start := time.Now()
	sum := runBenchPub(t, p.MQTTAddr, "-clients", strconv.Itoa(clients), "-inflight", strconv.Itoa(envInt(t, "SLUICE_BENCH_INFLIGHT", 64)),
		"-duration", dur.String(), "-drain", "60s")
	pubEnd := time.Now()
	<-profiled
	if profile != "" {
		t.Logf("%s: CPU profile of sluice (perf, inclusive):\n%s", mode, profile)
	}
	if sum.Acked == 0 || sum.Errors > 0 || sum.Rejected > 0 {
		t.Fatalf("%s: sluice bench: %+v", mode, sum)
	}
	var last time.Time
	eventually(t, 10*time.Minute, func() (bool, string) {
		n := h.records.Load()
		last = time.Now()
		return n >= sum.Acked, fmt.Sprintf("%s: webhook has %d of %d acked records", mode, n, sum.Acked)
	})
	smp.Stop()
	after, _ := readProcStat(p.Pid())
	st := p.waitSettled(t, 2*time.Minute)
	p.Stop()

	r := throughput{Mode: mode, Acked: sum.Acked, AckRate: float64(sum.Acked) / sum.Seconds,
		E2ERate: float64(sum.Acked) / last.Sub(start).Seconds(), Drain: last.Sub(pubEnd),
		CPUPerMsg: (after.CPU - before.CPU) / time.Duration(sum.Acked), MaxRSSMiB: float64(maxRSS) / 1024}
	// Steady rate: from 2 s in to 1 s before the publishers stop.
	mu.Lock()
	var a, b *point
	for i := range points {
		if points[i].at >= 2*time.Second && a == nil {
			a = &points[i]
		}
		if points[i].at <= dur-time.Second {
			b = &points[i]
		}
	}
	if a != nil && b != nil && b.at > a.at {
		r.SteadyRate = float64(b.n-a.n) / (b.at - a.at).Seconds()
	}
	mu.Unlock()
	if st.Spool.Fsyncs > 0 {
		r.SpoolBatch = st.Spool.AvgBatch
		r.FsyncMillis = float64(st.Spool.FsyncTime) / float64(st.Spool.Fsyncs) / 1e6
	}
	return r
}

// TestBenchLatency measures publish→PUBACK latency in spool and none mode
// at half of the spool mode's maximum rate, both measured with the same
// client and payloads (256-byte JSON): first the client runs unpaced
// against spool mode (SLUICE_BENCH_RATE=N skips that and uses N), then
// paced at half of what it reached, alternating the modes. Target: spool
// p99 ≤ commit_interval (2 ms) + 2 ms over none mode's.
func TestBenchLatency(t *testing.T) {
	requireBench(t)
	rounds := envInt(t, "SLUICE_BENCH_ROUNDS", 2)
	dur := time.Duration(envInt(t, "SLUICE_BENCH_SECONDS", 15)) * time.Second
	run := func(mode string, rate float64, d time.Duration) (ackResult, ingestState) {
		h := newCountHook(t)
		dir := t.TempDir()
		cfg := setup{DataDir: benchDataDir(t, dir), HookURL: h.URL(), Body: "array", Topics: []string{"bench/#"}, Durability: mode}.write(t, dir)
		p := startSluice(t, cfg)
		res, err := measureAckLatency(context.Background(), p.MQTTAddr, "bench", 10, rate, d, 256)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		st := p.waitSettled(t, 2*time.Minute)
		p.Stop()
		return res, st
	}
	half := float64(envInt(t, "SLUICE_BENCH_RATE", 0))
	if half == 0 {
		res, _ := run("spool", 1e9, dur)
		t.Logf("spool mode unpaced: %v", res)
		half = res.Rate / 2
	}
	t.Logf("machine: %s; half load = %.0f msg/s over 10 connections, QoS 1, 256 B JSON, %v per run", machine(), half, dur)
	for round := 1; round <= rounds; round++ {
		for _, mode := range []string{"none", "spool"} {
			res, st := run(mode, half, dur)
			batch := ""
			if st.Spool.Fsyncs > 0 {
				batch = fmt.Sprintf("; %.1f records per fsync, fsync mean %.2fms, %s", st.Spool.AvgBatch, float64(st.Spool.FsyncTime)/float64(st.Spool.Fsyncs)/1e6, st.fsyncTail())
			}
			t.Logf("round %d %-5s %v%s (%s)", round, mode, res, batch, loadAvg())
		}
	}
}

// TestBenchMemory keeps the webhook down (503) for SLUICE_BENCH_RSS_SECONDS
// (default 150) while MQTT 5 publishers go at full speed against a 256 MiB
// spool with policy block, sampling the process's VmRSS and the spool size
// every second; then the webhook recovers and the backlog drains.
func TestBenchMemory(t *testing.T) {
	requireBench(t)
	down := time.Duration(envInt(t, "SLUICE_BENCH_RSS_SECONDS", 150)) * time.Second
	clients := envInt(t, "SLUICE_BENCH_CLIENTS", 10)
	h := newCountHook(t)
	h.status.Store(http.StatusServiceUnavailable)
	dir := t.TempDir()
	cfg := setup{
		DataDir: benchDataDir(t, dir), HookURL: h.URL(), Body: "array", Topics: []string{"bench/#"},
		SpoolMax: "256MiB", Policy: "block", BlockTimeout: 5 * time.Second,
		RetryInitial: 100 * time.Millisecond, RetryMax: 2 * time.Second,
	}.write(t, dir)
	p := startSluice(t, cfg)
	t.Logf("machine: %s; webhook down %v, %d MQTT 5 publishers QoS 1 256 B at full speed, spool 256 MiB block", machine(), down, clients)

	var mu sync.Mutex
	var rows []string
	var maxRSS, lastRSS int64
	phase := "down"
	smp := startSampler(time.Second, func(at time.Duration) {
		ps, err := readProcStat(p.Pid())
		if err != nil {
			return
		}
		st, err := p.ingest()
		if err != nil {
			return
		}
		f := st.flow("dev", "hook")
		mu.Lock()
		maxRSS, lastRSS = max(maxRSS, ps.RSSKiB), ps.RSSKiB
		rows = append(rows, fmt.Sprintf("| %4.0f | %-5s | %6.1f | %6.1f | %9d | %9d | %9d | %7d |", at.Seconds(), phase,
			float64(ps.RSSKiB)/1024, float64(st.Spool.Bytes)/(1<<20), f.Received, f.Delivered, f.Buffered, st.Accounting.Rejected))
		mu.Unlock()
	})
	sum := runBenchPub(t, p.MQTTAddr, "-v", "5", "-clients", strconv.Itoa(clients), "-inflight", "64",
		"-duration", down.String(), "-drain", "10s")
	mu.Lock()
	phase = "up"
	rssAtRecovery := lastRSS
	mu.Unlock()
	h.status.Store(http.StatusOK)
	recovered := time.Now()
	st := p.waitSettled(t, 10*time.Minute)
	drain := time.Since(recovered)
	time.Sleep(2 * time.Second)
	smp.Stop()
	p.Stop()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("bench: sent %d acked %d rejected %d unacked %d errors %d %v", sum.Sent, sum.Acked, sum.Rejected, sum.Unacked, sum.Errors, sum.Samples)
	t.Logf("webhook recovered: backlog drained in %v; %v", drain.Round(time.Millisecond), st.flow("dev", "hook"))
	t.Logf("max RSS %.1f MiB, at recovery %.1f MiB", float64(maxRSS)/1024, float64(rssAtRecovery)/1024)
	t.Logf("curve:\n| t (s) | sink  | RSS MiB | spool MiB | received | delivered | buffered | rejected |\n|---|---|---|---|---|---|---|---|\n%s", strings.Join(rows, "\n"))
}
