// Package e2e runs the real sluice binary against a real ClickHouse server
// (internal/chtest: the machine's clickhouse-server in its own directory
// on free ports), publishing with real MQTT clients and reading the table
// back over ClickHouse's HTTP interface.
//
// The throughput run (TestBenchEndToEnd) runs only with SLUICE_BENCH=1.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binary builds cmd/sluice once per test binary and returns its path.
func binary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the sluice binary and a ClickHouse server")
	}
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "sluice-ch-e2e-"); buildErr != nil {
			return
		}
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		cmd := exec.Command(goBin, "build", "-o", filepath.Join(buildDir, "sluice"), "github.com/sluicehq/sluice/cmd/sluice")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "sluice")
}

// cleanEnv is the environment without SLUICE_* variables, which would
// override the test's config file.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") {
			env = append(env, kv)
		}
	}
	return env
}

// logTail keeps the last lines a process wrote, printed when a test fails.
type logTail struct {
	mu    sync.Mutex
	lines []string
}

func (l *logTail) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == 400 {
		l.lines = append(l.lines[:0], l.lines[200:]...)
	}
	l.lines = append(l.lines, s)
}

// String is the kept lines, one a line.
func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func (l *logTail) dump(t testing.TB, who string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		t.Logf("%s: %s", who, s)
	}
}

// process is a started child process whose output is read to the end.
type process struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited; then err is set
	err     error
	tail    logTail
	readers sync.WaitGroup
}

