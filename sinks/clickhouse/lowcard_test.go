package clickhouse

import (
	"fmt"
	"slices"
	"testing"
)

// TestLowCardinality writes LowCardinality columns whose values repeat,
// with NULLs and a row that fails after them, and reads them back.
func TestLowCardinality(t *testing.T) {
	srv := server(t)
	db, name := makeTable(t, srv, `(i UInt32, lc LowCardinality(String), lcn LowCardinality(Nullable(String)), n UInt8)
		ENGINE = MergeTree ORDER BY i`)
	s := newSink(t, srv, Config{Database: db, Table: name})
	var batch []string
	for i := range 1000 {
		lcn := fmt.Sprintf("%q", []string{"a", "b"}[i%2])
		if i%3 == 0 {
			lcn = "null"
		}
		n := "1"
		if i%100 == 7 {
			n = `"x"` // fails after lc and lcn were converted
		}
		batch = append(batch, fmt.Sprintf(`{"i":%d,"lc":%q,"lcn":%s,"n":%s}`, i, []string{"red", "green", "blue"}[i%3], lcn, n))
	}
	if got := len(failures(t, write(t, s, recs(batch...)), len(batch))); got != 10 {
		t.Fatalf("%d rows failed, want 10", got)
	}
	got := rows(t, srv, fmt.Sprintf(`SELECT lc, ifNull(lcn, 'NULL'), count(), sum(i %% 3 = 0) FROM %s.%s GROUP BY lc, lcn ORDER BY lc, lcn`, db, name))
	// i%3: 0 red NULL, 1 green, 2 blue; i%2: a or b; rows with
	// i%100 == 7 left out.
	want := []string{"blue\ta\t167\t0", "blue\tb\t163\t0", "green\ta\t166\t0", "green\tb\t163\t0", "red\tNULL\t331\t331"}
	if !slices.Equal(got, want) {
		t.Fatalf("rows by value = %q, want %q", got, want)
	}
}

// TestLowCardInterning checks that equal values share one pointer and
// that truncate and reset keep the builder consistent.
func TestLowCardInterning(t *testing.T) {
	typ, err := parseType("LowCardinality(Nullable(String))")
	if err != nil {
		t.Fatal(err)
	}
	b, ok := newBuilder(typ).(*lowCard)
	if !ok {
		t.Fatalf("builder %T, want *lowCard", newBuilder(typ))
	}
	e := &encoder{chunk: -1}
	for _, tok := range []string{`"a"`, `"b"`, `null`, `"a"`, `"b"`} {
		if err := b.addToken([]byte(tok), e); err != nil {
			t.Fatal(err)
		}
	}
	p := b.slice(0, b.len()).([]*string)
	if p[0] != p[3] || p[1] != p[4] || p[0] == p[1] || p[2] != nil || *p[0] != "a" || *p[1] != "b" {
		t.Fatalf("pointers %v: want a and b shared, null nil", p)
	}
	b.truncate(2)
	if err := b.addToken([]byte(`"a"`), e); err != nil {
		t.Fatal(err)
	}
	if p := b.slice(0, b.len()).([]*string); len(p) != 3 || p[2] != p[0] || b.conv.len() != 3 {
		t.Fatalf("after truncate: %v (conv holds %d)", p, b.conv.len())
	}
	b.reset()
	if b.len() != 0 || len(b.intern) != 0 || b.conv.len() != 0 {
		t.Fatalf("after reset: %d values, %d interned", b.len(), len(b.intern))
	}
}
