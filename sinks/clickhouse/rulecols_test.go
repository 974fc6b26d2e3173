package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/rules"
	"github.com/sluicehq/sluice/sinks"
)

// ruleColumnsOf adapts a rules engine's mappings of sink to the sink's
// RuleColumnsFunc, as cmd wires them.
func ruleColumnsOf(engine func() *rules.Engine, sink string) RuleColumnsFunc {
	return func(known string) (string, []RuleColumns) {
		e := engine()
		v := e.Version().Hash
		if v == known {
			return v, nil
		}
		var out []RuleColumns
		for _, m := range e.ColumnMappings() {
			if m.Sink != sink {
				continue
			}
			rc := RuleColumns{Rule: m.Rule, Target: m.Target, Where: m.Where, Table: m.Topic}
			for _, c := range m.Columns {
				rc.Columns = append(rc.Columns, RuleColumn{Name: c.Name, Expr: c.Expr, Kind: c.Kind})
			}
			out = append(out, rc)
		}
		return v, out
	}
}

func TestKindFits(t *testing.T) {
	all := []string{kindString, kindTime, kindBytes, kindInteger, kindNumber, kindBool, kindArray, kindObject}
	tests := []struct {
		typ  string
		fits []string
	}{
		{"String", all},
		{"LowCardinality(String)", all},
		{"Nullable(Float64)", []string{kindInteger, kindNumber, kindBool}},
		{"UInt8", []string{kindInteger, kindNumber, kindBool}},
		{"Bool", []string{kindInteger, kindNumber, kindBool}},
		{"DateTime", []string{kindString, kindTime, kindInteger, kindNumber}},
		{"DateTime64(3, 'UTC')", []string{kindString, kindTime, kindInteger, kindNumber}},
		{"FixedString(8)", []string{kindString, kindBytes}},
		{"FixedString(40)", []string{kindString, kindTime, kindBytes}},
		{"UUID", []string{kindString}},
		{"Enum8('a' = 1)", []string{kindString, kindInteger, kindNumber}},
		{"Array(Float64)", []string{kindArray}},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			typ, err := parseType(tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			if !kindFits(typ, "") {
				t.Errorf("an unknown kind does not fit")
			}
			for _, k := range all {
				if got, want := kindFits(typ, k), slices.Contains(tt.fits, k); got != want {
					t.Errorf("kindFits(%s, %s) = %v, want %v", tt.typ, k, got, want)
				}
			}
		})
	}
}

