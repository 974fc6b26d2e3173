package deployments

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/chtest"
	schemas "github.com/sluicehq/sluice/schemas/clickhouse"
)

// The plant telemetry dashboard's SQL is run against a real ClickHouse
// server (internal/chtest: Debian's 18.16 here) holding the shipped
// telemetry table and a few rows. Grafana does not send a panel's rawSql
// as it is written: the frontend first replaces template variables
// (${site:singlequote}), then the ClickHouse plugin's backend
// (grafana/clickhouse-datasource, pkg/macros/macros.go) replaces its
// macros ($__timeFilter(ts), $__timeInterval(ts)). grafanaEnv.expand does
// both the same way, so the server sees the statements Grafana would send,
// except where the test server lacks a function (see expand).

// dashInterval is the panels' $__interval. Grafana derives it from the time
// range and the panel's width (6h over a ~1000px panel gives 20s-30s);
// the test fixes it at 30s so buckets are predictable.
const dashInterval = 30 * time.Second

// dashRange is the dashboard's default time range (now-6h to now).
const dashRange = 6 * time.Hour

// colKind is what a result column must hold for its panel to draw.
type colKind int

const (
	kindTime colKind = iota
	kindString
	kindNumber
)

func (k colKind) String() string { return [...]string{"time", "string", "number"}[k] }

// col is an expected result column.
type col struct {
	name string
	kind colKind
}

// wantPanels lists the columns each ClickHouse query of the dashboard must
// return, keyed by panel title ("var:" and the name for a template
// variable's query). A time series needs its time column first, then the
// series label, then the value; the table shows its columns by name.
var wantPanels = map[string][]col{
	"var:site":            {{"site", kindString}},
	"var:line":            {{"line", kindString}},
	"Temperature":         {{"time", kindTime}, {"device", kindString}, {"temperature", kindNumber}},
	"Pressure":            {{"time", kindTime}, {"device", kindString}, {"pressure", kindNumber}},
	"Vibration":           {{"time", kindTime}, {"device", kindString}, {"vibration", kindNumber}},
	"Spindle speed":       {{"time", kindTime}, {"device", kindString}, {"rpm", kindNumber}},
	"Power":               {{"time", kindTime}, {"device", kindString}, {"power_kw", kindNumber}},
	"Rows per interval":   {{"time", kindTime}, {"line", kindString}, {"rows", kindNumber}},
	"Devices: last state": {{"site", kindString}, {"line", kindString}, {"device", kindString}, {"state", kindString}, {"last_seen", kindTime}, {"temperature", kindNumber}, {"rpm", kindNumber}},
}

// dashQuery is one ClickHouse query of the dashboard.
type dashQuery struct {
	name string // panel title, or "var:" and the variable's name
	sql  string
}

// dashboardQueries returns the template variables' queries (in the
// dashboard's order, which is the order Grafana resolves them in) and
// the panels' rawSql.
func dashboardQueries(t *testing.T, path string) (vars, panels []dashQuery) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Templating struct {
			List []struct {
				Name, Type, Query string
			}
		}
		Panels []struct {
			Title   string
			Targets []struct{ RawSQL string }
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, v := range dash.Templating.List {
		if v.Type == "query" {
			vars = append(vars, dashQuery{name: "var:" + v.Name, sql: v.Query})
		}
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			if tg.RawSQL != "" {
				panels = append(panels, dashQuery{name: p.Title, sql: tg.RawSQL})
			}
		}
	}
	return vars, panels
}

// grafanaEnv is what Grafana substitutes into a query: the time range, the
// interval and the template variables' selected values.
type grafanaEnv struct {
	from, to time.Time
	interval time.Duration
	vars     map[string][]string
	// startOfInterval is whether the server has toStartOfInterval (19.x
	// and later; 18.16 has not).
	startOfInterval bool
}

var (
	variableRef = regexp.MustCompile(`\$\{(\w+)(?::(\w+))?\}|\$(\w+)`)
	macroCall   = regexp.MustCompile(`\$__(\w+)\(([^()]*)\)`)
)

