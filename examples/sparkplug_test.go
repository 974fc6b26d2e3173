package examples

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2etest"
	"github.com/sluicehq/sluice/schemas/sparkplug"
)

var update = flag.Bool("update", false, "rewrite generated example files (the Sparkplug command payloads)")

const sparkplugREADME = "sparkplug/README.md"

// The Sparkplug example's commands, as its README writes them.
const (
	spRulesTest = `go run ./cmd/sluice rules test examples/sparkplug/rules`
	spRun       = `go run ./cmd/sluice -c examples/sparkplug/sluice.yaml`
	spSub       = `mosquitto_sub -h 127.0.0.1 -p 1883 -V mqttv5 -t 'json/#' -t 'alerts/#' -t 'status/#' -v`
	spSim       = `go run ./cmd/sluice sim -format sparkplugb -lines 1 -machines 2 -drift 5s -fault-rate 0`
	spDCMD      = `mosquitto_pub -h 127.0.0.1 -p 1883 -q 1 -t spBv1.0/plant1/DCMD/line1/machine2 -f examples/sparkplug/dcmd-setpoint-95.bin`
	spNCMD      = `mosquitto_pub -h 127.0.0.1 -p 1883 -q 1 -t spBv1.0/plant1/NCMD/line1 -f examples/sparkplug/ncmd-rebirth.bin`
	spMetrics   = `curl -s http://127.0.0.1:8088/metrics | grep -E '^sluice_sparkplug_(edge_nodes|devices)_online|^sluice_sparkplug_(seq_gaps|unknown_aliases)_total'`
)

// commandFiles are the Sparkplug payloads the README publishes with
// mosquitto_pub -f, as the schemas/sparkplug encoder writes them.
var commandFiles = []struct {
	path string
	msg  sparkplug.Message
}{
	{"sparkplug/dcmd-setpoint-95.bin", sparkplug.Message{Metrics: []sparkplug.OutMetric{
		{Name: "setpoint", Datatype: sparkplug.TypeDouble, Value: 95.0}}}},
	{"sparkplug/ncmd-rebirth.bin", sparkplug.Message{Metrics: []sparkplug.OutMetric{
		{Name: "Node Control/Rebirth", Datatype: sparkplug.TypeBoolean, Value: true}}}},
}

// TestSparkplugCommandFiles checks the command payloads against the
// encoder (run with -update to rewrite them).
func TestSparkplugCommandFiles(t *testing.T) {
	for _, f := range commandFiles {
		t.Run(f.path, func(t *testing.T) {
			want, err := f.msg.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(filepath.FromSlash(f.path), want, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(filepath.FromSlash(f.path))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s is stale: run go test ./examples -run TestSparkplugCommandFiles -update", f.path)
			}
		})
	}
}

