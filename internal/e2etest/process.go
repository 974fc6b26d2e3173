package e2etest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// CleanEnv is the environment without SLUICE_* variables, which would
// override a test's config file.
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") {
			env = append(env, kv)
		}
	}
	return env
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
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

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// Process is a started child process whose output is read to the end.
type Process struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has exited; then err is set
	err     error
	tail    logTail
	readers sync.WaitGroup
}

// StartProcess starts bin with args and the CleanEnv environment; every
// line of stdout and stderr is kept for Tail and passed to onLine, which
// must not block.
func StartProcess(bin string, args []string, onLine func(string)) (*Process, error) {
	p := &Process{cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	p.cmd.Env = CleanEnv()
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("piping stdout: %w", err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("piping stderr: %w", err)
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
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

// Exited is closed once the process has exited and its output is read.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is the exit error; it is valid once Exited is closed.
func (p *Process) Err() error { return p.err }

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Tail is the last lines the process wrote, one a line.
func (p *Process) Tail() string { return p.tail.String() }

// Dump logs the last lines the process wrote, each prefixed with who.
func (p *Process) Dump(t testing.TB, who string) {
	for _, s := range strings.Split(p.Tail(), "\n") {
		t.Logf("%s: %s", who, s)
	}
}

// Signal sends sig and waits up to timeout for the exit. It reports
// whether the process exited in time.
func (p *Process) Signal(sig syscall.Signal, timeout time.Duration) bool {
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

// Kill ends the process if it still runs and waits for it.
func (p *Process) Kill() {
	if !p.Signal(syscall.SIGKILL, time.Minute) {
		panic("process survived SIGKILL for a minute")
	}
}
