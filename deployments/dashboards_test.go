package deployments

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// metricName finds Sluice metric names in PromQL.
var metricName = regexp.MustCompile(`\bsluice_[a-z0-9_]+`)

// quotedMetric finds metric names declared in Go source.
var quotedMetric = regexp.MustCompile(`"(sluice_[a-z0-9_]+)"`)

// codeMetrics returns the sluice_* names quoted in the module's non-test
// Go files: every metric Sluice can export.
func codeMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "deployments") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range quotedMetric.FindAllStringSubmatch(string(data), -1) {
			names[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// collect appends every string value under key anywhere in v.
func collect(v any, key string, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if s, ok := e.(string); ok && k == key {
				*out = append(*out, s)
			}
			collect(e, key, out)
		}
	case []any:
		for _, e := range v {
			collect(e, key, out)
		}
	}
}

// provisionedUIDs returns the datasource uids Grafana is provisioned with.
func provisionedUIDs(t *testing.T) map[string]bool {
	t.Helper()
	var uids []string
	for _, doc := range decodeAll(t, "grafana/provisioning/datasources/datasources.yaml") {
		collect(doc, "uid", &uids)
	}
	set := map[string]bool{}
	for _, u := range uids {
		set[u] = true
	}
	return set
}

func TestDashboards(t *testing.T) {
	known := codeMetrics(t)
	if !known["sluice_ingest_received_total"] {
		t.Fatalf("found %d metric names in the code, not sluice_ingest_received_total", len(known))
	}
	uids := provisionedUIDs(t)
	ddl, err := os.ReadFile("../schemas/clickhouse/telemetry_wide.sql")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		file      string
		queryKey  string // "expr" (Prometheus) or "rawSql" (ClickHouse)
		minQuery  int
		wantTable string
	}{
		{file: "sluice-health.json", queryKey: "expr", minQuery: 10},
		{file: "plant-telemetry.json", queryKey: "rawSql", minQuery: 5, wantTable: "iot.telemetry"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("grafana/dashboards", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var dash map[string]any
			if err := json.Unmarshal(data, &dash); err != nil {
				t.Fatalf("%s: %v", tt.file, err)
			}
			var queries, refs []string
			collect(dash, tt.queryKey, &queries)
			collect(dash, "uid", &refs)
			if len(queries) < tt.minQuery {
				t.Fatalf("%d %s queries, want at least %d", len(queries), tt.queryKey, tt.minQuery)
			}
			for _, uid := range refs {
				if uid != dash["uid"] && !uids[uid] {
					t.Errorf("datasource uid %q is not provisioned (have %v)", uid, uids)
				}
			}
			for _, q := range queries {
				for _, m := range metricName.FindAllString(q, -1) {
					base := m
					for _, suffix := range []string{"_bucket", "_sum", "_count"} {
						if b, ok := strings.CutSuffix(m, suffix); ok && known[b] {
							base = b
						}
					}
					if !known[base] {
						t.Errorf("query %q uses %s, which no Go file declares", q, m)
					}
				}
				if tt.queryKey == "expr" && !metricName.MatchString(q) {
					t.Errorf("query %q uses no sluice_ metric", q)
				}
				if tt.wantTable != "" {
					if !strings.Contains(q, tt.wantTable) {
						t.Errorf("query %q does not read %s", q, tt.wantTable)
					}
					for _, col := range sqlColumns(q) {
						if !regexp.MustCompile(`(?m)^\s+` + col + `\s`).Match(ddl) {
							t.Errorf("query %q uses column %s, not in telemetry_wide.sql", q, col)
						}
					}
				}
			}
		})
	}
}

// sqlColumn finds column names used as aggregate arguments, in GROUP BY
// or in filters of the telemetry dashboard's queries.
var sqlColumn = regexp.MustCompile(`(?:avg|max|min|sum|argMax)\((\w+)|\b(\w+) IN \(|DISTINCT (\w+)`)

func sqlColumns(q string) []string {
	var cols []string
	for _, m := range sqlColumn.FindAllStringSubmatch(q, -1) {
		for _, c := range m[1:] {
			if c != "" {
				cols = append(cols, c)
			}
		}
	}
	return cols
}

// TestSystemdUnit runs systemd-analyze verify on the unit, with its
// binary path pointed at a freshly built sluice (verify checks that the
// executables exist).
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	unit, err := os.ReadFile("systemd/sluice.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ProtectSystem=strict", "StateDirectory=sluice", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n", "TimeoutStopSec=", "Restart=on-failure"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("unit lacks %q", want)
		}
	}
	path := filepath.Join(t.TempDir(), "sluice.service")
	text := strings.ReplaceAll(string(unit), "/usr/local/bin/sluice", sluiceBinary(t))
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
