package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2etest"
)

// requireBench skips unless SLUICE_BENCH=1: the benchmarks run for
// minutes and load both cores.
func requireBench(t *testing.T) {
	t.Helper()
	if os.Getenv("SLUICE_BENCH") != "1" {
		t.Skip("benchmark: set SLUICE_BENCH=1 to run")
	}
}

// envInt reads an integer knob, def when unset.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return n
}

// benchDataDir is the data directory of a benchmark run: under dir, or
// under SLUICE_BENCH_DATA_BASE when set (e.g. /dev/shm, to take the disk
// out of the measurement).
func benchDataDir(t *testing.T, dir string) string {
	t.Helper()
	base := os.Getenv("SLUICE_BENCH_DATA_BASE")
	if base == "" {
		return filepath.Join(dir, "data")
	}
	d, err := os.MkdirTemp(base, "sluice-bench-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// countHook is the benchmark webhook: it only counts records (one
// "topic" key per record object), so the sink side stays cheap.
type countHook struct {
	srv      *httptest.Server
	status   atomic.Int32
	records  atomic.Int64
	requests atomic.Int64
	pool     sync.Pool
}

func newCountHook(t testing.TB) *countHook {
	h := &countHook{}
	h.status.Store(http.StatusOK)
	h.pool.New = func() any { return new(bytes.Buffer) }
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		buf := h.pool.Get().(*bytes.Buffer)
		buf.Reset()
		_, err := io.Copy(buf, r.Body)
		status := int(h.status.Load())
		if err == nil && status == http.StatusOK {
			h.records.Add(int64(bytes.Count(buf.Bytes(), []byte(`"topic":`))))
		}
		h.pool.Put(buf)
		w.WriteHeader(status)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *countHook) URL() string { return h.srv.URL + "/bench" }

// benchSummary is the part of `sluice bench -json` the benchmarks read.
type benchSummary struct {
	Seconds  float64  `json:"seconds"`
	Sent     int64    `json:"sent"`
	Acked    int64    `json:"acked"`
	Rejected int64    `json:"rejected"`
	Unacked  int64    `json:"unacked"`
	SentRate float64  `json:"sent_rate"`
	Errors   int64    `json:"errors"`
	Samples  []string `json:"error_samples"`
}

// runBenchPub runs `sluice bench pub` against addr with args appended to
// the defaults (QoS 1, 256-byte payloads, topic bench/%i, JSON summary).
func runBenchPub(t *testing.T, addr string, args ...string) benchSummary {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	full := append([]string{"bench", "pub", "-host", host, "-port", port, "-qos", "1", "-size", "256",
		"-topic", "bench/%i", "-json", "-quiet"}, args...)
	cmd := exec.Command(e2etest.BuildSluice(t), full...)
	cmd.Env = e2etest.CleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("sluice %s: %v\n%s", strings.Join(full, " "), err, errb.String())
	}
	var s benchSummary
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatalf("sluice bench output %q: %v", out.String(), err)
	}
	return s
}

// procStat is what /proc says about a process.
type procStat struct {
	RSSKiB int64
	CPU    time.Duration // user + system
}

// readProcStat reads VmRSS and the CPU time of pid.
func readProcStat(pid int) (procStat, error) {
	var s procStat
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			s.RSSKiB, _ = strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the command name (which may hold spaces) start at ')'.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) > 13 {
		ut, _ := strconv.ParseInt(fields[11], 10, 64)
		st, _ := strconv.ParseInt(fields[12], 10, 64)
		s.CPU = time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
	}
	return s, nil
}

// sampler records a value every interval until stopped.
type sampler struct {
	stop chan struct{}
	done chan struct{}
}

func startSampler(every time.Duration, f func(at time.Duration)) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	start := time.Now()
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
				f(time.Since(start))
			}
		}
	}()
	return s
}

// Stop ends the sampler and waits for it.
func (s *sampler) Stop() {
	close(s.stop)
	<-s.done
}

// machine describes where the benchmark ran.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	out, _ := exec.Command("nproc").Output()
	return fmt.Sprintf("%s, %s cores, %s", model, strings.TrimSpace(string(out)), loadAvg())
}

// loadAvg is the 1-minute load average: the machine is shared, so every
// figure is printed with it.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "load unknown"
	}
	return "load " + strings.Fields(string(b))[0]
}

// perfProfile samples pid's CPU with perf for d (SLUICE_BENCH_PERF=1) and
// returns the top entries of perf report by inclusive time, or why there
// are none; "" when profiling is off. It keeps perf.data in dir, and a
// copy in SLUICE_BENCH_PERF_KEEP when that names a directory.
func perfProfile(dir string, pid int, d time.Duration, top int) string {
	if os.Getenv("SLUICE_BENCH_PERF") != "1" {
		return ""
	}
	perf, err := exec.LookPath("perf")
	if err != nil {
		return fmt.Sprintf("perf not found: %v", err)
	}
	data := filepath.Join(dir, "perf.data")
	rec := exec.Command(perf, "record", "-e", "cpu-clock", "-F", "499", "-g", "-p", strconv.Itoa(pid),
		"-o", data, "--", "sleep", strconv.Itoa(int(d.Seconds())))
	if out, err := rec.CombinedOutput(); err != nil {
		return fmt.Sprintf("perf record: %v\n%s", err, out)
	}
	if keep := os.Getenv("SLUICE_BENCH_PERF_KEEP"); keep != "" {
		// For a finer breakdown than the report below (perf script).
		if b, err := os.ReadFile(data); err == nil {
			_ = os.WriteFile(filepath.Join(keep, fmt.Sprintf("sluice-%d.perf.data", pid)), b, 0o644)
		}
	}
	out, err := exec.Command(perf, "report", "-i", data, "--stdio", "--children", "--sort", "symbol", "-g", "none").Output()
	if err != nil {
		return fmt.Sprintf("perf report: %v", err)
	}
	var lines []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || strings.HasPrefix(line, "#") {
			continue
		}
		lines = append(lines, fmt.Sprintf("%8s %8s  %s", f[0], f[1], f[3]))
		if len(lines) == top {
			break
		}
	}
	return "   total     self  function\n" + strings.Join(lines, "\n")
}