// startProcess starts bin with args; every line of stdout and stderr goes
// to the tail and to onLine (which must not block).
func startProcess(bin string, args []string, onLine func(string)) (*process, error) {
	p := &process{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	p.cmd.Env = cleanEnv()
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	for _, r := range []io.Reader{stdout, stderr} {
		p.readers.Add(1)
		go func() {
			defer p.readers.Done()
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				p.tail.add(sc.Text())
				onLine(sc.Text())
			}
		}()
	}
	go func() {
		p.readers.Wait() // Wait closes the pipes: read them to the end first
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// signal sends sig and waits up to timeout for the exit. It reports
// whether the process exited in time.
func (p *process) signal(sig syscall.Signal, timeout time.Duration) bool {
	select {
	case <-p.exited:
		return true
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return true
	case <-time.After(timeout):
		return false
	}
}

// kill ends the process if it still runs and waits for it.
func (p *process) kill() {
	if !p.signal(syscall.SIGKILL, time.Minute) {
		panic("process survived SIGKILL for a minute")
	}
}

// sluiceProc is a running `sluice run -c FILE`.
type sluiceProc struct {
	t        testing.TB
	proc     *process
	MQTTAddr string
	Admin    string // base URL of the admin listener
}

// startSluice writes config to a file and runs sluice with it. The config
// must log JSON and bind an MQTT listener and the admin listener; their
// addresses are read from the "mqtt listening" and "admin listening" log
// lines.
func startSluice(t testing.TB, bin, config string) *sluiceProc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	type logLine struct {
		Msg     string `json:"msg"`
		Address string `json:"address"`
	}
	lines := make(chan logLine, 16)
	p, err := startProcess(bin, []string{"run", "-c", path}, func(line string) {
		var l logLine
		if json.Unmarshal([]byte(line), &l) == nil && strings.HasSuffix(l.Msg, " listening") {
			select {
			case lines <- l:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &sluiceProc{t: t, proc: p}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			p.tail.dump(t, "sluice")
		}
	})
	timeout := time.After(60 * time.Second)
	for s.MQTTAddr == "" || s.Admin == "" {
		select {
		case l := <-lines:
			switch l.Msg {
			case "mqtt listening":
				s.MQTTAddr = l.Address
			case "admin listening":
				s.Admin = "http://" + l.Address
			}
		case <-p.exited:
			p.tail.dump(t, "sluice")
			t.Fatalf("sluice exited before listening: %v", p.err)
		case <-timeout:
			t.Fatal("sluice did not log its mqtt and admin addresses within 60s")
		}
	}
	return s
}

// stop sends SIGTERM and expects a clean exit.
func (s *sluiceProc) stop() {
	s.t.Helper()
	if !s.proc.signal(syscall.SIGTERM, 60*time.Second) {
		s.t.Fatal("sluice did not exit within 60s of SIGTERM")
	}
	if s.proc.err != nil {
		s.t.Fatalf("sluice exited with %v after SIGTERM, want status 0", s.proc.err)
	}
}

// flowStats is one (rule, sink) entry of GET /api/v1/ingest.
type flowStats struct {
	Rule         string           `json:"rule"`
	Sink         string           `json:"sink"`
	Received     int64            `json:"received"`
	Delivered    int64            `json:"delivered"`
	Retried      int64            `json:"retried"`
	DeadLettered int64            `json:"dead_lettered"`
	Dropped      map[string]int64 `json:"dropped"`
	Buffered     int64            `json:"buffered"`
}

// ingestStats is the part of GET /api/v1/ingest the tests read.
type ingestStats struct {
	Accounting struct {
		Messages     int64       `json:"messages"`
		Unrouted     int64       `json:"unrouted"`
		DecodeErrors int64       `json:"decode_errors"`
		Rejected     int64       `json:"rejected"`
		Corrupt      int64       `json:"corrupt_records"`
		Flows        []flowStats `json:"flows"`
	} `json:"accounting"`
	Balanced bool `json:"balanced"`
	Sinks    []struct {
		Name        string  `json:"name"`
		Connected   bool    `json:"connected"`
		Writes      int64   `json:"writes"`
		WriteErrors int64   `json:"write_errors"`
		Records     int64   `json:"records"`
		AvgBatch    float64 `json:"avg_batch"`
		AvgLatency  string  `json:"avg_latency"`
		LastError   string  `json:"last_error"`
	} `json:"sinks"`
}

// flow returns the accounting of (rule, sink), zero when absent.
func (s ingestStats) flow(rule, sink string) flowStats {
	for _, f := range s.Accounting.Flows {
		if f.Rule == rule && f.Sink == sink {
			return f
		}
	}
	return flowStats{Rule: rule, Sink: sink}
}

// ingest reads GET /api/v1/ingest.
func (s *sluiceProc) ingest() (ingestStats, error) {
	var st ingestStats
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(s.Admin + "/api/v1/ingest")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return st, err
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /api/v1/ingest: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("decoding /api/v1/ingest: %w: %s", err, body)
	}
	return st, nil
}

// waitIngest polls the accounting until cond holds, failing after
// timeout with the last snapshot.
func (s *sluiceProc) waitIngest(what string, timeout time.Duration, cond func(ingestStats) bool) ingestStats {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := s.ingest()
		if err == nil && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("waiting %v for %s: last accounting %+v, err %v", timeout, what, st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// drained waits until the flow of (rule, sink) has received at least
// want records and holds none, and returns the final accounting.
func (s *sluiceProc) drained(rule, sink string, want int64, timeout time.Duration) ingestStats {
	s.t.Helper()
	return s.waitIngest(fmt.Sprintf("%s→%s to drain %d records", rule, sink, want), timeout, func(st ingestStats) bool {
		f := st.flow(rule, sink)
		return f.Received >= want && f.Buffered == 0
	})
}

// checkBalanced fails unless the flow of (rule, sink) is settled: every
// record it received delivered or dead-lettered, deadLettered of them
// dead-lettered, none buffered or dropped, no message refused or corrupt,
// and, when jsonPayloads, none undecodable, and the whole accounting
// balanced.
func checkBalanced(t testing.TB, st ingestStats, rule, sink string, deadLettered int64, jsonPayloads bool) {
	t.Helper()
	if !st.Balanced {
		t.Errorf("accounting not balanced: %+v", st.Accounting)
	}
	f := st.flow(rule, sink)
	var dropped int64
	for _, n := range f.Dropped {
		dropped += n
	}
	if f.Buffered != 0 || f.DeadLettered != deadLettered || dropped != 0 || f.Delivered != f.Received-deadLettered {
		t.Errorf("flow %s→%s: %+v, want %d dead-lettered and every other received record delivered", rule, sink, f, deadLettered)
	}
	if st.Accounting.Rejected != 0 || st.Accounting.Corrupt != 0 {
		t.Errorf("accounting: rejected %d, corrupt %d, want 0", st.Accounting.Rejected, st.Accounting.Corrupt)
	}
	if jsonPayloads && st.Accounting.DecodeErrors != 0 {
		t.Errorf("accounting: %d decode errors, want 0 (every payload is JSON)", st.Accounting.DecodeErrors)
	}
}
