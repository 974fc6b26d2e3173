package rulescli

import (
	"bytes"
	"strings"
	"testing"
)

func run(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = Main(args, &o, &e)
	return code, o.String(), e.String()
}

func TestRulesTest(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string
		stderrIn string
	}{
		{"passing cases", []string{"test", "testdata/example"}, 0,
			"ok   testdata/example/telemetry_test.yaml:2: hot reading in berlin goes everywhere\n" +
				"ok   testdata/example/telemetry_test.yaml:24: cold reading is only archived\n" +
				"ok   testdata/example/telemetry_test.yaml:30: missing temperature is dead-lettered\n" +
				"3 passed, 0 failed\n", ""},
		{"failing case shows a diff", []string{"test", "testdata/failing"}, 1,
			"FAIL testdata/failing/wrong_test.yaml:2: expects the wrong topic\n" +
				"  outputs differ (- want, + got):\n" +
				"      - rule: line-telemetry\n" +
				"        sink: kafka-main\n" +
				"    -   topic: telemetry.paris\n" +
				"    +   topic: telemetry.berlin\n" +
				"      - rule: line-telemetry\n" +
				"        sink: clickhouse-telemetry\n" +
				"    + - rule: line-telemetry\n" +
				"    +   sink: republish\n" +
				"    +   topic: alerts/berlin/3\n" +
				"    +   qos: 1\n" +
				"    +   retain: false\n" +
				"    +   mode: spool\n" +
				"    +   value: {\"line\":\"3\",\"site\":\"berlin\",\"temp\":85.5,\"ts\":\"2024-01-01T00:00:00Z\"}\n" +
				"\n" +
				"ok   testdata/failing/wrong_test.yaml:10: passes\n" +
				"1 passed, 1 failed\n", ""},
		{"rules that do not compile", []string{"test", "testdata/broken"}, 2, "",
			"testdata/broken/rules.yaml:3: rule \"broken\" when: unknown name tmp (1:1)\n1 error(s)\n"},
		{"usage", []string{"test"}, 2, "", "usage:"},
		{"unknown command", []string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := run(tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			if stdout != tt.stdout {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, tt.stdout)
			}
			if !strings.Contains(stderr, tt.stderrIn) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.stderrIn)
			}
		})
	}
}

func TestRulesEval(t *testing.T) {
	code, stdout, stderr := run("eval", "-c", "testdata/sluice.yaml", "--topic", "plant/berlin/line/3/telemetry",
		"--payload", `{"temp": 90}`, "--clientid", "press-07", "--qos", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, stdout, stderr)
	}
	want := `message: topic=plant/berlin/line/3/telemetry qos=1 clientid=press-07 payload="{\"temp\": 90}"

rule hot: topic matches "plant/+/line/+/telemetry"
  let site = "berlin"
  when = true
  -> sink kafka-main topic=telemetry.berlin value=(raw payload)

rule status: not matched: the topic matches none of its filters [plant/+/status fleet/#]

rule fragile: topic matches "plant/#"
  error: rule "fragile" when: invalid operation: <nil> > int (1:18)
  -> skipped (on_error: skip)

rule raw-archive: topic matches "plant/#"
  when = true
  -> sink archive value=(raw payload)

2 output(s)
`
	if stdout != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
	}

	code, stdout, _ = run("eval", "--rules", "testdata/example", "--topic", "plant/berlin/line/3/telemetry", "--payload", `{"temp": 20}`)
	if code != 0 || !strings.Contains(stdout, "when = false\n  not applied: when is false\n") {
		t.Errorf("exit %d, stdout:\n%s", code, stdout)
	}
	code, stdout, _ = run("eval", "--rules", "testdata/example", "--topic", "plant/berlin/line/3/telemetry", "--payload", `{}`)
	if code != 0 || !strings.Contains(stdout, "-> dead-letter store (on_error: dead_letter)\n") {
		t.Errorf("exit %d, stdout:\n%s", code, stdout)
	}
	if code, _, _ := run("eval", "--topic", "x"); code != 2 {
		t.Errorf("missing -c: exit %d, want 2", code)
	}
}
