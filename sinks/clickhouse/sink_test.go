package clickhouse

import (
	"fmt"
	"strings"
	"testing"
)

// TestTypes writes every supported column type and reads the rows back.
func TestTypes(t *testing.T) {
	srv := server(t)
	db, name := makeTable(t, srv, `(
		i8 Int8, i16 Int16, i32 Int32, i64 Int64,
		u8 UInt8, u16 UInt16, u32 UInt32, u64 UInt64,
		f32 Float32, f64 Float64,
		s String, fs FixedString(4), lc LowCardinality(String), lcn LowCardinality(Nullable(String)),
		d Date, dt DateTime, dtz DateTime('Europe/Berlin'),
		id UUID, e8 Enum8('off' = 0, 'on' = 1), e16 Enum16('a' = -300, 'b' = 300),
		n Nullable(Float64), ns Nullable(String),
		arr Array(Float64), sarr Array(String),
		obj String
	) ENGINE = MergeTree ORDER BY i8`)
	s := newSink(t, srv, Config{Database: db, Table: name})
	batch := recs(
		`{"i8":-128,"i16":-32768,"i32":-2147483648,"i64":-9223372036854775808,
		  "u8":255,"u16":65535,"u32":4294967295,"u64":18446744073709551615,
		  "f32":1.5,"f64":-2.25e-3,"s":"h\u00e9llo \"q\"\n","fs":"ab","lc":"x","lcn":null,
		  "d":"2024-05-01","dt":"2024-05-01T12:00:00Z","dtz":"2024-05-01 14:00:00",
		  "id":"123e4567-e89b-12d3-a456-426614174000","e8":"on","e16":300,
		  "n":null,"ns":"set","arr":[1,2.5,-3],"sarr":["a","b"],"obj":{"k":[1,{"z":null}]}}`,
		`{"i8":1,"i16":2,"i32":3,"i64":4,"u8":5,"u16":6,"u32":7,"u64":8,"f32":0,"f64":1e3,
		  "s":"","fs":"abcd","lc":"y","lcn":"z","d":"2024-05-02T23:00:00-02:00","dt":1714564800123,"dtz":1714564800,
		  "id":"00000000-0000-0000-0000-000000000000","e8":0,"e16":"a","arr":[],"obj":"plain"}`,
	)
	if err := write(t, s, batch); err != nil {
		t.Fatalf("Write = %v", err)
	}
	got := rows(t, srv, fmt.Sprintf(`SELECT i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, s, fs, lc, lcn,
		d, toUnixTimestamp(dt), toUnixTimestamp(dtz), id, e8, e16, n, ns, arr, sarr, obj FROM %s.%s ORDER BY i8`, db, name))
	want := []string{
		strings.Join([]string{"-128", "-32768", "-2147483648", "-9223372036854775808", "255", "65535", "4294967295", "18446744073709551615",
			"1.5", "-0.00225", `h\xc3\xa9llo "q"\n`, `ab\0\0`, "x", `\N`,
			"2024-05-01", "1714564800", "1714564800", "123e4567-e89b-12d3-a456-426614174000", "on", "b", `\N`, "set",
			"[1,2.5,-3]", "['a','b']", `{"k":[1,{"z":null}]}`}, "\t"),
		strings.Join([]string{"1", "2", "3", "4", "5", "6", "7", "8",
			"0", "1000", "", "abcd", "y", "z",
			"2024-05-03", "1714564800", "1714564800", "00000000-0000-0000-0000-000000000000", "off", "a", `\N`, `\N`,
			"[]", "[]", "plain"}, "\t"),
	}
	// TSV escapes non-ASCII bytes nowhere; compare with the é unescaped.
	want[0] = strings.Replace(want[0], `h\xc3\xa9llo`, "h\u00e9llo", 1)
	if len(got) != len(want) {
		t.Fatalf("read %d rows, want %d: %q", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
}
