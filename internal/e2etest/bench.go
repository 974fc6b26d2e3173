package e2etest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchEnv reads an integer or duration setting of a benchmark from the
// environment variable name, def when unset.
func BenchEnv[T int | time.Duration](t testing.TB, name string, def T) T {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out T
	switch p := any(&out).(type) {
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", name, v, err)
		}
		*p = n
	case *time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s=%q: %v", name, v, err)
		}
		*p = d
	}
	return out
}

// BenchSummary is the part of `sluice bench pub -json` the tests read.
type BenchSummary struct {
	Seconds  float64 `json:"seconds"`
	Sent     int64   `json:"sent"`
	Acked    int64   `json:"acked"`
	Rejected int64   `json:"rejected"`
	Unacked  int64   `json:"unacked"`
	Errors   int64   `json:"errors"`
}

// BenchPub runs `bin bench pub` at QoS 1 against the MQTT listener at
// mqttAddr, publishing on plant/berlin/line/%i/telemetry as clients
// dev..., with the extra flags given (clients, size, rate, duration). It
// fails the test unless every publish was acknowledged and returns the
// summary and its JSON.
func BenchPub(t testing.TB, bin, mqttAddr string, flags ...string) (BenchSummary, []byte) {
	t.Helper()
	_, port, err := net.SplitHostPort(mqttAddr)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"bench", "pub", "-host", "127.0.0.1", "-port", port, "-qos", "1", "-drain", "1m",
		"-topic", "plant/berlin/line/%i/telemetry", "-prefix", "dev", "-json", "-quiet"}, flags...)
	cmd := exec.Command(bin, args...)
	cmd.Env = CleanEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sluice bench pub: %v\n%s", err, stderr.Bytes())
	}
	var sum BenchSummary
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatalf("decoding bench summary %s: %v", out, err)
	}
	if sum.Acked == 0 || sum.Rejected != 0 || sum.Unacked != 0 || sum.Errors != 0 {
		t.Fatalf("bench summary %s", out)
	}
	return sum, out
}

// CPUTime is the user plus system CPU time of process pid (Linux).
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("reading process stat: %w", err)
	}
	// Fields after the command name, which may hold spaces: utime is
	// field 14 and stime 15, in clock ticks (100 Hz on Linux).
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// LoadAvg is the 1-minute load average, "?" where unknown.
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}
