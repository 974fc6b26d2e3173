package examples

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/chtest"
	"github.com/sluicehq/sluice/internal/e2etest"
)

const manufacturingREADME = "manufacturing/README.md"

// The manufacturing example's commands, as its README writes them.
const (
	mfKafka   = `go run ./internal/kfakeserver -port 9092 -topics plant-alarms,machine-commands,command-status`
	mfDB      = `clickhouse-client --host 127.0.0.1 --port 9000 --query 'CREATE DATABASE IF NOT EXISTS plant'`
	mfHook    = `ALARM_HOOK_SECRET=s3cret go run ./examples/manufacturing/hookd -addr 127.0.0.1:8090`
	mfRun     = `ALARM_HOOK_SECRET=s3cret go run ./cmd/sluice -c examples/manufacturing/sluice.yaml`
	mfSim     = `go run ./cmd/sluice sim -lines 2 -machines 3 -drift 5s -fault-rate 0.02 -fault-duration 5s -reply-topic 'devices/{client_id}/replies/{id}'`
	mfRows    = `clickhouse-client --host 127.0.0.1 --port 9000 --query 'SELECT device, count() > 0 FROM plant.telemetry GROUP BY device ORDER BY device'`
	mfAlarms  = `go run ./examples/manufacturing/kcli consume -brokers 127.0.0.1:9092 -topic plant-alarms`
	mfCommand = `go run ./examples/manufacturing/kcli produce -brokers 127.0.0.1:9092 -topic machine-commands -key sluice-sim-plant1-l2-m1 -header command-id=c42 '{"site":"plant1","line":2,"machine":1,"command":{"id":"c42","setpoint":95}}'`
	mfStatus  = `go run ./examples/manufacturing/kcli consume -brokers 127.0.0.1:9092 -topic command-status`
	mfTemp    = `clickhouse-client --host 127.0.0.1 --port 9000 --query "SELECT device, argMax(temperature, ts) > 85 FROM plant.telemetry WHERE device = 'sluice-sim-plant1-l2-m1' GROUP BY device"`
)

