package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/chtest"
)

// benchTransform fills the telemetry_wide columns from a binary bench
// payload: the topic's site and line, the client id, the receive time,
// and the payload as hex text in state (the measurement columns stay
// NULL).
const benchTransform = `{"ts": received_at, "site": site, "line": line, "device": clientid, "state": hex(raw)}`

// benchEnv reads an integer or duration setting of the benchmark.
func benchEnv[T int | time.Duration](t *testing.T, name string, def T) T {
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

// benchSummary is the part of `sluice bench pub -json` read here.
type benchSummary struct {
	Seconds  float64 `json:"seconds"`
	Sent     int64   `json:"sent"`
	Acked    int64   `json:"acked"`
	Rejected int64   `json:"rejected"`
	Unacked  int64   `json:"unacked"`
	Errors   int64   `json:"errors"`
}

// TestBenchEndToEnd measures MQTT QoS 1 → rules → ClickHouse with spool
// durability: `sluice bench pub` publishes as fast as acknowledgements
// allow against the real binary, and the test times how long until every
// acknowledged message is a row of the table. It runs only with
// SLUICE_BENCH=1; SLUICE_BENCH_DURATION (10s), SLUICE_BENCH_CLIENTS (10)
// and SLUICE_BENCH_SIZE (64 bytes) change the load.
//
//	SLUICE_BENCH=1 go test ./sinks/clickhouse/e2e -run TestBenchEndToEnd -v -timeout 30m
func TestBenchEndToEnd(t *testing.T) {
	if os.Getenv("SLUICE_BENCH") != "1" {
		t.Skip("set SLUICE_BENCH=1 to run the end-to-end benchmark")
	}
	duration := benchEnv(t, "SLUICE_BENCH_DURATION", 10*time.Second)
	clients := benchEnv(t, "SLUICE_BENCH_CLIENTS", 10)
	size := benchEnv(t, "SLUICE_BENCH_SIZE", 64)
	bin := binary(t)
	ch := chtest.Start(t, chtest.Options{})
	db := ch.Database(t)
	table := db + ".telemetry"
	s := startSluice(t, bin, sluiceConfig(sinkSettings{chAddr: ch.Addr(), database: db,
		dataDir: filepath.Join(t.TempDir(), "data"), transform: benchTransform}))

	_, port, err := net.SplitHostPort(s.MQTTAddr)
	if err != nil {
		t.Fatal(err)
	}
	cpu0, _ := cpuTime(s.proc.cmd.Process.Pid)
	chCPU0 := ch.CPUTime()
	start := time.Now()
	cmd := exec.Command(bin, "bench", "pub", "-host", "127.0.0.1", "-port", port,
		"-qos", "1", "-clients", strconv.Itoa(clients), "-size", strconv.Itoa(size),
		"-duration", duration.String(), "-drain", "1m",
		"-topic", "plant/berlin/line/%i/telemetry", "-prefix", "dev", "-json", "-quiet")
	cmd.Env = cleanEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sluice bench pub: %v\n%s", err, stderr.Bytes())
	}
	var sum benchSummary
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Fatalf("decoding bench summary %s: %v", out, err)
	}
	if sum.Acked == 0 || sum.Rejected != 0 || sum.Unacked != 0 || sum.Errors != 0 {
		t.Fatalf("bench summary %s", out)
	}
	waitRows(t, ch, table, int(sum.Acked), 10*time.Minute)
	elapsed := time.Since(start)
	cpu1, err := cpuTime(s.proc.cmd.Process.Pid)
	if err != nil {
		cpu1, cpu0 = 0, 0
	}
	chCPU := ch.CPUTime() - chCPU0

	st := s.drained(ruleName, sinkName, sum.Acked, 5*time.Minute)
	checkBalanced(t, st, ruleName, sinkName, 0, false)
	if got := query(t, ch, "SELECT uniqExact(device, state) FROM "+table); got != fmt.Sprint(sum.Acked) {
		t.Errorf("table holds %s distinct messages, %d were acknowledged", got, sum.Acked)
	}
	t.Logf("bench pub: %s", bytes.TrimSpace(out))
	t.Logf("sinks: %+v", st.Sinks)
	t.Logf("RESULT | %d clients, %d B | %.0f msg/s acked | %.0f rows/s in ClickHouse | %.1f µs sluice CPU/msg | %.1f µs ClickHouse CPU/row | load %s |",
		clients, size, float64(sum.Acked)/sum.Seconds, float64(sum.Acked)/elapsed.Seconds(),
		float64((cpu1-cpu0).Microseconds())/float64(sum.Acked), float64(chCPU.Microseconds())/float64(sum.Acked), loadAvg())
}

// cpuTime is the user plus system CPU time of process pid (Linux).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
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

// loadAvg is the 1-minute load average, "?" where unknown.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}
