// Package chtest starts a real ClickHouse server for tests: the
// clickhouse-server binary of the machine's package (Debian's is 18.16),
// with its own config and data directory under a temporary directory,
// listening on free ports of 127.0.0.1 only. It never uses the system
// service and installs nothing: when the binary is missing a test is
// skipped, or fails under CI=true, with a message saying what to install.
//
// Queries go over ClickHouse's HTTP interface with net/http, so reading
// rows back does not depend on the driver under test.
package chtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// EnvBinary names the environment variable that overrides the server
// binary's path.
const EnvBinary = "SLUICE_CLICKHOUSE_SERVER"

// installHint is what a missing server's message tells the reader to do.
const installHint = "install it with: apt-get install -y clickhouse-server clickhouse-client " +
	"(or set " + EnvBinary + " to a clickhouse-server binary)"

// ErrNoServer reports that no clickhouse-server binary was found.
var ErrNoServer = errors.New("clickhouse-server binary not found; " + installHint)

// StartTimeout bounds how long a server may take to answer after start.
// ClickHouse 18.16 takes a few seconds on a busy machine.
const StartTimeout = 90 * time.Second

// Options configures a server.
type Options struct {
	// TLSCertFile and TLSKeyFile, when both set, open a TLS native port
	// too (Server.TLSAddr) with this certificate.
	TLSCertFile, TLSKeyFile string
	// Password is the default user's password. Default: "" (none).
	Password string
	// Dir holds the config, data and logs. Default: a new directory under
	// os.TempDir, removed by Close.
	Dir string
}

// Server is a running clickhouse-server process.
type Server struct {
	opts     Options
	bin      string
	dir      string
	ownDir   bool
	tcpPort  int
	httpPort int
	tlsPort  int
	client   *http.Client

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	paused bool
	dbSeq  atomic.Int64
}

// Binary finds the clickhouse-server binary: $SLUICE_CLICKHOUSE_SERVER,
// clickhouse-server on PATH or in /usr/sbin, /usr/bin. It returns
// ErrNoServer when there is none.
func Binary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvBinary, p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", ErrNoServer
}

// Start starts a server for t and stops it when t ends. Without a server
// binary it skips t, or fails it when the CI environment variable is
// "true" (a missing peer is a failure in CI, never a skip).
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if errors.Is(err, ErrNoServer) {
		Missing(t, err)
	}
	if err != nil {
		t.Fatalf("starting clickhouse: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("stopping clickhouse: %v", err)
		}
	})
	return s
}

// Missing skips t because no server binary was found, or fails it under
// CI=true.
func Missing(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and %v", err)
	}
	t.Skipf("skipping: %v", err)
}

// New starts a server and waits until it answers. The caller must Close it.
func New(opts Options) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, bin: bin, dir: opts.Dir, client: &http.Client{Timeout: 60 * time.Second}}
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "chtest-"); err != nil {
			return nil, fmt.Errorf("making a server directory: %w", err)
		}
		s.ownDir = true
	}
	// Ports are picked free, then bound by the server a moment later;
	// another process may take one in between, so a failed start is
	// retried on fresh ports.
	for attempt := 0; ; attempt++ {
		if err = s.pickPorts(); err == nil {
			if err = s.writeConfig(); err == nil {
				err = s.start()
			}
		}
		if err == nil || attempt == 2 || !strings.Contains(err.Error(), "ddress already in use") {
			break
		}
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) pickPorts() error {
	n := 2
	if s.tls() {
		n = 3
	}
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("picking a free port: %w", err)
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	s.tcpPort, s.httpPort = ports[0], ports[1]
	if s.tls() {
		s.tlsPort = ports[2]
	}
	return nil
}

func (s *Server) tls() bool { return s.opts.TLSCertFile != "" && s.opts.TLSKeyFile != "" }

// start runs the binary and waits until it answers or exits.
func (s *Server) start() error {
	logPath := filepath.Join(s.dir, "stderr.log")
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("opening the server's log: %w", err)
	}
	cmd := exec.Command(s.bin, "--config-file="+filepath.Join(s.dir, "config.xml"))
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so a signal to the test does not reach it
	// first and Pause/Resume address only it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("running %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		out.Close()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited, s.paused = cmd, exited, false
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	for {
		if s.ping(ctx) == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("clickhouse-server exited at start: %s", s.logTail())
		case <-ctx.Done():
			s.kill()
			return fmt.Errorf("clickhouse-server did not answer within %s: %s", StartTimeout, s.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logTail returns the end of the server's output and error log.
func (s *Server) logTail() string {
	var b strings.Builder
	for _, name := range []string{"stderr.log", "log/err.log"} {
		data, _ := os.ReadFile(filepath.Join(s.dir, name))
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		b.Write(bytes.TrimSpace(data))
		b.WriteByte('\n')
	}
	return strings.TrimSpace(b.String())
}

func (s *Server) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.HTTPAddr()+"/ping", nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ping: %s", resp.Status)
	}
	return nil
}