// expand returns sql as Grafana and the ClickHouse plugin would send it.
// Every variable format and macro the dashboard uses is handled below; any
// other is an error, so a new one has to be added (and checked) here.
func (e grafanaEnv) expand(sql string) (string, error) {
	var errs []string
	// 1. Template variables, by Grafana's frontend. ${v:singlequote}
	// quotes each selected value, escaping ' as \' (which ClickHouse
	// reads), and joins them with commas. "All" without a custom
	// allValue selects every value of the variable's query.
	sql = variableRef.ReplaceAllStringFunc(sql, func(ref string) string {
		m := variableRef.FindStringSubmatch(ref)
		name, format := m[1], m[2]
		if strings.HasPrefix(m[3], "__") {
			return ref // a macro, step 2
		}
		if name == "" || format != "singlequote" {
			errs = append(errs, fmt.Sprintf("variable %s: only ${name:singlequote} is expanded here", ref))
			return ref
		}
		values, ok := e.vars[name]
		if !ok {
			errs = append(errs, fmt.Sprintf("variable %s is not defined", ref))
			return ref
		}
		quoted := make([]string, len(values))
		for i, v := range values {
			quoted[i] = "'" + strings.ReplaceAll(v, "'", `\'`) + "'"
		}
		return strings.Join(quoted, ",")
	})
	// 2. Macros, by the plugin's backend.
	sql = macroCall.ReplaceAllStringFunc(sql, func(call string) string {
		m := macroCall.FindStringSubmatch(call)
		name, arg := m[1], strings.TrimSpace(m[2])
		switch name {
		case "timeFilter":
			// The plugin's expansion, unchanged: seconds since the epoch.
			return fmt.Sprintf("%s >= toDateTime(%d) AND %s <= toDateTime(%d)", arg, e.from.Unix(), arg, e.to.Unix())
		case "timeInterval":
			secs := max(int64(e.interval/time.Second), 1)
			if e.startOfInterval {
				// The plugin's expansion, unchanged.
				return fmt.Sprintf("toStartOfInterval(toDateTime(%s), INTERVAL %d second)", arg, secs)
			}
			// Substitution: ClickHouse before 19.x has no
			// toStartOfInterval. For an interval in seconds it rounds the
			// Unix time down to a multiple of the interval, which is what
			// this computes, with the same DateTime result type.
			return fmt.Sprintf("toDateTime(intDiv(toUInt32(toDateTime(%s)), %d) * %d)", arg, secs, secs)
		}
		errs = append(errs, fmt.Sprintf("macro %s is not expanded here", call))
		return call
	})
	if len(errs) > 0 {
		return "", fmt.Errorf("expanding %q: %s", sql, strings.Join(errs, "; "))
	}
	if strings.Contains(sql, "$") {
		return "", fmt.Errorf("expanding %q: a $ is left over", sql)
	}
	return sql, nil
}

// reading is one telemetry row the test inserts.
type reading struct {
	ts                 time.Time
	site, line, device string
	state              string
	noPower            bool // power_kw is NULL, as for a device that does not report it
}

// telemetryRows returns readings of three devices on two sites over the
// last few minutes before to, and one reading older than the dashboard's
// range, which no panel may show. A site name holds a quote to check the
// variables' escaping.
func telemetryRows(to time.Time) []reading {
	devices := []reading{
		{site: "plant1", line: "l1", device: "m1"},
		{site: "plant1", line: "l1", device: "m2", noPower: true},
		{site: "o'hare", line: "l2", device: "m3"},
	}
	var rows []reading
	for i := range 6 {
		for _, d := range devices {
			d.ts = to.Add(-time.Minute - time.Duration(i)*20*time.Second)
			d.state = []string{"running", "idle", "fault"}[i%3]
			rows = append(rows, d)
		}
	}
	old := devices[0]
	old.ts, old.state = to.Add(-dashRange-time.Hour), "stale"
	return append(rows, old)
}

func insertSQL(db string, rows []reading) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + db + ".telemetry (ts, site, line, device, temperature, pressure, vibration, rpm, power_kw, state) VALUES ")
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		power := "NULL"
		if !r.noPower {
			power = strconv.Itoa(10 + i)
		}
		fmt.Fprintf(&b, "('%s', '%s', '%s', '%s', %d.5, 2.%d, 0.0%d, %d, %s, '%s')",
			r.ts.UTC().Format(time.DateTime), strings.ReplaceAll(r.site, "'", `\'`), r.line, r.device,
			60+i, i%10, i%10, 1000+10*i, power, r.state)
	}
	return b.String()
}

// result is a query's answer in ClickHouse's JSON format.
type result struct {
	Meta []struct{ Name, Type string }
	Data []map[string]any
}

func queryJSON(t *testing.T, srv *chtest.Server, sql string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := srv.Query(ctx, sql+"\nFORMAT JSON")
	if err != nil {
		t.Fatalf("running %s\n: %v", sql, err)
	}
	var r result
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
	return r
}