// TestManufacturing runs examples/manufacturing/README.md step by step
// with real peers: a ClickHouse server (internal/chtest), Kafka's wire
// protocol (internal/kfakeserver), the example's webhook receiver and
// Kafka client, the simulator as the plant, and the real binary.
func TestManufacturing(t *testing.T) {
	bin := e2etest.BuildSluice(t)
	requireProgram(t, "clickhouse-client")
	requireInREADME(t, manufacturingREADME, mfKafka, mfDB, mfHook, mfRun, mfSim, mfRows, mfAlarms, mfCommand, mfStatus, mfTemp,
		"sluice-sim-plant1-l1-m1\t1\nsluice-sim-plant1-l1-m2\t1\nsluice-sim-plant1-l1-m3\t1\nsluice-sim-plant1-l2-m1\t1\nsluice-sim-plant1-l2-m2\t1\nsluice-sim-plant1-l2-m3\t1\n",
		"sluice-sim-plant1-l2-m1\t1\n",
		`"code":"VIB_HIGH","device":"sluice-sim-plant1-l1-m3","line":"1","machine":"3"`,
		`alarm plant/plant1/line/1/machine/3/alarm {"active":true,"code":"VIB_HIGH"`,
		`c42 {"id":"c42","state":"responded"`)

	ch := chtest.Start(t, chtest.Options{})
	_, chPort, _ := strings.Cut(ch.Addr(), ":")
	ports := map[string]string{"9092": strconv.Itoa(e2etest.FreePort(t)), "9000": chPort, "8090": strconv.Itoa(e2etest.FreePort(t))}

	// Terminal 1: Kafka.
	_, kBin, kArgs := readmeCommand(t, mfKafka, bin, ports)
	_, kOut := startProgram(t, "kfakeserver", kBin, kArgs...)
	kOut.wait(t, 0, regexp.MustCompile(`^listening 127\.0\.0\.1:`+ports["9092"]+`$`), time.Minute)

	// The database the sink creates its table in.
	_, dbBin, dbArgs := readmeCommand(t, mfDB, bin, ports)
	runProgram(t, dbBin, dbArgs...)

	// Terminal 2: the webhook receiver.
	env, hBin, hArgs := readmeCommand(t, mfHook, bin, ports)
	setEnv(t, env)
	_, hook := startProgram(t, "hookd", hBin, hArgs...)
	hook.wait(t, 0, regexp.MustCompile(`^hookd listening on 127\.0\.0\.1:`+ports["8090"]+`$`), time.Minute)

	// Terminal 3: Sluice, on free ports, logging JSON for the harness.
	env, _, _ = readmeCommand(t, mfRun, bin, ports)
	setEnv(t, env)
	cfg := rewrite(t, "manufacturing/sluice.yaml", readFile(t, "manufacturing/sluice.yaml"),
		`address: "127.0.0.1:1883"`, `address: "127.0.0.1:0"`,
		"address: 127.0.0.1:8088", "address: 127.0.0.1:0",
		"data_dir: sluice-data", "data_dir: "+filepath.Join(t.TempDir(), "data"),
		"127.0.0.1:9000", ch.Addr(),
		"127.0.0.1:9092", "127.0.0.1:"+ports["9092"],
		"127.0.0.1:8090", "127.0.0.1:"+ports["8090"])
	s := e2etest.Start(t, bin, "log: {format: json}\n"+cfg)
	_, mqttPort, _ := strings.Cut(s.MQTTAddr, ":")
	ports["1883"] = mqttPort

	// Terminal 4: the plant; terminal 5: the alarms in Kafka.
	_, simBin, simArgs := readmeCommand(t, mfSim, bin, ports)
	_, simOut := startProgram(t, "sluice sim", simBin, simArgs...)
	simOut.wait(t, 0, regexp.MustCompile(`msg="machines connected" machines=6`), 30*time.Second)
	_, aBin, aArgs := readmeCommand(t, mfAlarms, bin, ports)
	_, alarms := startProgram(t, "kcli consume plant-alarms", aBin, aArgs...)

	t.Run("telemetry in ClickHouse", func(t *testing.T) {
		_, qBin, qArgs := readmeCommand(t, mfRows, bin, ports)
		want := "sluice-sim-plant1-l1-m1\t1\nsluice-sim-plant1-l1-m2\t1\nsluice-sim-plant1-l1-m3\t1\nsluice-sim-plant1-l2-m1\t1\nsluice-sim-plant1-l2-m2\t1\nsluice-sim-plant1-l2-m3\t1\n"
		pollOutput(t, "rows from all six machines", 30*time.Second, func() bool { return runProgram(t, qBin, qArgs...) == want })
	})
	t.Run("alarms in Kafka and at the webhook", func(t *testing.T) {
		// Machine 3 of line 1 faults about 3 s in (seed 1), and clears ~5 s later.
		alarms.wait(t, 0, regexp.MustCompile(`^plant1/1 \{"active":true,"code":"VIB_HIGH","device":"sluice-sim-plant1-l1-m3","line":"1","machine":"3","message":"vibration [\d.]+ mm/s above 11\.0 mm/s limit, spindle stopping","severity":"critical","site":"plant1","ts":\d+\}$`), 30*time.Second)
		alarms.wait(t, 0, regexp.MustCompile(`^plant1/1 \{"active":false,"code":"VIB_HIGH","device":"sluice-sim-plant1-l1-m3","line":"1","machine":"3","message":"fault cleared","severity":"info","site":"plant1","ts":\d+\}$`), 30*time.Second)
		hook.wait(t, 0, regexp.MustCompile(`^alarm plant/plant1/line/1/machine/3/alarm \{"active":true,"code":"VIB_HIGH",.*\} \(signature ok\)$`), 30*time.Second)
		for _, l := range hook.since(0) {
			if strings.HasPrefix(l, "rejected") {
				t.Errorf("hookd: %s", l)
			}
		}
	})
	t.Run("a command from Kafka", func(t *testing.T) {
		_, sBin, sArgs := readmeCommand(t, mfStatus, bin, ports)
		_, status := startProgram(t, "kcli consume command-status", sBin, sArgs...)
		_, cBin, cArgs := readmeCommand(t, mfCommand, bin, ports)
		if out := runProgram(t, cBin, cArgs...); !strings.HasPrefix(out, "produced machine-commands[") {
			t.Fatalf("kcli produce printed %q", out)
		}
		status.wait(t, 0, regexp.MustCompile(`^c42 \{"id":"c42","state":"responded"`), 30*time.Second)
		var states []string
		for _, l := range status.since(0) {
			var ev struct {
				ID, State, Device, Topic, Source string
				Response                         []byte
			}
			key, val, _ := strings.Cut(l, " ")
			if key != "c42" {
				continue
			}
			if err := json.Unmarshal([]byte(val), &ev); err != nil {
				t.Fatalf("status event %q: %v", l, err)
			}
			states = append(states, ev.State)
			if ev.Device != "sluice-sim-plant1-l2-m1" || ev.Topic != "plant/plant1/line/2/machine/1/cmd" || ev.Source != "kafka" {
				t.Errorf("event %q: want device sluice-sim-plant1-l2-m1, topic plant/plant1/line/2/machine/1/cmd, source kafka", l)
			}
			if ev.State == "responded" && string(ev.Response) != `{"id":"c42","ok":true,"applied":{"setpoint":95}}` {
				t.Errorf("responded with %s, want the simulator's reply", ev.Response)
			}
		}
		if want := []string{"accepted", "queued", "sent", "delivered", "responded"}; !slices.Equal(states, want) {
			t.Errorf("c42 went through %v, want %v", states, want)
		}
		// The machine obeys: its temperature climbs past 85 °C.
		_, qBin, qArgs := readmeCommand(t, mfTemp, bin, ports)
		pollOutput(t, "the latest temperature of sluice-sim-plant1-l2-m1 above 85", 30*time.Second, func() bool {
			return runProgram(t, qBin, qArgs...) == "sluice-sim-plant1-l2-m1\t1\n"
		})
	})

	st, err := s.Ingest()
	if err != nil {
		t.Fatal(err)
	}
	if !st.Balanced || st.Accounting.DecodeErrors != 0 || st.Accounting.Rejected != 0 {
		t.Errorf("accounting %+v, want balanced without decode errors", st.Accounting)
	}
	for _, f := range [][2]string{{"line-telemetry", "telemetry-db"}, {"alarms", "plant-kafka"}, {"alarms", "alarm-hook"}} {
		if fl := st.Flow(f[0], f[1]); fl.Received == 0 || fl.DeadLettered != 0 || len(fl.Dropped) != 0 && sum(fl.Dropped) != 0 {
			t.Errorf("flow %s→%s: %+v, want records and none dead-lettered or dropped", f[0], f[1], fl)
		}
	}
	s.Stop()
}

// setEnv applies NAME=value settings of a README command for the rest
// of the test; the processes it starts inherit them.
func setEnv(t *testing.T, env []string) {
	t.Helper()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

// pollOutput calls cond every 500ms until it holds, failing after d.
func pollOutput(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func sum(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
