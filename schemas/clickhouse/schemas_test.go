package clickhouse

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/chtest"
)

func TestNames(t *testing.T) {
	if got, want := Names(), []string{"metrics", "telemetry_wide"}; !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
}

func TestDDL(t *testing.T) {
	file := filepath.Join(t.TempDir(), "mine.sql")
	if err := os.WriteFile(file, []byte("CREATE TABLE x (a UInt8) ENGINE = Memory"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref     string
		major   int
		want    string // substring
		wantErr string
	}{
		{ref: "metrics", major: 24, want: "CODEC(Gorilla"},
		{ref: "metrics", major: 18, want: "before 20.1"},
		{ref: "telemetry_wide", major: 20, want: "DateTime64(3, 'UTC')"},
		{ref: "telemetry_wide", major: 19, want: "    ts          DateTime,"},
		{ref: file, major: 18, want: "(a UInt8)"},
		{ref: "nope", wantErr: `unknown schema "nope" (shipped: metrics, telemetry_wide`},
		{ref: "missing.sql", wantErr: "reading ddl file"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.ref), func(t *testing.T) {
			got, err := DDL(tt.ref, tt.major)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("DDL = %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !strings.Contains(got, tt.want) {
				t.Fatalf("DDL = %q, %v; want it to contain %q", got, err, tt.want)
			}
		})
	}
}

func TestRetarget(t *testing.T) {
	tests := []struct {
		name, in, want, wantErr string
	}{
		{name: "plain", in: "CREATE TABLE t (a UInt8) ENGINE = Memory;\n", want: "CREATE TABLE IF NOT EXISTS db.x (a UInt8) ENGINE = Memory"},
		{name: "comments and if not exists", in: "-- c; d\n-- e\ncreate table if not exists other.t\n(a String DEFAULT 'a;b') ENGINE = Memory",
			want: "-- c; d\n-- e\nCREATE TABLE IF NOT EXISTS db.x\n(a String DEFAULT 'a;b') ENGINE = Memory"},
		{name: "quoted name", in: "CREATE TABLE `my table` (a UInt8) ENGINE = Memory", want: "CREATE TABLE IF NOT EXISTS db.x (a UInt8) ENGINE = Memory"},
		{name: "not a create", in: "DROP TABLE t", wantErr: "does not start with CREATE TABLE"},
		{name: "two statements", in: "CREATE TABLE t (a UInt8) ENGINE = Memory; DROP TABLE u;", wantErr: "more than one statement"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Retarget(tt.in, "db", "x")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Retarget = %q, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Retarget = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestCreateOnServer runs the schemas the test server takes (the compat
// variants on a server before 20.1, the current ones otherwise) and
// checks the tables' columns.
func TestCreateOnServer(t *testing.T) {
	srv := chtest.Start(t, chtest.Options{})
	major := 0
	for _, c := range srv.Exec(t, "SELECT version()") {
		if c < '0' || c > '9' {
			break
		}
		major = major*10 + int(c-'0')
	}
	db := srv.Database(t)
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			ddl, err := DDL(name, major)
			if err != nil {
				t.Fatal(err)
			}
			stmt, err := Retarget(ddl, db, name)
			if err != nil {
				t.Fatal(err)
			}
			srv.Exec(t, stmt)
			srv.Exec(t, stmt) // IF NOT EXISTS: a second run is harmless
			cols := srv.Exec(t, "SELECT name FROM system.columns WHERE database = '"+db+"' AND table = '"+name+"' FORMAT TSV")
			for _, want := range []string{"ts", "device"} {
				if !slices.Contains(strings.Fields(cols), want) {
					t.Fatalf("table %s has columns %q, want %s", name, cols, want)
				}
			}
		})
	}
}
