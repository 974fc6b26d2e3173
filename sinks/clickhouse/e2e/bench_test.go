package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/chtest"
	"github.com/sluicehq/sluice/internal/e2etest"
)

// benchTransform fills the telemetry_wide columns from a binary bench
// payload: the topic's site and line, the client id, the receive time,
// and the payload as hex text in state (the measurement columns stay
// NULL).
const benchTransform = `{"ts": received_at, "site": site, "line": line, "device": clientid, "state": hex(raw)}`

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
	duration := e2etest.BenchEnv(t, "SLUICE_BENCH_DURATION", 10*time.Second)
	clients := e2etest.BenchEnv(t, "SLUICE_BENCH_CLIENTS", 10)
	size := e2etest.BenchEnv(t, "SLUICE_BENCH_SIZE", 64)
	bin := e2etest.BuildSluice(t)
	ch := chtest.Start(t, chtest.Options{})
	db := ch.Database(t)
	table := db + ".telemetry"
	s := e2etest.Start(t, bin, sluiceConfig(sinkSettings{chAddr: ch.Addr(), database: db,
		dataDir: filepath.Join(t.TempDir(), "data"), transform: benchTransform}))

	cpu0, _ := e2etest.CPUTime(s.Pid())
	chCPU0 := ch.CPUTime()
	start := time.Now()
	sum, out := e2etest.BenchPub(t, bin, s.MQTTAddr, "-clients", strconv.Itoa(clients), "-size", strconv.Itoa(size),
		"-duration", duration.String())
	waitRows(t, ch, table, int(sum.Acked), 10*time.Minute)
	elapsed := time.Since(start)
	cpu1, err := e2etest.CPUTime(s.Pid())
	if err != nil {
		cpu1, cpu0 = 0, 0
	}
	chCPU := ch.CPUTime() - chCPU0

	st := s.Drained(ruleName, sinkName, sum.Acked, 5*time.Minute)
	e2etest.CheckBalanced(t, st, ruleName, sinkName, 0, false)
	if got := query(t, ch, "SELECT uniqExact(device, state) FROM "+table); got != fmt.Sprint(sum.Acked) {
		t.Errorf("table holds %s distinct messages, %d were acknowledged", got, sum.Acked)
	}
	t.Logf("bench pub: %s", bytes.TrimSpace(out))
	t.Logf("sinks: %+v", st.Sinks)
	t.Logf("RESULT | %d clients, %d B | %.0f msg/s acked | %.0f rows/s in ClickHouse | %.1f µs sluice CPU/msg | %.1f µs ClickHouse CPU/row | load %s |",
		clients, size, float64(sum.Acked)/sum.Seconds, float64(sum.Acked)/elapsed.Seconds(),
		float64((cpu1-cpu0).Microseconds())/float64(sum.Acked), float64(chCPU.Microseconds())/float64(sum.Acked), e2etest.LoadAvg())
}
