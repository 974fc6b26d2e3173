package examples

import (
	"bufio"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2etest"
)

const quickstartREADME = "quickstart/README.md"

// The quick start's commands, as its README writes them.
const (
	qsSubSensors = `mosquitto_sub -h 127.0.0.1 -p 1883 -V mqttv5 -t 'sensors/#' -v`
	qsPubSensors = `mosquitto_pub -h 127.0.0.1 -p 1883 -q 1 -t sensors/room1/temp -m '{"celsius": 21.5}'`
	qsEval       = `go run ./cmd/sluice rules eval -c examples/quickstart/sluice.yaml --topic plant/plant1/line/1/machine/2/telemetry --payload '{"temp": 90, "setpoint": 95}'`
	qsRun        = `go run ./cmd/sluice -c examples/quickstart/sluice.yaml`
	qsSubAlerts  = `mosquitto_sub -h 127.0.0.1 -p 1883 -V mqttv5 -t 'alerts/#' -t 'plant/+/line/+/machine/+/cmd/reply' -v`
	qsSim        = `go run ./cmd/sluice sim -lines 1 -machines 2 -drift 5s -fault-rate 0`
	qsRaise      = `mosquitto_pub -h 127.0.0.1 -p 1883 -q 1 -t plant/plant1/line/1/machine/2/cmd -m '{"id":"c1","setpoint":95}'`
	qsMetrics    = `curl -s http://127.0.0.1:8088/metrics | grep '^sluice_ingest_delivered_total'`
	qsLower      = `mosquitto_pub -h 127.0.0.1 -p 1883 -q 1 -t plant/plant1/line/1/machine/2/cmd -m '{"id":"c2","setpoint":70}'`
)

