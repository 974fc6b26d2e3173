package clickhouse

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sinks"
)

// TestTableChanges checks the sink against a table changed while it
// runs: dropped (its rows are dead-lettered, never lost in a retry loop,
// or with create_table the table is created again), a mapped column
// dropped, and records whose rule names another table.
func TestTableChanges(t *testing.T) {
	srv := server(t)
	const ddl = "(ts DateTime, device String, temp Nullable(Float64)) ENGINE = MergeTree ORDER BY ts"
	row := `{"ts":"2024-05-01T12:00:00Z","device":"d","temp":1.5}`

	t.Run("dropped table", func(t *testing.T) {
		db, name := makeTable(t, srv, ddl)
		s := newSink(t, srv, Config{Database: db, Table: name})
		if err := write(t, s, recs(row)); err != nil {
			t.Fatal(err)
		}
		srv.Exec(t, "DROP TABLE "+db+"."+name)
		err := write(t, s, recs(row, row))
		if !sinks.IsPermanent(err) || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("Write into a dropped table = %v, want a permanent error saying it does not exist", err)
		}
		srv.Exec(t, fmt.Sprintf("CREATE TABLE %s.%s %s", db, name, ddl))
		if err := write(t, s, recs(row)); err != nil {
			t.Fatalf("Write after the table is back = %v", err)
		}
	})

	t.Run("dropped table created again", func(t *testing.T) {
		db := srv.Database(t)
		s := newSink(t, srv, Config{Database: db, Table: "metrics", CreateTable: true, DDL: "metrics"})
		m := `{"ts":"2024-05-01T12:00:00Z","device":"d","metric":"temp","value":1.5,"tags":{"line":"3"}}`
		if err := write(t, s, recs(m)); err != nil {
			t.Fatal(err)
		}
		srv.Exec(t, "DROP TABLE "+db+".metrics")
		if err := write(t, s, recs(m)); err != nil {
			t.Fatalf("Write after the table was dropped = %v, want it created again", err)
		}
		got := rows(t, srv, "SELECT device, metric, value, tags FROM "+db+".metrics")
		if want := []string{`d	temp	1.5	{"line":"3"}`}; !slices.Equal(got, want) {
			t.Fatalf("rows = %q, want %q", got, want)
		}
	})

	t.Run("dropped column", func(t *testing.T) {
		db, name := makeTable(t, srv, ddl)
		s := newSink(t, srv, Config{Database: db, Table: name})
		srv.Exec(t, "ALTER TABLE "+db+"."+name+" DROP COLUMN temp")
		if err := write(t, s, recs(row)); err != nil {
			t.Fatalf("Write after a column was dropped = %v, want the table read again", err)
		}
		if got := rows(t, srv, "SELECT device FROM "+db+"."+name); !slices.Equal(got, []string{"d"}) {
			t.Fatalf("rows = %q", got)
		}
	})

	t.Run("tables named by the rule", func(t *testing.T) {
		db, name := makeTable(t, srv, ddl)
		srv.Exec(t, fmt.Sprintf("CREATE TABLE %s.other %s", db, ddl))
		s := newSink(t, srv, Config{Database: db, Table: name})
		batch := recs(row, row, row, row)
		batch[1].Topic = "other"
		batch[2].Topic = db + ".other"
		batch[3].Topic = "missing"
		failed := failures(t, write(t, s, batch), len(batch))
		if len(failed) != 1 || !sinks.IsPermanent(failed[3]) || !strings.Contains(failed[3].Error(), "missing does not exist") {
			t.Fatalf("failures = %v, want only the record for a missing table, permanently", failed)
		}
		if got := rows(t, srv, fmt.Sprintf("SELECT (SELECT count() FROM %[1]s.%[2]s), (SELECT count() FROM %[1]s.other)", db, name)); !slices.Equal(got, []string{"1\t2"}) {
			t.Fatalf("counts = %q, want 1 and 2", got)
		}
	})
}

// TestCreateTable creates the shipped schemas (their compat variants on
// the test server) and a .sql file, and writes the example rows.
func TestCreateTable(t *testing.T) {
	srv := server(t)
	file := filepath.Join(t.TempDir(), "events.sql")
	if err := os.WriteFile(file, []byte("-- events\nCREATE TABLE whatever.events (ts DateTime, msg String) ENGINE = MergeTree ORDER BY ts;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ddl, table, value, query, want string
	}{
		{"telemetry_wide", "telemetry",
			`{"ts":"2024-05-01T12:00:00.250Z","site":"berlin","line":"3","device":"press-07","temperature":85.5,"rpm":1200,"state":"running"}`,
			"SELECT ts, site, line, device, temperature, pressure, rpm, state FROM %s", "2024-05-01 12:00:00\tberlin\t3\tpress-07\t85.5\t\\N\t1200\trunning"},
		{"metrics", "m",
			`{"ts":1714564800250,"device":"press-07","metric":"temperature","value":85.5,"tags":{"line":"3"}}`,
			"SELECT ts, device, metric, value, tags FROM %s", "2024-05-01 12:00:00\tpress-07\ttemperature\t85.5\t{\"line\":\"3\"}"},
		{file, "ev", `{"ts":"2024-05-01T12:00:00Z","msg":"hi"}`, "SELECT ts, msg FROM %s", "2024-05-01 12:00:00\thi"},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.ddl), func(t *testing.T) {
			db := srv.Database(t)
			s := newSink(t, srv, Config{Database: db, Table: tt.table, CreateTable: true, DDL: tt.ddl})
			if err := write(t, s, recs(tt.value)); err != nil {
				t.Fatal(err)
			}
			if got := rows(t, srv, fmt.Sprintf(tt.query, db+"."+tt.table)); !slices.Equal(got, []string{tt.want}) {
				t.Fatalf("rows = %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("unknown schema", func(t *testing.T) {
		s, err := New(Config{Addresses: []string{srv.Addr()}, Database: srv.Database(t), Table: "x", CreateTable: true, DDL: "nope"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Connect(ctx); err == nil || !strings.Contains(err.Error(), `unknown schema "nope"`) {
			t.Fatalf("Connect = %v, want an unknown schema error", err)
		}
	})
}

// TestHang checks that a server that stops answering fails a write by
// write_timeout, retryably, however the caller's context is set, and
// that writes succeed once it answers again.
func TestHang(t *testing.T) {
	srv := server(t)
	db, name := makeTable(t, srv, "(v Int32) ENGINE = MergeTree ORDER BY v")
	s := newSink(t, srv, Config{Database: db, Table: name, WriteTimeout: time.Second, DialTimeout: time.Second})
	if err := write(t, s, recs(`{"v":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := s.Write(context.Background(), recs(`{"v":2}`))
	took := time.Since(start)
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	if err == nil || sinks.IsPermanent(err) {
		t.Fatalf("Write to a hung server = %v, want a retryable error", err)
	}
	if took > 5*time.Second {
		t.Fatalf("Write to a hung server took %s with a 1s write_timeout", took)
	}
	if err := write(t, s, recs(`{"v":2}`)); err != nil {
		t.Fatalf("Write after the server resumed = %v", err)
	}
	if got := rows(t, srv, "SELECT v FROM "+db+"."+name+" ORDER BY v"); !slices.Equal(got, []string{"1", "2"}) {
		t.Fatalf("rows = %q, want 1 and 2", got)
	}
}
