package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sinks"
)

// TestBadRows writes one batch mixing good rows with every kind of bad
// input: each bad row fails alone, permanently, naming its column and
// why; the good rows are in the table.
func TestBadRows(t *testing.T) {
	srv := server(t)
	db, name := makeTable(t, srv, `(
		ts DateTime, device FixedString(8), temp Float64, n Nullable(Int32), code UInt8, f32 Float32
	) ENGINE = MergeTree ORDER BY ts`)
	s := newSink(t, srv, Config{Database: db, Table: name})
	good := func(ts string) string {
		return fmt.Sprintf(`{"ts":%q,"device":"press-01","temp":21.5,"n":null,"code":1,"f32":1}`, ts)
	}
	tests := []struct {
		name, value string
		want        string // "" for a good row, else a substring of the error
	}{
		{"good", good("2024-05-01T12:00:00Z"), ""},
		{"wrong type", `{"ts":"2024-05-01T12:00:00Z","device":"d","temp":"hot","code":1,"f32":1}`, `column temp (Float64): want a number for Float64, got string "hot"`},
		{"missing field", `{"ts":"2024-05-01T12:00:00Z","device":"d","code":1,"f32":1}`, "column temp (Float64): field missing"},
		{"null in a non-Nullable column", `{"ts":"2024-05-01T12:00:00Z","device":"d","temp":null,"code":1,"f32":1}`, "column temp (Float64): null in a column that is not Nullable"},
		{"NaN is not JSON", `{"ts":"2024-05-01T12:00:00Z","device":"d","temp":NaN,"code":1,"f32":1}`, "value is not a JSON object: invalid character 'N'"},
		{"Infinity as a string", `{"ts":"2024-05-01T12:00:00Z","device":"d","temp":"Infinity","code":1,"f32":1}`, `want a number for Float64, got string "Infinity"`},
		{"number beyond Float64", `{"ts":"2024-05-01T12:00:00Z","device":"d","temp":1e400,"code":1,"f32":1}`, "1e400 is out of range for Float64"},
		{"number beyond Float32", `{"ts":"2024-05-01T12:00:00Z","device":"d","temp":1,"code":1,"f32":1e39}`, "column f32 (Float32): 1e39 is out of range for Float32"},
		{"string too long for FixedString", `{"ts":"2024-05-01T12:00:00Z","device":"press-0001","temp":1,"code":1,"f32":1}`, "column device (FixedString(8)): 10 bytes do not fit in FixedString(8)"},
		{"timestamp before DateTime", `{"ts":"1969-12-31T23:59:59Z","device":"d","temp":1,"code":1,"f32":1}`, "column ts (DateTime): 1969-12-31T23:59:59Z is out of range for DateTime"},
		{"timestamp after DateTime", `{"ts":"2106-02-08T00:00:00Z","device":"d","temp":1,"code":1,"f32":1}`, "is out of range for DateTime"},
		{"timestamp not a time", `{"ts":"yesterday","device":"d","temp":1,"code":1,"f32":1}`, `column ts (DateTime): want a time for DateTime, got string "yesterday"`},
		{"integer out of range", `{"ts":"2024-05-01T12:00:00Z","device":"d","temp":1,"code":256,"f32":1}`, "column code (UInt8): 256 is out of range for UInt8"},
		{"negative unsigned", `{"ts":"2024-05-01T12:00:00Z","device":"d","temp":1,"code":-1,"f32":1}`, "-1 is out of range for UInt8"},
		{"fraction in an integer", `{"ts":"2024-05-01T12:00:00Z","device":"d","temp":1,"code":1.5,"f32":1}`, "1.5 is not an integer"},
		{"not JSON", `plain text`, "value is not a JSON object"},
		{"truncated JSON", `{"ts":"2024-05-01T12:00:00Z","temp":1`, "value is not a JSON object"},
		{"an array, not an object", `[1,2]`, "value is not a JSON object"},
		{"good with Nullable set", `{"ts":"2024-05-01T12:00:01Z","device":"d","temp":-4,"n":-7,"code":0,"f32":-0.5}`, ""},
	}
	batch := make([]sinks.Record, len(tests))
	for i, tt := range tests {
		batch[i] = rec(tt.value)
	}
	failed := failures(t, write(t, s, batch), len(batch))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err, bad := failed[i]
			switch {
			case tt.want == "" && bad:
				t.Fatalf("good row failed: %v", err)
			case tt.want != "" && !bad:
				t.Fatal("bad row was accepted")
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q, want it to contain %q", err, tt.want)
			case bad && !sinks.IsPermanent(err):
				t.Fatalf("row error %q is not permanent", err)
			}
		})
	}
	got := rows(t, srv, fmt.Sprintf("SELECT toUnixTimestamp(ts), device, temp, n, code, f32 FROM %s.%s ORDER BY ts", db, name))
	want := []string{"1714564800\tpress-01\t21.5\t\\N\t1\t1", "1714564801\td\\0\\0\\0\\0\\0\\0\\0\t-4\t-7\t0\t-0.5"}
	if !slices.Equal(got, want) {
		t.Fatalf("table holds %q, want %q", got, want)
	}
}

