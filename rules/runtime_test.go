package rules

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// metricValue reads a counter of rule from reg (0 when absent).
func metricValue(t *testing.T, reg *prometheus.Registry, name, rule string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelIs(m, "rule", rule) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func labelIs(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

func TestRuntimeErrors(t *testing.T) {
	tests := []struct {
		name    string
		rule    string // fields after name/topics, indented two spaces
		topics  string
		sample  Sample
		wantErr string // substring of the dead-letter Err; "" = no error
		outputs int    // outputs with on_error: dead_letter
	}{
		{"missing field compared", "  when: payload.temp > 80\n", "[t]", Sample{Topic: "t", Payload: map[string]any{"x": 1}},
			`rule "r" when: invalid operation: <nil> > int (1:14)`, 1},
		{"wrong type", "  transform: payload.name * 2\n", "[t]", Sample{Topic: "t", Payload: map[string]any{"name": "a"}},
			`rule "r" transform: invalid operation: string * int`, 1},
		{"integer division by zero", "  when: len(topic) % qos == 0\n", "[t]", Sample{Topic: "t"},
			`rule "r" when: runtime error: integer divide by zero`, 1},
		{"level out of range", "  let: {x: level(3)}\n", "['#']", Sample{Topic: "a/b"},
			`rule "r" let.x: level(3): topic has 2 levels`, 1},
		{"when not boolean at run time", "  when: payload.flag\n", "[t]", Sample{Topic: "t", Payload: map[string]any{}},
			`rule "r" when: want a boolean, got nil`, 1},
		{"transform not encodable", "  transform: '{\"v\": sqrt(-1)}'\n", "[t]", Sample{Topic: "t"},
			`rule "r" transform: encoding NaN as JSON: not a finite number`, 1},
		{"error inside an object transform", "  transform: '{\"a\": 1, \"b\": payload.x.y}'\n", "[t]", Sample{Topic: "t", Payload: map[string]any{}},
			`rule "r" transform: cannot fetch y from <nil> (1:25)`, 1},
		{"function error", "  transform: json_decode(raw)\n", "[t]", Sample{Topic: "t", Payload: "{"},
			`rule "r" transform: json_decode: unexpected end of JSON input`, 1},
		{"undecodable payload", "  when: payload.x == 1\n", "[t]", Sample{Topic: "t", Payload: "x=1"},
			`(payload not decoded: invalid character 'x' looking for beginning of value)`, 1},
		{"key error is per target", "  to: [{sink: k, key: 'payload.a.b'}, {sink: k}]\n", "[t]", Sample{Topic: "t", Payload: map[string]any{}},
			`rule "r" to[0].key: cannot fetch b from <nil>`, 2},
		{"no error", "  when: payload.temp > 80\n", "[t]", Sample{Topic: "t", Payload: map[string]any{"temp": 81}}, "", 1},
	}
	for _, tt := range tests {
		for _, onError := range []string{"dead_letter", "skip"} {
			t.Run(tt.name+"/"+onError, func(t *testing.T) {
				body := tt.rule
				if !strings.Contains(body, "  to:") {
					body += "  to: [{sink: k}]\n"
				}
				src := "- name: r\n  topics: " + tt.topics + "\n  on_error: " + onError + "\n" + body
				reg := prometheus.NewRegistry()
				e, errs := CompileBytes("r.yaml", []byte(src), Options{Metrics: NewMetrics(reg)})
				if errs != nil {
					t.Fatal(errs)
				}
				in, err := tt.sample.Input()
				if err != nil {
					t.Fatal(err)
				}
				out := e.Route(in, nil)
				var dead []string
				for _, o := range out {
					if o.Err != "" {
						dead = append(dead, o.Err)
					}
				}
				wantOutputs := tt.outputs
				if tt.wantErr != "" && onError == "skip" {
					wantOutputs -= 1
				}
				if len(out) != wantOutputs {
					t.Fatalf("got %d outputs %+v, want %d", len(out), out, wantOutputs)
				}
				switch {
				case tt.wantErr == "" && len(dead) > 0:
					t.Fatalf("unexpected errors %v", dead)
				case tt.wantErr != "" && onError == "dead_letter" && (len(dead) != 1 || !strings.Contains(dead[0], tt.wantErr)):
					t.Fatalf("dead letters %q, want one containing %q", dead, tt.wantErr)
				case onError == "skip" && len(dead) > 0:
					t.Fatalf("skip produced dead letters %q", dead)
				}
				wantErrors := 0.0
				if tt.wantErr != "" {
					wantErrors = 1
				}
				if got := metricValue(t, reg, "sluice_rule_errors_total", "r"); got != wantErrors {
					t.Errorf("errors_total = %v, want %v", got, wantErrors)
				}
				if got := metricValue(t, reg, "sluice_rule_matched_total", "r"); got != 1 {
					t.Errorf("matched_total = %v, want 1", got)
				}
			})
		}
	}
}

func TestMetricsCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	e, errs := CompileBytes("r.yaml", []byte("- name: hot\n  topics: [t/+]\n  when: payload.v > 1\n  to: [{sink: k}]\n"),
		Options{Metrics: NewMetrics(reg)})
	if errs != nil {
		t.Fatal(errs)
	}
	for _, s := range []Sample{
		{Topic: "t/a", Payload: map[string]any{"v": 2}},
		{Topic: "t/b", Payload: map[string]any{"v": 0}},
		{Topic: "t/c", Payload: map[string]any{"v": 5}},
		{Topic: "u/a", Payload: map[string]any{"v": 5}},
	} {
		in, _ := s.Input()
		e.Route(in, nil)
	}
	for name, want := range map[string]float64{"sluice_rule_matched_total": 3, "sluice_rule_passed_total": 2, "sluice_rule_errors_total": 0} {
		if got := metricValue(t, reg, name, "hot"); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}
