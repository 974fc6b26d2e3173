package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// peer finds an external program the end-to-end test needs. Under CI=true
// a missing peer fails the test instead of skipping it.
func peer(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found (install mosquitto-clients): %v", name, err)
	}
	t.Skipf("%s not found: %v", name, err)
	return ""
}

// buildBinary builds cmd/sluice into a temporary directory, stamping the
// version through -ldflags.
func buildBinary(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "sluice")
	cmd := exec.Command(goBin, "build", "-o", bin,
		"-ldflags", "-X main.version=v0.0.0-e2e -X main.commit=e2e1234", ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cleanEnv is the test's environment without SLUICE_* variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") {
			env = append(env, kv)
		}
	}
	return env
}

// logLine is the part of a JSON log record the test reads.
type logLine struct {
	Level     string `json:"level"`
	Msg       string `json:"msg"`
	Address   string `json:"address"`
	Component string `json:"component"`
}

// TestEndToEnd builds the binary, runs it on a free port, passes a message
// from mosquitto_pub to mosquitto_sub through it, then stops it with
// SIGTERM and expects a clean exit.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	pub, sub := peer(t, "mosquitto_pub"), peer(t, "mosquitto_sub")
	bin := buildBinary(t)

	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "sluice v0.0.0-e2e commit e2e1234 go") {
		t.Fatalf("version: %q, %v", out, err)
	}

	cfg := writeFile(t, "sluice.yaml", `
log:
  level: debug
  format: json
broker:
  listeners:
    - name: e2e
      address: 127.0.0.1:0
      allow_anonymous: true
ingest:
  data_dir: `+filepath.Join(t.TempDir(), "data")+`
admin:
  address: 127.0.0.1:0
`)
	srv := exec.Command(bin, "run", "-c", cfg)
	srv.Env = cleanEnv()
	stderr, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	var exitErr error
	exited := make(chan struct{}) // closed once srv has exited; then exitErr is set
	lines := make(chan logLine, 256)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var l logLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				l = logLine{Level: "RAW", Msg: sc.Text()}
			}
			t.Logf("sluice: %s", sc.Text())
			select {
			case lines <- l:
			default: // the test stopped reading; keep draining the pipe
			}
		}
	}()
	go func() {
		<-readerDone // Wait closes the pipe: read it to the end first
		exitErr = srv.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			srv.Process.Kill()
			<-exited
		}
	})

	addr := waitForLog(t, lines, func(l logLine) bool { return l.Msg == "mqtt listening" }, 10*time.Second).Address
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listening address %q: %v", addr, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The subscriber speaks MQTT 5, the publisher 3.1.1; both use QoS 1.
	subCmd := exec.CommandContext(ctx, sub, "-h", host, "-p", port, "-V", "mqttv5",
		"-q", "1", "-t", "e2e/#", "-C", "1", "-W", "15", "-v")
	var subOut, subErr strings.Builder
	subCmd.Stdout, subCmd.Stderr = &subOut, &subErr
	if err := subCmd.Start(); err != nil {
		t.Fatal(err)
	}
	subDone := make(chan error, 1)
	go func() { subDone <- subCmd.Wait() }()

	// Publish until the subscriber has its message: there is no signal for
	// "subscription active", so repeat (-C 1 makes repeats harmless).
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var subResult error
wait:
	for {
		select {
		case subResult = <-subDone:
			break wait
		case <-tick.C:
			pubCtx, pubCancel := context.WithTimeout(ctx, 3*time.Second)
			pubCmd := exec.CommandContext(pubCtx, pub, "-h", host, "-p", port, "-V", "mqttv311",
				"-q", "1", "-t", "e2e/hello", "-m", "hello sluice")
			if out, err := pubCmd.CombinedOutput(); err != nil {
				t.Logf("mosquitto_pub: %v %s", err, out)
			}
			pubCancel()
		case <-ctx.Done():
			t.Fatalf("no message through the broker: %v; mosquitto_sub stderr: %s", ctx.Err(), subErr.String())
		}
	}
	if subResult != nil {
		t.Fatalf("mosquitto_sub: %v: %s", subResult, subErr.String())
	}
	if got, want := strings.TrimSpace(subOut.String()), "e2e/hello hello sluice"; got != want {
		t.Errorf("mosquitto_sub printed %q, want %q", got, want)
	}

	start := time.Now()
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if exitErr != nil {
			t.Fatalf("sluice exited with %v after SIGTERM, want exit status 0", exitErr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("sluice did not exit within 5s of SIGTERM")
	}
	t.Logf("clean exit %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	var tail []string
	for l := range lines {
		if l.Level == "ERROR" || l.Level == "RAW" {
			t.Errorf("unexpected log line: %+v", l)
		}
		if l.Level == "INFO" && l.Component == "" { // cmd's own lines
			tail = append(tail, l.Msg)
		}
	}
	if want := []string{"shutting down; signal again to force exit", "stopped"}; !slices.Equal(tail, want) {
		t.Errorf("info lines after the message went through: %q, want %q", tail, want)
	}
}

// waitForLog returns the first log line matching ok.
func waitForLog(t *testing.T, lines <-chan logLine, ok func(logLine) bool, timeout time.Duration) logLine {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, open := <-lines:
			if !open {
				t.Fatal("sluice exited before logging what the test waits for")
			}
			if l.Level == "RAW" || l.Level == "ERROR" {
				t.Errorf("unexpected log line: %+v", l)
			}
			if ok(l) {
				return l
			}
		case <-deadline:
			t.Fatalf("nothing matching in the log after %v", timeout)
		}
	}
}
