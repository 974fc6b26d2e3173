package clickhouse

import (
	"reflect"
	"testing"
)

// TestFastPaths checks each column type's fast path against the general
// conversion: the same tokens give the same values, and a token either
// path refuses is refused (with the general path's error).
func TestFastPaths(t *testing.T) {
	tokens := []string{
		`0`, `-1`, `255`, `256`, `-129`, `127`, `-128`, `4294967295`, `4294967296`, `9223372036854775807`,
		`123456789012345678`, `1234567890123456789`, `-0`, `007`, `1.5`, `-21.53`, `1e3`, `1.`, `.5`, `-`, `--1`,
		`123456789012345`, `1234567890123456`, `0.1234567890123456`, `true`, `false`, `null`,
		`"x"`, `""`, `"a\"b"`, `"h\u00e9"`, `"2024-05-01T12:00:00Z"`, `"2024-05-01T12:00:00.042Z"`, `"2024-05-01T23:59:59.999999999Z"`,
		`"2024-05-01T12:00:00.0420000001Z"`, `"2024-05-01T24:00:00Z"`, `"2024-05-01T12:60:00Z"`, `"2024-05-01T12:00:00.Z"`,
		`"2024-05-01T12:00:00+02:00"`, `"2024-05-01 12:00:00"`, `"2024-05-01"`, `"2024-05-02T00:00:01Z"`, `"2024-05-01t12:00:00z"`,
		`"1969-12-31T23:59:59Z"`, `"2106-02-07T06:28:15Z"`, `"2106-02-07T06:28:16Z"`, `"1899-12-31T23:59:59Z"`, `"2024-02-30T00:00:00Z"`,
		`"2024-05-01T1a:00:00Z"`, `1714564800`, `[1]`, `{"a":1}`,
	}
	types := []string{"Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64", "Float32", "Float64",
		"Bool", "String", "Nullable(String)", "Date", "DateTime", "DateTime('Europe/Berlin')", "DateTime64(3)", "Nullable(DateTime)"}
	for _, ts := range types {
		t.Run(ts, func(t *testing.T) {
			typ, err := parseType(ts)
			if err != nil {
				t.Fatal(err)
			}
			fast, slow := build(typ, false), build(typ, false)
			g, ok := slow.(interface{ general() bool })
			if !ok || !g.general() {
				t.Fatalf("%s has no fast path", ts)
			}
			// Twice, so that cached state (the last date) is exercised.
			for range 2 {
				for _, tok := range tokens {
					e1, e2 := &encoder{chunk: -1}, &encoder{chunk: -1}
					err1, err2 := fast.addToken([]byte(tok), e1), slow.addToken([]byte(tok), e2)
					if (err1 == nil) != (err2 == nil) || (err1 != nil && err1.Error() != err2.Error()) {
						t.Fatalf("%s: fast path error %v, general %v", tok, err1, err2)
					}
					if fast.len() != slow.len() {
						t.Fatalf("%s: fast path holds %d rows, general %d", tok, fast.len(), slow.len())
					}
				}
			}
			got, want := fast.slice(0, fast.len()), slow.slice(0, slow.len())
			if !reflect.DeepEqual(normalize(got), normalize(want)) {
				t.Fatalf("values\n%v\nwant\n%v", got, want)
			}
		})
	}
}

// general drops b's fast path; it reports whether there was one.
func (b *scalar[T]) general() bool {
	had := b.fast != nil
	b.fast = nil
	return had
}

// normalize turns times into Unix nanoseconds (time.Time values from
// different constructors differ in location only) and pointers into
// values.
func normalize(x any) any {
	v := reflect.ValueOf(x)
	out := make([]any, v.Len())
	for i := range out {
		e := v.Index(i)
		if e.Kind() == reflect.Pointer {
			if e.IsNil() {
				continue
			}
			e = e.Elem()
		}
		if t, ok := e.Interface().(interface{ UnixNano() int64 }); ok {
			out[i] = t.UnixNano()
			continue
		}
		out[i] = e.Interface()
	}
	return out
}

// TestDateTimeColumns writes DateTime columns (sent as Unix seconds),
// Nullable and in arrays, and reads them back.
func TestDateTimeColumns(t *testing.T) {
	srv := server(t)
	db, name := makeTable(t, srv, `(i UInt8, dt DateTime, dtn Nullable(DateTime), dtz DateTime('Asia/Tokyo'), dta Array(DateTime))
		ENGINE = MergeTree ORDER BY i`)
	s := newSink(t, srv, Config{Database: db, Table: name})
	if err := write(t, s, recs(
		`{"i":1,"dt":"2024-05-01T12:00:00.9Z","dtn":null,"dtz":"2024-05-01 21:00:00","dta":["2024-05-01T12:00:00Z",1714564801]}`,
		`{"i":2,"dt":1714564800,"dtn":"2024-05-01T14:00:00+02:00","dtz":"2024-05-01T12:00:00Z","dta":[]}`,
	)); err != nil {
		t.Fatal(err)
	}
	got := rows(t, srv, "SELECT i, toUnixTimestamp(dt), toUnixTimestamp(dtn), toUnixTimestamp(dtz), arrayMap(x -> toUnixTimestamp(x), dta) FROM "+db+"."+name+" ORDER BY i")
	want := []string{"1\t1714564800\t\\N\t1714564800\t[1714564800,1714564801]", "2\t1714564800\t1714564800\t1714564800\t[]"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows %q, want %q", got, want)
	}
}
