package e2etest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Proc is a running `sluice run -c FILE`.
type Proc struct {
	t        testing.TB
	proc     *Process
	errors   atomic.Int64
	MQTTAddr string // host:port of the MQTT listener
	AdminURL string // http://host:port of the admin listener
}

// Start writes configYAML to a file in the test's temporary directory and
// runs bin (see BuildSluice) with it; see StartFile.
func Start(t testing.TB, bin, configYAML string) *Proc {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(configYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	return StartFile(t, bin, path)
}

// StartFile runs `bin run -c configPath` and waits until both listeners
// are up. The config must log JSON and bind an MQTT listener and the
// admin listener; their addresses are read from the "mqtt listening" and
// "admin listening" log lines. The process is killed when the test ends
// if it still runs, and its last log lines are logged if the test failed.
func StartFile(t testing.TB, bin, configPath string) *Proc {
	t.Helper()
	type logLine struct {
		Level   string `json:"level"`
		Msg     string `json:"msg"`
		Address string `json:"address"`
	}
	s := &Proc{t: t}
	lines := make(chan logLine, 16)
	p, err := StartProcess(bin, []string{"run", "-c", configPath}, func(line string) {
		var l logLine
		if json.Unmarshal([]byte(line), &l) != nil {
			return
		}
		if l.Level == "ERROR" {
			s.errors.Add(1)
		}
		if (l.Msg == "mqtt listening" || l.Msg == "admin listening") && l.Address != "" {
			select {
			case lines <- l:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	s.proc = p
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			p.Dump(t, "sluice")
		}
	})
	timeout := time.After(60 * time.Second)
	for s.MQTTAddr == "" || s.AdminURL == "" {
		select {
		case l := <-lines:
			switch l.Msg {
			case "mqtt listening":
				s.MQTTAddr = l.Address
			case "admin listening":
				s.AdminURL = "http://" + l.Address
			}
		case <-p.Exited():
			p.Dump(t, "sluice")
			t.Fatalf("sluice exited before listening: %v", p.Err())
		case <-timeout:
			t.Fatal("sluice did not log its mqtt and admin addresses within 60s")
		}
	}
	return s
}

// Pid is the process id.
func (s *Proc) Pid() int { return s.proc.Pid() }

// Tail is the last lines sluice logged.
func (s *Proc) Tail() string { return s.proc.Tail() }

// Errors is the number of ERROR lines logged so far.
func (s *Proc) Errors() int { return int(s.errors.Load()) }

// Kill sends SIGKILL and waits for the process to be gone.
func (s *Proc) Kill() {
	s.t.Helper()
	if !s.proc.Signal(syscall.SIGKILL, 60*time.Second) {
		s.t.Fatal("sluice still running 60s after SIGKILL")
	}
}

// Stop sends SIGTERM and expects a clean exit within 60s. An exit that
// takes longer than 3s is logged as slow.
func (s *Proc) Stop() {
	s.t.Helper()
	start := time.Now()
	if !s.proc.Signal(syscall.SIGTERM, 60*time.Second) {
		s.t.Fatalf("sluice did not exit within 60s of SIGTERM\n%s", s.Tail())
	}
	if err := s.proc.Err(); err != nil {
		s.t.Fatalf("sluice exited with %v after SIGTERM, want status 0\n%s", err, s.Tail())
	}
	if took := time.Since(start); took > 3*time.Second {
		s.t.Logf("SLOW STOP: sluice took %v to exit after SIGTERM", took)
	}
}
