package rules

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/ingest"
)

func TestDecide(t *testing.T) {
	src := `
- name: hot
  topics: ['plant/+/temp']
  let: {site: level(1)}
  when: payload.temp > 80
  transform: '{"site": site, "temp": payload.temp}'
  to:
    - sink: k
      topic: 'alerts.{{ site }}'
    - republish: {topic: 'alerts/{{ site }}', qos: 1}
- name: raw
  topics: ['plant/#']
  to: [{sink: k}]
- name: flag
  topics: ['plant/+/temp']
  when: payload.flag
  to: [{sink: k}]
- name: letfail
  topics: ['plant/+/temp']
  let: {x: level(9)}
  when: x == "a"
  to: [{sink: k}]
- name: skipped
  topics: ['plant/+/temp']
  on_error: skip
  transform: payload.name * 2
  to: [{sink: k}]
- name: other
  topics: ['other/#']
  to: [{sink: k}]
`
	reg := prometheus.NewRegistry()
	e, errs := CompileBytes("r.yaml", []byte(src), Options{Metrics: NewMetrics(reg)})
	if errs != nil {
		t.Fatal(errs)
	}
	type want struct {
		outcome Outcome
		when    string
		outputs []string // sink>topic, or "dead-letter"
		err     string   // substring of Err
	}
	tests := []struct {
		name   string
		sample Sample
		want   map[string]want
	}{
		{"hot", Sample{Topic: "plant/berlin/temp", Payload: map[string]any{"temp": 91, "flag": true}}, map[string]want{
			"hot":     {OutcomeRouted, WhenTrue, []string{"k>alerts.berlin", "republish>alerts/berlin"}, ""},
			"raw":     {OutcomeRouted, WhenNone, []string{"k>"}, ""},
			"flag":    {OutcomeRouted, WhenTrue, []string{"k>"}, ""},
			"letfail": {OutcomeError, WhenNone, []string{"dead-letter"}, "let.x"},
			"skipped": {OutcomeError, WhenNone, nil, "transform"},
			"other":   {OutcomeUnmatched, WhenNone, nil, ""},
		}},
		{"cold", Sample{Topic: "plant/berlin/temp", Payload: map[string]any{"temp": 20, "flag": false}}, map[string]want{
			"hot":  {OutcomeFiltered, WhenFalse, nil, ""},
			"flag": {OutcomeFiltered, WhenFalse, nil, ""},
		}},
		{"when errors", Sample{Topic: "plant/berlin/temp", Payload: map[string]any{"flag": "yes"}}, map[string]want{
			"hot":  {OutcomeError, WhenError, []string{"dead-letter"}, `rule "hot" when:`},
			"flag": {OutcomeError, WhenError, []string{"dead-letter"}, "want a boolean"},
		}},
		{"other topic", Sample{Topic: "plant/x", Payload: "not json"}, map[string]want{
			"hot": {OutcomeUnmatched, WhenNone, nil, ""},
			"raw": {OutcomeRouted, WhenNone, []string{"k>"}, ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := tt.sample.Input()
			if err != nil {
				t.Fatal(err)
			}
			ds := e.Decide(in)
			if len(ds) != len(e.rules) {
				t.Fatalf("%d decisions for %d rules", len(ds), len(e.rules))
			}
			for _, d := range ds {
				w, ok := tt.want[d.Rule]
				if !ok {
					continue
				}
				if d.Outcome != w.outcome || d.WhenResult != w.when {
					t.Errorf("rule %s: outcome %q when %q, want %q and %q (trace %+v)", d.Rule, d.Outcome, d.WhenResult, w.outcome, w.when, d.Trace)
				}
				var outs []string
				for _, o := range d.Outputs {
					if o.Err != "" {
						outs = append(outs, "dead-letter")
					} else {
						outs = append(outs, o.Sink+">"+o.Topic)
					}
				}
				if strings.Join(outs, ",") != strings.Join(w.outputs, ",") {
					t.Errorf("rule %s: outputs %v, want %v", d.Rule, outs, w.outputs)
				}
				if (w.err == "") != (d.Err == "") || !strings.Contains(d.Err, w.err) {
					t.Errorf("rule %s: err %q, want it to contain %q", d.Rule, d.Err, w.err)
				}
			}
		})
	}
	t.Run("transformed value", func(t *testing.T) {
		in, _ := (&Sample{Topic: "plant/b/temp", Payload: map[string]any{"temp": 99}}).Input()
		d := e.Decide(in)[0]
		if got := string(d.Outputs[0].Value); got != `{"site":"b","temp":99}` {
			t.Errorf("value = %s", got)
		}
	})
	t.Run("no metrics counted", func(t *testing.T) {
		for _, name := range []string{"sluice_rule_matched_total", "sluice_rule_passed_total", "sluice_rule_errors_total"} {
			if v := metricValue(t, reg, name, "hot"); v != 0 {
				t.Errorf("%s{rule=hot} = %v after Decide, want 0", name, v)
			}
		}
	})
	t.Run("holder uses the active rules", func(t *testing.T) {
		h, errs := NewHolder(Config{Rules: []RuleConfig{{Name: "one", Topics: []string{"#"}, To: []TargetConfig{{Sink: "k"}}}}}, Options{})
		if errs != nil {
			t.Fatal(errs)
		}
		in, _ := (&Sample{Topic: "a"}).Input()
		if ds := h.Decide(in); len(ds) != 1 || ds[0].Rule != "one" || ds[0].Outcome != OutcomeRouted {
			t.Fatalf("decisions = %+v", ds)
		}
		if ds := h.Decide(&ingest.Input{}); ds != nil {
			t.Fatalf("decisions without a message = %+v", ds)
		}
	})
}