// TestServerRejects checks that a batch the server rejects as a whole is
// split until the rows it rejects are found: they fail permanently, the
// rest are inserted exactly once.
func TestServerRejects(t *testing.T) {
	srv := server(t)
	db, name := makeTable(t, srv, `(v Int32, chk UInt8 MATERIALIZED throwIf(v = 13 OR v = 77)) ENGINE = MergeTree ORDER BY v`)
	s := newSink(t, srv, Config{Database: db, Table: name})
	var batch []sinks.Record
	for i := 0; i < 100; i++ {
		batch = append(batch, rec(fmt.Sprintf(`{"v":%d}`, i)))
	}
	failed := failures(t, write(t, s, batch), len(batch))
	if len(failed) != 2 || failed[13] == nil || failed[77] == nil {
		t.Fatalf("failures = %v, want rows 13 and 77", failed)
	}
	for _, err := range failed {
		if !strings.Contains(err.Error(), "server rejected the row") || !strings.Contains(err.Error(), "throwIf") || !sinks.IsPermanent(err) {
			t.Fatalf("row error %q, want a permanent rejection quoting the server's throwIf", err)
		}
	}
	got := rows(t, srv, fmt.Sprintf("SELECT count(), uniqExact(v), sum(v) FROM %s.%s", db, name))
	if want := fmt.Sprintf("98\t98\t%d", 99*100/2-13-77); len(got) != 1 || got[0] != want {
		t.Fatalf("table holds count, distinct, sum = %q, want %q", got, want)
	}
}

// TestConfigErrors checks that Connect refuses a mapping that does not
// fit the table, naming the column and the types.
func TestConfigErrors(t *testing.T) {
	srv := server(t)
	db, name := makeTable(t, srv, `(
		ts DateTime, n UInt8, price Decimal(9, 2), total UInt64 MATERIALIZED n * 2, tags Array(String), s String DEFAULT 'x'
	) ENGINE = MergeTree ORDER BY ts`)
	tests := []struct {
		name    string
		table   string
		columns map[string]string
		want    []string
	}{
		{name: "unsupported type", want: []string{"column price: type Decimal(9, 2): not supported by the clickhouse sink (map it to - to leave it to ClickHouse)"}},
		{name: "fits", columns: map[string]string{"price": "-"}},
		{name: "unknown column", columns: map[string]string{"price": "-", "nope": "x"}, want: []string{"columns.nope: the table has no column nope"}},
		{name: "materialized column", columns: map[string]string{"price": "-", "total": "n"}, want: []string{"columns.total: column total is MATERIALIZED and cannot be written"}},
		{name: "property the type cannot hold", columns: map[string]string{"price": "-", "n": "$received_at", "tags": "$topic"},
			want: []string{"column n: type UInt8 cannot hold $received_at (a time)", "column tags: type Array(String) cannot hold $topic (a string)"}},
		{name: "unknown table", table: "nope", want: []string{"table: does not exist"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Addresses: []string{srv.Addr()}, Database: db, Table: name, Columns: tt.columns}
			if tt.table != "" {
				cfg.Table = tt.table
			}
			s, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err = s.Connect(ctx)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Connect = %v", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("Connect = %v, want a *ConfigError", err)
			}
			if !slices.Equal(ce.Problems, tt.want) && !(len(ce.Problems) == 1 && strings.HasPrefix(ce.Problems[0], tt.want[0])) {
				t.Fatalf("problems = %q, want %q", ce.Problems, tt.want)
			}
		})
	}
}
