package rules

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestColumnsOutputs(t *testing.T) {
	tests := []struct {
		name    string
		rule    string
		payload any
		want    []string // each output's Value, or "ERR " + a substring of Err
	}{
		{"columns make the body, keys sorted",
			"  to:\n  - sink: ch\n    columns: {ts: received_at, device: clientid, temp: payload.t, site: site}\n",
			map[string]any{"t": 21.5}, []string{`{"device":"dev-1","site":"berlin","temp":21.5,"ts":"2024-05-01T12:00:00.25Z"}`}},
		{"per target: the others keep the transform",
			"  transform: '{\"v\": payload.t}'\n  to:\n  - {sink: ch, columns: {t: payload.t * 2}}\n  - {sink: k}\n",
			map[string]any{"t": 2}, []string{`{"t":4}`, `{"v":2}`}},
		{"a missing payload field is null",
			"  to: [{sink: ch, columns: {t: payload.nope}}]\n",
			map[string]any{"t": 2}, []string{`{"t":null}`}},
		{"an error names the column and dead-letters the target",
			"  transform: '{\"v\": payload.t}'\n  to:\n  - {sink: ch, columns: {a: clientid, b: payload.t / 0.0}}\n  - {sink: k}\n",
			map[string]any{"t": 1}, []string{`ERR rule "r" to[0].columns.b: encoding +Inf as JSON`, `{"v":1}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, errs := CompileBytes("r.yaml", []byte("- name: r\n  topics: [plant/+/t]\n  let: {site: level(1)}\n"+tt.rule), Options{})
			if errs != nil {
				t.Fatal(errs)
			}
			in, err := (&Sample{Topic: "plant/berlin/t", ClientID: "dev-1", Payload: tt.payload,
				ReceivedAt: time.Date(2024, 5, 1, 12, 0, 0, 250e6, time.UTC)}).Input()
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range e.Route(in, nil) {
				if o.Err != "" {
					got = append(got, "ERR "+o.Err)
					continue
				}
				got = append(got, string(o.Value))
			}
			if len(got) != len(tt.want) {
				t.Fatalf("outputs %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] && !(strings.HasPrefix(tt.want[i], "ERR ") && strings.Contains(got[i], tt.want[i][4:])) {
					t.Errorf("output %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestColumnsCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		to   string
		want []string
	}{
		{"unknown name", "  to:\n  - sink: ch\n    columns:\n      a: clientid\n      b: tmp\n",
			[]string{`rules.yaml:8: rule "r" to[0].columns.b: unknown name tmp (1:1)`}},
		{"type error", "  to:\n  - sink: ch\n    columns:\n      b: clientid * 2\n",
			[]string{`rules.yaml:7: rule "r" to[0].columns.b: invalid operation: * (mismatched types string and int) (1:10)`}},
		{"empty expression", "  to:\n  - sink: ch\n    columns:\n      b: ''\n",
			[]string{`rules.yaml:7: rule "r" to[0].columns.b: empty expression (want an expression, e.g. payload.b)`}},
		{"republish", "  to:\n  - republish: {topic: a}\n    columns: {b: clientid}\n",
			[]string{`rules.yaml:6: rule "r" to[0].columns: columns are for sink targets (a table's columns), not republish`}},
		{"not a mapping", "  to:\n  - sink: ch\n    columns: [a]\n",
			[]string{`rules.yaml:6: rule "r" to[0].columns: want a mapping of column: expression`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := CompileBytes("rules.yaml", []byte(oneRule("  topics: [a]\n"+tt.to)), Options{})
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestColumnMappings(t *testing.T) {
	src := `- name: r
  topics: [plant/+/t]
  let: {site: level(1), n: 'int(payload.n ?? 0)'}
  to:
  - sink: k
  - sink: ch
    topic: iot.wide
    columns:
      ts: received_at
      device: clientid
      site: site
      n: n
      temp: payload.t
      ok: payload.t > 0 || retain
      ratio: 'float(n) / 2'
      tags: '[site, clientid]'
      attrs: '{"a": 1}'
      raw: correlation_data
`
	e, errs := CompileBytes("rules.yaml", []byte(src), Options{})
	if errs != nil {
		t.Fatal(errs)
	}
	got := e.ColumnMappings()
	want := []ColumnMapping{{Rule: "r", Target: "to[1]", Where: "rules.yaml:1", Sink: "ch", Topic: "iot.wide", Columns: []MappedColumn{
		{"attrs", `{"a": 1}`, KindObject},
		{"device", "clientid", KindString},
		{"n", "n", KindInteger},
		{"ok", "payload.t > 0 || retain", KindBool},
		{"ratio", "float(n) / 2", KindNumber},
		{"raw", "correlation_data", KindString},
		{"site", "site", KindString},
		{"tags", "[site, clientid]", KindArray},
		{"temp", "payload.t", KindAny},
		{"ts", "received_at", KindTime},
	}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ColumnMappings\n%+v\nwant\n%+v", got, want)
	}
}