// TestSparkplug runs examples/sparkplug/README.md step by step.
func TestSparkplug(t *testing.T) {
	bin := e2etest.BuildSluice(t)
	requireProgram(t, "mosquitto_sub")
	pub := requireProgram(t, "mosquitto_pub")
	requireInREADME(t, sparkplugREADME, spRulesTest, spRun, spSub, spSim, spDCMD, spNCMD, spMetrics,
		"3 passed, 0 failed",
		`status/plant1/line1 {"bdSeq":0,"edge_node":"line1","event":"NBIRTH"}`,
		`status/plant1/line1 {"bdSeq":0,"edge_node":"line1","event":"NDEATH"}`,
		`msg="edge nodes connected" edge_nodes=1 machines=2 addr=127.0.0.1:1883 group=plant1`,
		"sluice_sparkplug_devices_online 2\nsluice_sparkplug_edge_nodes_online 1\nsluice_sparkplug_seq_gaps_total 0\nsluice_sparkplug_unknown_aliases_total 0\n")

	t.Run("rules test", func(t *testing.T) {
		rtBin, rtArgs := localCommand(t, spRulesTest, bin, "127.0.0.1:1883")
		if out := runProgram(t, rtBin, rtArgs...); !strings.HasSuffix(out, "3 passed, 0 failed\n") {
			t.Errorf("rules test printed:\n%s", out)
		}
	})

	rulesDir, err := filepath.Abs("sparkplug/rules")
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "data")
	cfg := rewrite(t, "sparkplug/sluice.yaml", readFile(t, "sparkplug/sluice.yaml"),
		`address: "127.0.0.1:1883"`, `address: "127.0.0.1:0"`,
		"address: 127.0.0.1:8088", "address: 127.0.0.1:0",
		"data_dir: sluice-data", "data_dir: "+data,
		"state_dir: sluice-data/sparkplug", "state_dir: "+filepath.Join(data, "sparkplug"),
		"rules_files: [rules]", "rules_files: ["+rulesDir+"]")
	s := e2etest.Start(t, bin, "log: {format: json}\n"+cfg)
	subBin, subArgs := localCommand(t, spSub, bin, s.MQTTAddr)
	_, out := startProgram(t, "mosquitto_sub", subBin, subArgs...)
	waitSubscribed(t, out, pub, s.MQTTAddr, "status/probe")

	from := out.mark()
	simBin, simArgs := localCommand(t, spSim, bin, s.MQTTAddr)
	simProc, simOut := startProgram(t, "sluice sim", simBin, simArgs...)
	simOut.wait(t, 0, regexp.MustCompile(`msg="edge nodes connected" edge_nodes=1 machines=2 addr=127\.0\.0\.1:\d+ group=plant1`), 30*time.Second)
	birth := regexp.MustCompile(`^` + regexp.QuoteMeta(`status/plant1/line1 {"bdSeq":0,"edge_node":"line1","event":"NBIRTH"}`) + `$`)
	out.wait(t, from, birth, 10*time.Second)
	// Data, its aliases resolved to names by the decoder.
	data2 := regexp.MustCompile(`^json/plant1/line1/machine2 \{"fault":false,"line":"line1","machine":"machine2","seq":\d+,"setpoint":(60|65|70|75|80),"site":"plant1","spindle_rpm":\d+,"state":"running","temp":[\d.]+,"ts":\d+,"vibration":[\d.]+\}$`)
	out.wait(t, from, data2, 10*time.Second)

	t.Run("DCMD", func(t *testing.T) {
		from := out.mark()
		dBin, dArgs := localCommand(t, spDCMD, bin, s.MQTTAddr)
		runProgram(t, dBin, dArgs...)
		// The device reports the new values at once, then heats up.
		out.wait(t, from, regexp.MustCompile(`^json/plant1/line1/machine2 \{"fault":null,"line":"line1","machine":"machine2","seq":\d+,"setpoint":95,"site":"plant1","spindle_rpm":null,"state":"running","temp":null,"ts":\d+,"vibration":null\}$`), 10*time.Second)
		out.wait(t, from, regexp.MustCompile(`^alerts/plant1/line1/machine2 \{"machine":"machine2","setpoint":95,"temp":8[5-9]\.?\d*\}$`), 30*time.Second)
	})
	t.Run("NCMD rebirth", func(t *testing.T) {
		from := out.mark()
		nBin, nArgs := localCommand(t, spNCMD, bin, s.MQTTAddr)
		runProgram(t, nBin, nArgs...)
		out.wait(t, from, birth, 10*time.Second)
	})
	t.Run("metrics", func(t *testing.T) {
		// curl ... | grep -E: the same GET, the same filter.
		var got []string
		for _, l := range getLines(t, s.AdminURL+"/metrics", "sluice_sparkplug_") {
			if regexp.MustCompile(`^sluice_sparkplug_(edge_nodes|devices)_online|^sluice_sparkplug_(seq_gaps|unknown_aliases)_total`).MatchString(l) {
				got = append(got, l)
			}
		}
		want := []string{"sluice_sparkplug_devices_online 2", "sluice_sparkplug_edge_nodes_online 1",
			"sluice_sparkplug_seq_gaps_total 0", "sluice_sparkplug_unknown_aliases_total 0"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("metrics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("stop", func(t *testing.T) {
		from := out.mark()
		if !simProc.Signal(syscall.SIGINT, 30*time.Second) {
			t.Fatal("sluice sim did not stop within 30s of SIGINT")
		}
		out.wait(t, from, regexp.MustCompile(`^`+regexp.QuoteMeta(`status/plant1/line1 {"bdSeq":0,"edge_node":"line1","event":"NDEATH"}`)+`$`), 10*time.Second)
	})
	st, err := s.Ingest()
	if err != nil {
		t.Fatal(err)
	}
	if !st.Balanced || st.Accounting.DecodeErrors != 0 || st.Accounting.Rejected != 0 {
		t.Errorf("accounting %+v, want balanced with no decode errors", st.Accounting)
	}
	s.Stop()
}