// kindOf classifies a ClickHouse type name.
func kindOf(typ string) (colKind, bool) {
	typ = strings.TrimPrefix(typ, "Nullable(")
	typ = strings.TrimPrefix(typ, "LowCardinality(")
	switch {
	case strings.HasPrefix(typ, "DateTime"):
		return kindTime, true
	case strings.HasPrefix(typ, "String"):
		return kindString, true
	case strings.HasPrefix(typ, "Float"), strings.HasPrefix(typ, "UInt"), strings.HasPrefix(typ, "Int"), strings.HasPrefix(typ, "Decimal"):
		return kindNumber, true
	}
	return 0, false
}

// checkColumns fails t unless r has exactly the wanted columns, in order,
// and at least one row.
func checkColumns(t *testing.T, r result, want []col) {
	t.Helper()
	var got []string
	for _, m := range r.Meta {
		got = append(got, m.Name+" "+m.Type)
	}
	if len(r.Meta) != len(want) {
		t.Fatalf("columns %q, want %v", got, want)
	}
	for i, w := range want {
		k, ok := kindOf(r.Meta[i].Type)
		if r.Meta[i].Name != w.name || !ok || k != w.kind {
			t.Fatalf("column %d is %s, want %s (%s); all: %q", i, got[i], w.name, w.kind, got)
		}
	}
	if len(r.Data) == 0 {
		t.Fatal("no rows")
	}
}

func parseTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	ts, err := time.ParseInLocation(time.DateTime, strings.TrimSuffix(s, ".000"), time.UTC)
	if err != nil {
		t.Fatalf("time %v: %v", v, err)
	}
	return ts
}

func parseNumber(t *testing.T, v any) float64 {
	t.Helper()
	var s string
	switch v := v.(type) {
	case json.Number:
		s = v.String()
	case string: // 64-bit integers come quoted
		s = v
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("number %v: %v", v, err)
	}
	return f
}

// serverMajor returns the server's major version.
func serverMajor(t *testing.T, srv *chtest.Server) int {
	t.Helper()
	v := strings.TrimSpace(srv.Exec(t, "SELECT version()"))
	major, err := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	if err != nil {
		t.Fatalf("server version %q: %v", v, err)
	}
	return major
}

// hasStartOfInterval reports whether the server knows toStartOfInterval.
func hasStartOfInterval(t *testing.T, srv *chtest.Server) bool {
	t.Helper()
	_, err := srv.Query(context.Background(), "SELECT toStartOfInterval(now(), INTERVAL 30 second)")
	if err != nil && !strings.Contains(err.Error(), "toStartOfInterval") {
		t.Fatalf("probing toStartOfInterval: %v", err)
	}
	return err == nil
}

