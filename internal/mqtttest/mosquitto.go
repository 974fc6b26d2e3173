// Package mqtttest starts MQTT brokers for tests: a mosquitto process on a
// free loopback port (the reference broker) or Sluice's own broker
// in-process on port 0. It also offers a raw packet-level client (Conn)
// for protocol edge cases that real client libraries refuse to produce.
//
// Every helper registers its cleanup with t.Cleanup; nothing outlives the
// test that started it.
package mqtttest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MosquittoConfig configures a mosquitto process. Zero values keep
// mosquitto's own defaults.
type MosquittoConfig struct {
	// MaxPacketSize is mosquitto's max_packet_size (bytes).
	MaxPacketSize uint32
	// MaxInflight is max_inflight_messages (outbound window; mosquitto
	// also advertises it as Receive Maximum to v5 clients).
	MaxInflight uint16
	// MaxQueuedMessages is max_queued_messages.
	MaxQueuedMessages int
	// MaxQueuedBytes is max_queued_bytes.
	MaxQueuedBytes int
	// MaxTopicAlias is the listener's max_topic_alias.
	MaxTopicAlias uint16
	// Extra lines appended verbatim to the global section.
	Extra []string
}

// Mosquitto is a running mosquitto process listening on 127.0.0.1.
type Mosquitto struct {
	addr   string
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	mu     sync.Mutex
	stderr bytes.Buffer
}

// RequireMosquitto skips t when the mosquitto binary is missing, or fails
// it when running under CI (CI=true), where a missing peer is an error.
func RequireMosquitto(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, serr := os.Stat(p); serr == nil {
				return p
			}
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("mosquitto is not installed (CI=true requires it): %v", err)
		}
		t.Skipf("mosquitto is not installed: %v", err)
	}
	return path
}

// MosquittoAvailable reports whether a mosquitto binary can be found.
func MosquittoAvailable() bool {
	if _, err := exec.LookPath("mosquitto"); err == nil {
		return true
	}
	_, err := os.Stat("/usr/sbin/mosquitto")
	return err == nil
}

// StartMosquitto starts mosquitto on a free port and waits until it
// accepts connections. The process is stopped when t ends.
func StartMosquitto(t testing.TB, cfg MosquittoConfig) *Mosquitto {
	t.Helper()
	bin := RequireMosquitto(t)
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		m, err := startMosquitto(t, bin, cfg)
		if err == nil {
			t.Cleanup(func() {
				m.Stop()
				if t.Failed() {
					t.Logf("mosquitto log:\n%s", m.Log())
				}
			})
			return m
		}
		lastErr = err // most likely a port race; pick another port
	}
	t.Fatalf("starting mosquitto: %v", lastErr)
	return nil
}

func startMosquitto(t testing.TB, bin string, cfg MosquittoConfig) (*Mosquitto, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte(cfg.render(port)), 0o600); err != nil {
		return nil, fmt.Errorf("writing mosquitto config: %w", err)
	}
	m := &Mosquitto{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), done: make(chan struct{})}
	m.cmd = exec.Command(bin, "-c", conf)
	m.cmd.Stdout = &lockedWriter{m: &m.mu, w: &m.stderr}
	m.cmd.Stderr = m.cmd.Stdout
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("running mosquitto: %w", err)
	}
	go func() {
		_ = m.cmd.Wait()
		close(m.done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-m.done:
			return nil, fmt.Errorf("mosquitto exited at start: %s", m.Log())
		default:
		}
		// Wait for mosquitto's own "running" line: a successful dial alone
		// could reach another process that took the port in between.
		if strings.Contains(m.Log(), " running") {
			c, err := net.DialTimeout("tcp", m.addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				return m, nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	m.Stop()
	return nil, errors.New("mosquitto did not start listening within 5s")
}

func (c MosquittoConfig) render(port int) string {
	var b strings.Builder
	b.WriteString("persistence false\nallow_anonymous true\nlog_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\nlog_type information\n")
	put := func(key string, v int64) {
		if v != 0 {
			fmt.Fprintf(&b, "%s %d\n", key, v)
		}
	}
	put("max_packet_size", int64(c.MaxPacketSize))
	put("max_inflight_messages", int64(c.MaxInflight))
	put("max_queued_messages", int64(c.MaxQueuedMessages))
	put("max_queued_bytes", int64(c.MaxQueuedBytes))
	for _, l := range c.Extra {
		b.WriteString(l + "\n")
	}
	fmt.Fprintf(&b, "listener %d 127.0.0.1\n", port)
	put("max_topic_alias", int64(c.MaxTopicAlias))
	return b.String()
}

// Addr is the host:port mosquitto listens on.
func (m *Mosquitto) Addr() string { return m.addr }

// Log returns what mosquitto has written so far.
func (m *Mosquitto) Log() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stderr.String()
}

// Stop terminates mosquitto (SIGTERM, then SIGKILL after 5s) and waits for
// it to exit. It is safe to call more than once.
func (m *Mosquitto) Stop() {
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type lockedWriter struct {
	m *sync.Mutex
	w *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.m.Lock()
	defer l.m.Unlock()
	if l.w.Len() > 1<<20 { // keep the log bounded
		return len(p), nil
	}
	return l.w.Write(p)
}