// Addr is the native protocol address (host:port).
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.tcpPort) }

// TLSAddr is the TLS native protocol address, "" without TLS options.
func (s *Server) TLSAddr() string {
	if s.tlsPort == 0 {
		return ""
	}
	return "127.0.0.1:" + strconv.Itoa(s.tlsPort)
}

// HTTPAddr is the HTTP interface's address (host:port).
func (s *Server) HTTPAddr() string { return "127.0.0.1:" + strconv.Itoa(s.httpPort) }

// PID is the server process's id (0 when it is not running), for tests
// that measure its CPU time.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// CPUTime returns the CPU time the server process has used (user plus
// system, from /proc), or 0 when it is unknown.
func (s *Server) CPUTime() time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.PID()))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	// Fields after the command: state is field 3, utime 14, stime 15.
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// Password is the default user's password.
func (s *Server) Password() string { return s.opts.Password }

// Query runs one statement over HTTP and returns the answer's body (use a
// FORMAT clause to shape it). A server exception is an error holding its
// text.
func (s *Server) Query(ctx context.Context, sql string) (string, error) {
	q := url.Values{"user": {"default"}, "password": {s.opts.Password}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.HTTPAddr()+"/?"+q.Encode(), strings.NewReader(sql))
	if err != nil {
		return "", err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("querying clickhouse: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("reading clickhouse's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("clickhouse: %s", bytes.TrimSpace(body))
	}
	return string(body), nil
}

// Exec runs sql and fails t on error.
func (s *Server) Exec(t testing.TB, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := s.Query(ctx, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// Database creates a database with a fresh name for t and drops it when
// t ends, so tests can share one server.
func (s *Server) Database(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.dbSeq.Add(1))
	s.Exec(t, "CREATE DATABASE "+name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s.Resume()
		if _, err := s.Query(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Logf("dropping database %s: %v", name, err)
		}
	})
	return name
}

// Pause stops the server process with SIGSTOP: it keeps its connections
// open and stops answering, the way a hung server does.
func (s *Server) Pause() error { return s.signal(syscall.SIGSTOP, true) }

// Resume continues a paused server (SIGCONT). It is a no-op otherwise.
func (s *Server) Resume() error {
	s.mu.Lock()
	paused := s.paused
	s.mu.Unlock()
	if !paused {
		return nil
	}
	return s.signal(syscall.SIGCONT, false)
}

func (s *Server) signal(sig syscall.Signal, paused bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return errors.New("clickhouse-server is not running")
	}
	if err := s.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signalling clickhouse-server: %w", err)
	}
	s.paused = paused
	// A signal takes effect asynchronously, thread by thread: wait until
	// every thread shows the state asked for, so a caller that queries
	// right after Pause does not get an answer from a thread still running.
	deadline := time.Now().Add(5 * time.Second)
	for !allThreads(s.cmd.Process.Pid, paused) {
		if time.Now().After(deadline) {
			return fmt.Errorf("clickhouse-server threads did not reach stopped=%v", paused)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// allThreads reports whether every thread of pid is stopped (or, with
// !stopped, none is), from /proc. Without /proc it reports true.
func allThreads(pid int, stopped bool) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return true
	}
	for _, task := range tasks {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			continue // the thread ended
		}
		// The state follows the command name in parentheses.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 || i+2 >= len(data) {
			continue
		}
		st := data[i+2]
		if (st == 'T' || st == 't') != stopped {
			return false
		}
	}
	return true
}

// Stop kills the server (SIGKILL, an abrupt outage) and waits for it to
// exit. Its data directory and ports are kept for Restart.
func (s *Server) Stop() { s.kill() }

// Restart starts a stopped server again on the same ports and data.
func (s *Server) Restart() error {
	s.kill()
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if err = s.start(); err == nil || !strings.Contains(err.Error(), "ddress already in use") {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

func (s *Server) kill() {
	s.mu.Lock()
	cmd, exited, paused := s.cmd, s.exited, s.paused
	s.cmd, s.paused = nil, false
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	if paused {
		cmd.Process.Signal(syscall.SIGCONT)
	}
	<-exited
}

// Close stops the server and removes its directory when New made it.
func (s *Server) Close() error {
	s.kill()
	if s.ownDir {
		if err := os.RemoveAll(s.dir); err != nil {
			return fmt.Errorf("removing %s: %w", s.dir, err)
		}
	}
	return nil
}