// TestDashboardSQL runs every ClickHouse query of the plant telemetry
// dashboard, expanded as Grafana would, against the shipped telemetry table
// on a real server, for "All" and for a single site, and checks the
// columns each panel needs and the rows the inserted readings give.
func TestDashboardSQL(t *testing.T) {
	vars, panels := dashboardQueries(t, "grafana/dashboards/plant-telemetry.json")
	var names []string
	for _, q := range append(slices.Clone(vars), panels...) {
		names = append(names, q.name)
	}
	if want := slices.Sorted(maps.Keys(wantPanels)); !slices.Equal(slices.Sorted(slices.Values(names)), want) {
		t.Fatalf("dashboard's ClickHouse queries are %q, test expects %q: update wantPanels", names, want)
	}

	srv := chtest.Start(t, chtest.Options{})
	major := serverMajor(t, srv)
	db := srv.Database(t)
	ddl, err := schemas.DDL("telemetry_wide", major)
	if err != nil {
		t.Fatal(err)
	}
	stmt, err := schemas.Retarget(ddl, db, "telemetry")
	if err != nil {
		t.Fatal(err)
	}
	srv.Exec(t, stmt)
	to := time.Now().UTC().Truncate(time.Second)
	rows := telemetryRows(to)
	srv.Exec(t, insertSQL(db, rows))
	iot := regexp.MustCompile(`\biot\.`)
	startOfInterval := hasStartOfInterval(t, srv)
	if !startOfInterval {
		t.Log("server lacks toStartOfInterval: $__timeInterval rounds the Unix time with intDiv")
	}

	selections := []struct {
		name  string
		sites []string // nil: All
	}{
		{name: "all"},
		{name: "one site", sites: []string{"o'hare"}},
	}
	for _, sel := range selections {
		t.Run(sel.name, func(t *testing.T) {
			env := grafanaEnv{from: to.Add(-dashRange), to: to, interval: dashInterval, vars: map[string][]string{},
				startOfInterval: startOfInterval}
			// The readings the panels should show: in range, of the
			// selected sites (lines are always All).
			var shown []reading
			for _, r := range rows {
				if !r.ts.Before(env.from) && (sel.sites == nil || slices.Contains(sel.sites, r.site)) {
					shown = append(shown, r)
				}
			}
			run := func(t *testing.T, q dashQuery) result {
				sql, err := env.expand(q.sql)
				if err != nil {
					t.Fatal(err)
				}
				r := queryJSON(t, srv, iot.ReplaceAllString(sql, db+"."))
				checkColumns(t, r, wantPanels[q.name])
				return r
			}
			for _, q := range vars {
				name := strings.TrimPrefix(q.name, "var:")
				t.Run(q.name, func(t *testing.T) {
					r := run(t, q)
					var got []string
					for _, row := range r.Data {
						got = append(got, row[name].(string))
					}
					env.vars[name] = got
					if name == "site" && sel.sites != nil {
						env.vars[name] = sel.sites
					}
				})
				if _, ok := env.vars[name]; !ok {
					t.Fatalf("variable %s has no values", name)
				}
			}
			wantSites, wantLines := []string{"o'hare", "plant1"}, []string{"l1", "l2"}
			if sel.sites != nil {
				wantSites, wantLines = sel.sites, []string{"l2"}
			}
			if !slices.Equal(env.vars["site"], wantSites) || !slices.Equal(env.vars["line"], wantLines) {
				t.Errorf("variables = %q, want sites %q and lines %q", env.vars, wantSites, wantLines)
			}
			for _, q := range panels {
				t.Run(q.name, func(t *testing.T) {
					checkPanel(t, env, run(t, q), wantPanels[q.name], shown)
				})
			}
		})
	}
}

// checkPanel checks a panel's rows against the readings it should show: a
// time series has one series per device (or line) with buckets aligned to
// the interval inside the range, and "rows" adds up to the readings; the
// table has each device's last state.
func checkPanel(t *testing.T, env grafanaEnv, r result, want []col, shown []reading) {
	t.Helper()
	if want[0].kind == kindTime {
		label, value := want[1].name, want[2].name
		wantLabels, gotLabels := map[string]bool{}, map[string]bool{}
		for _, s := range shown {
			wantLabels[map[string]string{"device": s.device, "line": s.line}[label]] = true
		}
		var total float64
		for _, row := range r.Data {
			ts := parseTime(t, row["time"])
			if ts.Before(env.from.Truncate(env.interval)) || ts.After(env.to) || ts.Unix()%int64(env.interval/time.Second) != 0 {
				t.Errorf("time %s is not a %s bucket in [%s, %s]", ts, env.interval, env.from, env.to)
			}
			gotLabels[row[label].(string)] = true
			if row[value] != nil {
				total += parseNumber(t, row[value])
			}
		}
		if !maps.Equal(gotLabels, wantLabels) {
			t.Errorf("series %v, want %v", slices.Sorted(maps.Keys(gotLabels)), slices.Sorted(maps.Keys(wantLabels)))
		}
		if total == 0 {
			t.Errorf("every %s is NULL or 0: %v", value, r.Data)
		}
		if value == "rows" && int(total) != len(shown) {
			t.Errorf("rows add up to %v, want %d readings", total, len(shown))
		}
		return
	}
	last := map[string]reading{}
	for _, s := range shown {
		if s.ts.After(last[s.device].ts) {
			last[s.device] = s
		}
	}
	if len(r.Data) != len(last) {
		t.Errorf("%d rows, want one per device (%d): %v", len(r.Data), len(last), r.Data)
	}
	for _, row := range r.Data {
		dev, _ := row["device"].(string)
		w, ok := last[dev]
		if !ok {
			t.Errorf("row for device %q, which shows no reading", dev)
			continue
		}
		if row["site"] != w.site || row["line"] != w.line || row["state"] != w.state || !parseTime(t, row["last_seen"]).Equal(w.ts) {
			t.Errorf("row %v, want site %s line %s state %s last_seen %s", row, w.site, w.line, w.state, w.ts)
		}
	}
}
