package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
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
	buildBin  string
	buildErr  error
)

// TestMain removes the built binary after the run.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// sluiceBinary builds cmd/sluice once per test run and returns its path.
func sluiceBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the sluice binary")
	}
	buildOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		buildDir, buildErr = os.MkdirTemp("", "sluice-e2e-*")
		if buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "sluice")
		cmd := exec.Command(goBin, "build", "-o", buildBin, "../../cmd/sluice")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// cleanEnv is the test's environment without SLUICE_* variables, so the
// config file alone decides.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") {
			env = append(env, kv)
		}
	}
	return env
}

// logLine is the part of a JSON log record the tests read.
type logLine struct {
	Level   string `json:"level"`
	Msg     string `json:"msg"`
	Address string `json:"address"`
}

// proc is one sluice process started with `sluice run -c FILE`.
type proc struct {
	t        testing.TB
	cmd      *exec.Cmd
	MQTTAddr string // host:port of the MQTT listener
	AdminURL string // http://host:port of the admin listener
	exited   chan struct{}
	exitErr  error // set before exited is closed

	mu     sync.Mutex
	tail   []string // last log lines, for failure reports
	errors int      // ERROR lines logged
}

const tailLines = 200

// startSluice runs the binary with config file cfg and waits until both
// listeners are up (their addresses are read from the JSON log). The
// process is killed when the test ends if it still runs.
func startSluice(t testing.TB, cfg string) *proc {
	t.Helper()
	p := &proc{t: t, cmd: exec.Command(sluiceBinary(t), "run", "-c", cfg), exited: make(chan struct{})}
	p.cmd.Env = cleanEnv()
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan logLine, 4)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.consume(sc.Text(), ready)
		}
	}()
	go func() {
		<-readerDone // Wait closes the pipe: read it to the end first
		p.exitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("last sluice log lines (pid %d):\n%s", p.cmd.Process.Pid, p.Tail())
		}
	})
	deadline := time.After(30 * time.Second)
	for p.MQTTAddr == "" || p.AdminURL == "" {
		select {
		case l := <-ready:
			if l.Msg == "mqtt listening" {
				p.MQTTAddr = l.Address
			} else {
				p.AdminURL = "http://" + l.Address
			}
		case <-p.exited:
			t.Fatalf("sluice exited before listening: %v\n%s", p.exitErr, p.Tail())
		case <-deadline:
			t.Fatalf("sluice did not log its listening addresses within 30s\n%s", p.Tail())
		}
	}
	return p
}

// consume keeps a log line and passes listener addresses on.
func (p *proc) consume(line string, ready chan<- logLine) {
	var l logLine
	if err := json.Unmarshal([]byte(line), &l); err != nil {
		l = logLine{Level: "RAW", Msg: line}
	}
	p.mu.Lock()
	p.tail = append(p.tail, line)
	if len(p.tail) > tailLines {
		p.tail = p.tail[len(p.tail)-tailLines:]
	}
	if l.Level == "ERROR" {
		p.errors++
	}
	p.mu.Unlock()
	if (l.Msg == "mqtt listening" || l.Msg == "admin listening") && l.Address != "" {
		select {
		case ready <- l:
		default:
		}
	}
}

// Tail returns the last log lines.
func (p *proc) Tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// Errors returns the number of ERROR lines logged so far.
func (p *proc) Errors() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errors
}

// Pid is the process id.
func (p *proc) Pid() int { return p.cmd.Process.Pid }

// Kill9 sends SIGKILL and waits for the process to be gone.
func (p *proc) Kill9() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatalf("kill -9: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.t.Fatal("sluice still running 30s after SIGKILL")
	}
}

// Stop sends SIGTERM and expects a clean exit.
func (p *proc) Stop() {
	p.t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.exited:
		if p.exitErr != nil {
			p.t.Errorf("sluice exited with %v after SIGTERM, want status 0\n%s", p.exitErr, p.Tail())
		}
		if took := time.Since(start); took > 3*time.Second {
			p.t.Logf("SLOW STOP: sluice took %v to exit after SIGTERM\n%s", took, p.Tail())
		}
	case <-time.After(60 * time.Second):
		p.t.Fatalf("sluice did not exit within 60s of SIGTERM\n%s", p.Tail())
	}
}