// TestQuickstart runs examples/quickstart/README.md step by step.
func TestQuickstart(t *testing.T) {
	bin := e2etest.BuildSluice(t)
	requireProgram(t, "mosquitto_sub")
	pub := requireProgram(t, "mosquitto_pub")
	requireInREADME(t, quickstartREADME, "go run ./cmd/sluice\n", qsSubSensors, qsPubSensors, qsEval, qsRun,
		qsSubAlerts, qsSim, qsRaise, qsMetrics, qsLower,
		`msg="mqtt listening" listener=default address=127.0.0.1:1883`,
		`sensors/room1/temp {"celsius": 21.5}`,
		`plant/plant1/line/1/machine/2/cmd/reply {"id":"c1","ok":true,"applied":{"setpoint":95}}`,
		`plant/plant1/line/1/machine/2/cmd/reply {"id":"c2","ok":true,"applied":{"setpoint":70}}`,
		`msg="machines connected" machines=2 addr=127.0.0.1:1883`)

	t.Run("broker", func(t *testing.T) {
		// The built-in configuration, on free ports, logging JSON for the
		// harness, the spool in a temporary directory.
		cfg := rewrite(t, "sluice.default.yaml", readFile(t, "../cmd/sluice/sluice.default.yaml"),
			"address: 127.0.0.1:1883", "address: 127.0.0.1:0",
			"address: 127.0.0.1:8088", "address: 127.0.0.1:0",
			"data_dir: sluice-data", "data_dir: "+filepath.Join(t.TempDir(), "data"),
			"format: text", "format: json")
		s := e2etest.Start(t, bin, cfg)
		subBin, subArgs := localCommand(t, qsSubSensors, bin, s.MQTTAddr)
		_, out := startProgram(t, "mosquitto_sub", subBin, subArgs...)
		waitSubscribed(t, out, pub, s.MQTTAddr, "sensors/probe")
		from := out.mark()
		pubBin, pubArgs := localCommand(t, qsPubSensors, bin, s.MQTTAddr)
		runProgram(t, pubBin, pubArgs...)
		out.wait(t, from, regexp.MustCompile(`^`+regexp.QuoteMeta(`sensors/room1/temp {"celsius": 21.5}`)+`$`), 10*time.Second)
		s.Stop()
	})

	t.Run("rules eval", func(t *testing.T) {
		evalBin, evalArgs := localCommand(t, qsEval, bin, "127.0.0.1:1883")
		got := runProgram(t, evalBin, evalArgs...)
		requireInREADME(t, quickstartREADME, strings.TrimSpace(got))
	})

	t.Run("simulator and commands", func(t *testing.T) {
		cfg := rewrite(t, "quickstart/sluice.yaml", readFile(t, "quickstart/sluice.yaml"),
			`address: "127.0.0.1:1883"`, `address: "127.0.0.1:0"`,
			"address: 127.0.0.1:8088", "address: 127.0.0.1:0",
			"data_dir: sluice-data", "data_dir: "+filepath.Join(t.TempDir(), "data"))
		s := e2etest.Start(t, bin, "log: {format: json}\n"+cfg)
		subBin, subArgs := localCommand(t, qsSubAlerts, bin, s.MQTTAddr)
		_, out := startProgram(t, "mosquitto_sub", subBin, subArgs...)
		waitSubscribed(t, out, pub, s.MQTTAddr, "alerts/probe")
		quiet := out.mark()

		simBin, simArgs := localCommand(t, qsSim, bin, s.MQTTAddr)
		_, simOut := startProgram(t, "sluice sim", simBin, simArgs...)
		simOut.wait(t, 0, regexp.MustCompile(`msg="machines connected" machines=2 addr=127\.0\.0\.1:\d+ site=plant1`), 30*time.Second)
		simOut.wait(t, 0, regexp.MustCompile(`^sim: 2 machines, sent \d+ \(\d+\.\d/s\), faulted 0 now \(0 total\), reconnects \d+, commands 0, dropped \d+, unacked 0$`), 30*time.Second)
		// Set-points are 60-80 °C: no alert, no reply yet.
		for _, l := range out.since(quiet) {
			if !strings.HasPrefix(l, "alerts/probe ") { // a late probe
				t.Errorf("before the command the subscriber printed %q, want nothing", l)
			}
		}

		alert := regexp.MustCompile(`^alerts/plant1/line/1/machine/2 \{"machine":"2","setpoint":95,"temp":(\d+(\.\d+)?)\}$`)
		from := out.mark()
		raiseBin, raiseArgs := localCommand(t, qsRaise, bin, s.MQTTAddr)
		runProgram(t, raiseBin, raiseArgs...)
		out.wait(t, from, regexp.MustCompile(`^`+regexp.QuoteMeta(`plant/plant1/line/1/machine/2/cmd/reply {"id":"c1","ok":true,"applied":{"setpoint":95}}`)+`$`), 10*time.Second)
		out.wait(t, from, alert, 30*time.Second)

		// curl ... | grep: the same GET, the same filter.
		metrics := regexp.MustCompile(`^sluice_ingest_delivered_total\{rule="hot-machines",sink="republish"\} [1-9]\d*$`)
		if lines := getLines(t, s.AdminURL+"/metrics", "sluice_ingest_delivered_total"); len(lines) != 1 || !metrics.MatchString(lines[0]) {
			t.Errorf("metrics lines %q, want one matching %s", lines, metrics)
		}

		from = out.mark()
		lowerBin, lowerArgs := localCommand(t, qsLower, bin, s.MQTTAddr)
		runProgram(t, lowerBin, lowerArgs...)
		out.wait(t, from, regexp.MustCompile(`^`+regexp.QuoteMeta(`plant/plant1/line/1/machine/2/cmd/reply {"id":"c2","ok":true,"applied":{"setpoint":70}}`)+`$`), 10*time.Second)
		// The alerts stop: wait for a 3 s silence, within 30 s.
		deadline := time.Now().Add(30 * time.Second)
		for {
			n := out.mark()
			time.Sleep(3 * time.Second)
			if out.mark() == n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("alerts still coming 30s after the set-point went down:\n%s", strings.Join(out.since(from), "\n"))
			}
		}
		for _, l := range out.since(from) {
			if !alert.MatchString(l) && !strings.Contains(l, "/cmd/reply ") {
				t.Errorf("unexpected line %q", l)
			}
		}
		s.Stop()
	})
}

// getLines GETs url and returns the lines starting with prefix (curl -s
// URL | grep '^prefix').
func getLines(t *testing.T, url, prefix string) []string {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var lines []string
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			lines = append(lines, sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}
