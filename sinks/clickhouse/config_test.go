package clickhouse

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := Config{Addresses: []string{"ch:9000"}, Table: "telemetry"}
	tests := []struct {
		name string
		cfg  Config
		want []string // error prefixes, in order
	}{
		{name: "minimal", cfg: ok},
		{name: "database.table", cfg: Config{Addresses: []string{"ch:9000"}, Table: "iot.telemetry"}},
		{name: "nothing", cfg: Config{}, want: []string{"addresses: ", "table: is required"}},
		{name: "bad address", cfg: Config{Addresses: []string{"ch"}, Table: "t"}, want: []string{"addresses[0]: want host:port"}},
		{name: "bad names", cfg: Config{Addresses: []string{"ch:9000"}, Database: "a-b", Table: "x;drop"}, want: []string{"database: invalid", "table: invalid"}},
		{name: "columns", cfg: Config{Addresses: []string{"ch:9000"}, Table: "t", Columns: map[string]string{"a": "$nope", "b": "x..y", "c": "", "d": "$topic", "e": "-", "f": "a.b"}},
			want: []string{`columns.a: unknown record property "$nope"`, `columns.b: invalid field path "x..y"`, "columns.c: empty mapping"}},
		{name: "create_table without ddl", cfg: Config{Addresses: []string{"ch:9000"}, Table: "t", CreateTable: true}, want: []string{"ddl: is required"}},
		{name: "compression", cfg: Config{Addresses: []string{"ch:9000"}, Table: "t", Compression: "brotli"}, want: []string{"compression: must be lz4, zstd or none"}},
		{name: "negatives", cfg: Config{Addresses: []string{"ch:9000"}, Table: "t", DialTimeout: -1, WriteTimeout: -1, MaxOpenConns: -1,
			Batch: BatchConfig{MaxRecords: -1, MaxBytes: -1, Linger: -time.Second}},
			want: []string{"dial_timeout:", "write_timeout:", "max_open_conns:", "batch.max_records:", "batch.max_bytes:", "batch.linger:"}},
		{name: "password reference", cfg: Config{Addresses: []string{"ch:9000"}, Table: "t", Password: "${1BAD}"}, want: []string{"password: "}},
		{name: "tls key without cert", cfg: Config{Addresses: []string{"ch:9000"}, Table: "t", TLS: TLSConfig{KeyFile: "k.pem"}}, want: []string{"tls.cert_file:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.cfg.Validate()
			if len(errs) != len(tt.want) {
				t.Fatalf("Validate() = %v, want %d errors %v", errs, len(tt.want), tt.want)
			}
			for i, err := range errs {
				if !strings.HasPrefix(err.Error(), tt.want[i]) {
					t.Errorf("error %d = %q, want prefix %q", i, err, tt.want[i])
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	s, err := New(Config{Addresses: []string{"127.0.0.1:1"}, Table: "t"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n, b, l := s.BatchOverride()
	if n != 50000 || b != 16<<20 || l != 500*time.Millisecond {
		t.Fatalf("BatchOverride() = %d, %d, %s; want the ClickHouse defaults", n, b, l)
	}
	if s.cfg.Database != "default" || s.cfg.Username != "default" || s.cfg.Compression != "lz4" || s.cfg.WriteTimeout != 30*time.Second {
		t.Fatalf("defaults not applied: %+v", s.cfg)
	}
	if _, err := New(Config{}, nil); err == nil || !strings.Contains(err.Error(), "addresses") {
		t.Fatalf("New(invalid) = %v, want the validation errors", err)
	}
	if _, err := New(Config{Addresses: []string{"h:1"}, Table: "t", Password: "${SLUICE_TEST_CH_UNSET}"}, nil); err == nil {
		t.Fatal("New with an unset password variable succeeded")
	}
}

func TestParseType(t *testing.T) {
	tests := []struct {
		in      string
		kind    kind
		null    bool
		lc      bool
		wantErr string
	}{
		{in: "UInt8", kind: kUInt8},
		{in: "Nullable(Float64)", kind: kFloat64, null: true},
		{in: "LowCardinality(Nullable(String))", kind: kString, null: true, lc: true},
		{in: "FixedString(16)", kind: kFixedString},
		{in: "DateTime('Europe/Berlin')", kind: kDateTime},
		{in: "DateTime64(3, 'UTC')", kind: kDateTime64},
		{in: "Enum8('a' = 1, 'b\\'c' = -2)", kind: kEnum8},
		{in: "Array(LowCardinality(String))", kind: kArray},
		{in: "Decimal(9, 2)", wantErr: "not supported"},
		{in: "Map(String, String)", wantErr: "not supported"},
		{in: "Array(Array(Int8))", wantErr: "arrays of arrays"},
		{in: "Nullable(Array(Int8))", wantErr: "Nullable(Array) is not supported"},
		{in: "DateTime('Mars/Olympus')", wantErr: "time zone"},
		{in: "FixedString(x)", wantErr: "invalid FixedString size"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			typ, err := parseType(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseType = %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if typ.kind != tt.kind || typ.nullable != tt.null || typ.lowCard != tt.lc || typ.name != tt.in {
				t.Fatalf("parseType = %+v", typ)
			}
		})
	}
	e, _ := parseType("Enum8('a' = 1, 'b\\'c' = -2)")
	if len(e.enum) != 2 || e.enum["a"] != 1 || e.enum["b'c"] != -2 {
		t.Fatalf("enum = %v", e.enum)
	}
}