func TestPlanRule(t *testing.T) {
	described := []tableColumn{
		{"ts", "DateTime", ""}, {"device", "String", ""}, {"n", "UInt8", ""}, {"price", "Decimal(9, 2)", ""},
		{"total", "UInt64", "MATERIALIZED"}, {"topic", "String", ""}, {"at", "DateTime", "DEFAULT"},
	}
	m := func(cols ...RuleColumn) *RuleColumns {
		return &RuleColumns{Rule: "r", Target: "to[0]", Where: "rules.yaml:3", Columns: cols}
	}
	tests := []struct {
		name    string
		m       *RuleColumns
		sink    map[string]string
		insert  string
		sources []string
		want    []string
	}{
		{name: "the rule's columns and the sink's properties, in table order",
			m:      m(RuleColumn{"n", "payload.n", ""}, RuleColumn{"ts", "received_at", kindTime}, RuleColumn{"at", "now()", kindTime}),
			sink:   map[string]string{"topic": "$topic", "device": "reading.device"},
			insert: "INSERT INTO db.t (`ts`, `n`, `topic`, `at`)", sources: []string{"received_at", "payload.n", "$topic", "now()"}},
		{name: "every problem, naming rule, column and types",
			m: m(RuleColumn{"nope", "clientid", kindString}, RuleColumn{"n", "clientid", kindString},
				RuleColumn{"total", "1", kindInteger}, RuleColumn{"price", "payload.p", ""}, RuleColumn{"ts", "retain", kindBool}),
			want: []string{
				`rule "r" to[0].columns.nope (rules.yaml:3): the table has no column nope`,
				`rule "r" to[0].columns.total (rules.yaml:3): column total is MATERIALIZED and cannot be written`,
				`rule "r" to[0].columns.ts (rules.yaml:3): column ts is DateTime and cannot hold retain (a bool)`,
				`rule "r" to[0].columns.n (rules.yaml:3): column n is UInt8 and cannot hold clientid (a string)`,
				`rule "r" to[0].columns.price (rules.yaml:3): column price: type Decimal(9, 2): not supported by the clickhouse sink`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := planRule("db", "t", described, tt.sink, tt.m)
			if tt.want != nil {
				var ce *ConfigError
				if !errors.As(err, &ce) {
					t.Fatalf("planRule = %v, want a *ConfigError", err)
				}
				if !slices.Equal(ce.Problems, tt.want) {
					t.Fatalf("problems\n%s\nwant\n%s", strings.Join(ce.Problems, "\n"), strings.Join(tt.want, "\n"))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var sources []string
			for _, c := range got.cols {
				sources = append(sources, c.src.text)
			}
			if got.insert != tt.insert || !slices.Equal(sources, tt.sources) {
				t.Fatalf("plan %s from %q, want %s from %q", got.insert, sources, tt.insert, tt.sources)
			}
		})
	}
}

// ruleColumnsYAML maps a table's columns per rule: the rule names a
// DEFAULT column (written), leaves out a Nullable one (NULL) and one with
// a DEFAULT (filled), and the sink maps topic to a record property.
const ruleColumnsYAML = `
- name: line-telemetry
  topics: ["plant/+/line/+/telemetry"]
  let: { site: level(1) }
  to:
    - sink: ch
      columns:
        ts: received_at
        device: clientid
        site: site
        temp: payload.t
        seq: 'int(payload.n)'
        note: '"seen"'
`

// TestRuleColumns drives MQTT messages through the rules engine, the
// spool and the runner into ClickHouse with a rule's columns: rows hold
// the mapped values, the columns the rule leaves out their DEFAULT (or
// NULL), and a row whose value does not fit is dead-lettered naming the
// column while the others go in.
func TestRuleColumns(t *testing.T) {
	srv := server(t)
	db, name := makeTable(t, srv, `(
		ts DateTime, device String, site LowCardinality(String), temp Nullable(Float64), seq UInt32,
		note String DEFAULT 'none', unset Nullable(String), pressure Float32 DEFAULT 1.5, topic String
	) ENGINE = MergeTree ORDER BY (site, device, ts)`)
	engine, errs := rules.CompileBytes("rules.yaml", []byte(ruleColumnsYAML), rules.Options{Sinks: []string{"ch"}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	s, err := New(Config{Addresses: []string{srv.Addr()}, Database: db, Table: name, Columns: map[string]string{"topic": "$topic"},
		WriteTimeout: 10 * time.Second, Batch: BatchConfig{Linger: 20 * time.Millisecond}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.SetRuleColumns(ruleColumnsOf(func() *rules.Engine { return engine }, "ch"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	cfg := ingest.DefaultConfig()
	cfg.DataDir = t.TempDir()
	p, err := ingest.New(cfg, ingest.Options{Router: engine, Decoder: rules.JSONDecoder{}, Sinks: map[string]sinks.Sink{"ch": s}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Open(); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		s.Close()
	}()

	base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for n := range 20 {
		payload := fmt.Sprintf(`{"t": %d.25, "n": %d}`, n, n)
		if n == 7 {
			payload = `{"t": "hot", "n": 7}`
		}
		m := &broker.Message{Topic: fmt.Sprintf("plant/berlin/line/%d/telemetry", n%2), ClientID: fmt.Sprintf("press-%d", n%3),
			QoS: 1, Payload: []byte(payload), ReceivedAt: base.Add(time.Duration(n) * time.Second)}
		acked := make(chan error, 1)
		p.Deliver(context.Background(), m, func(err error) { acked <- err })
		if err := <-acked; err != nil {
			t.Fatalf("message %d refused: %v", n, err)
		}
	}
	table := db + "." + name
	deadline := time.Now().Add(20 * time.Second)
	for rows(t, srv, "SELECT count() FROM "+table)[0] != "19" {
		if time.Now().After(deadline) {
			t.Fatalf("table holds %q rows, want 19", rows(t, srv, "SELECT count() FROM "+table))
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := rows(t, srv, "SELECT ts, device, site, temp, seq, note, unset, pressure, topic FROM "+table+" WHERE seq = 5")
	if want := "2024-05-01 12:00:05\tpress-2\tberlin\t5.25\t5\tseen\t\\N\t1.5\tplant/berlin/line/1/telemetry"; len(got) != 1 || got[0] != want {
		t.Fatalf("row = %q, want %q", got, want)
	}
	entries, err := p.DeadLetters().List(0, 10, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || !strings.Contains(entries[0].Error, `column temp (Nullable(Float64), from payload.t): want a number for Float64, got string "hot"`) {
		t.Fatalf("dead letters = %+v, want message 7 naming column temp", entries)
	}
}

// TestRuleColumnsConfigErrors checks that Connect refuses rules whose
// columns do not fit their tables, naming rule, column and types.
func TestRuleColumnsConfigErrors(t *testing.T) {
	srv := server(t)
	db, name := makeTable(t, srv, `(ts DateTime, n UInt8, tags Array(String)) ENGINE = MergeTree ORDER BY ts`)
	srv.Exec(t, "CREATE TABLE "+db+".other (ts DateTime) ENGINE = MergeTree ORDER BY ts")
	tests := []struct {
		name  string
		to    string
		want  []string // the ConfigErrors' texts
		clean bool
	}{
		{name: "fits", to: "{sink: ch, columns: {ts: received_at, n: qos, tags: '[clientid]'}}", clean: true},
		{name: "template table not checked", to: "{sink: ch, topic: '{{ clientid }}', columns: {nope: clientid}}", clean: true},
		{name: "missing column and impossible types",
			to: "{sink: ch, columns: {ts: retain, n: clientid, tags: qos, tmp: payload.t}}",
			want: []string{"table " + db + "." + name + `: ` +
				`rule "r" to[0].columns.tmp (rules.yaml:1): the table has no column tmp; ` +
				`rule "r" to[0].columns.ts (rules.yaml:1): column ts is DateTime and cannot hold retain (a bool); ` +
				`rule "r" to[0].columns.n (rules.yaml:1): column n is UInt8 and cannot hold clientid (a string); ` +
				`rule "r" to[0].columns.tags (rules.yaml:1): column tags is Array(String) and cannot hold qos (an integer)`}},
		{name: "a rule's other table",
			to:   "{sink: ch, topic: other, columns: {ts: received_at, n: qos}}",
			want: []string{"table " + db + `.other: rule "r" to[0].columns.n (rules.yaml:1): the table has no column n`}},
		{name: "a missing table",
			to:   "{sink: ch, topic: gone, columns: {ts: received_at}}",
			want: []string{"table " + db + `.gone: rule "r" to[0].topic (rules.yaml:1): table ` + db + ".gone does not exist"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "- name: r\n  topics: [a]\n  to: [" + tt.to + "]\n"
			engine, errs := rules.CompileBytes("rules.yaml", []byte(src), rules.Options{})
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			s, err := New(Config{Addresses: []string{srv.Addr()}, Database: db, Table: name}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			s.SetRuleColumns(ruleColumnsOf(func() *rules.Engine { return engine }, "ch"))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = s.Connect(ctx)
			if tt.clean {
				if err != nil {
					t.Fatalf("Connect = %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Connect = %v, want a *ConfigError", err)
			}
			if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, tt.want) {
				t.Fatalf("Connect =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestRuleColumnsReload checks that a rules reload changing a mapping is
// picked up by the next write.
func TestRuleColumnsReload(t *testing.T) {
	srv := server(t)
	db, name := makeTable(t, srv, `(a String, b String DEFAULT 'dflt') ENGINE = MergeTree ORDER BY a`)
	compile := func(cols string) *rules.Engine {
		e, errs := rules.CompileBytes("rules.yaml", []byte("- name: r\n  topics: [a]\n  to: [{sink: ch, columns: "+cols+"}]\n"), rules.Options{})
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		return e
	}
	engine := compile("{a: '\"one\"'}")
	s := newSink(t, srv, Config{Database: db, Table: name})
	s.SetRuleColumns(ruleColumnsOf(func() *rules.Engine { return engine }, "ch"))
	route := func() []sinks.Record {
		in, err := (&rules.Sample{Topic: "a"}).Input()
		if err != nil {
			t.Fatal(err)
		}
		out := engine.Route(in, nil)
		return []sinks.Record{{Rule: out[0].Rule, Value: out[0].Value}}
	}
	if err := write(t, s, route()); err != nil {
		t.Fatal(err)
	}
	engine = compile("{a: '\"two\"', b: '\"set\"'}")
	if err := write(t, s, route()); err != nil {
		t.Fatal(err)
	}
	if got, want := rows(t, srv, "SELECT a, b FROM "+db+"."+name+" ORDER BY a"), []string{"one\tdflt", "two\tset"}; !slices.Equal(got, want) {
		t.Fatalf("rows = %q, want %q", got, want)
	}
}
