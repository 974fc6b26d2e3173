package clickhouse

import (
	"fmt"
	"slices"
	"testing"
)

// TestParallelConvert writes a batch large enough to be converted on two
// goroutines: rows that do not convert and rows the server rejects, in
// both halves, fail alone; the others go in once, with LowCardinality
// values shared across the halves.
func TestParallelConvert(t *testing.T) {
	srv := server(t)
	db, name := makeTable(t, srv, `(v Int32, lc LowCardinality(String), chk UInt8 MATERIALIZED throwIf(v = 1300 OR v = 17000))
		ENGINE = MergeTree ORDER BY v`)
	s := newSink(t, srv, Config{Database: db, Table: name})
	const n = 3 * parallelMin
	var values []string
	for i := range n {
		v := fmt.Sprint(i)
		if i == 5 || i == n-5 {
			v = `"bad"`
		}
		values = append(values, fmt.Sprintf(`{"v":%s,"lc":"c%d"}`, v, i%7))
	}
	failed := failures(t, write(t, s, recs(values...)), n)
	var idx []int
	for i := range failed {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	if want := []int{5, 1300, 17000, n - 5}; !slices.Equal(idx, want) {
		t.Fatalf("failed rows %v, want %v", idx, want)
	}
	got := rows(t, srv, fmt.Sprintf("SELECT count(), uniqExact(v), uniqExact(lc), countIf(lc != concat('c', toString(v %% 7))) FROM %s.%s", db, name))
	if want := fmt.Sprintf("%d\t%d\t7\t0", n-4, n-4); len(got) != 1 || got[0] != want {
		t.Fatalf("count, distinct v, distinct lc, wrong lc = %q, want %q", got, want)
	}
}

// TestAdopt checks that after a parallel conversion equal LowCardinality
// values of both halves share one pointer.
func TestAdopt(t *testing.T) {
	tbl, err := plan("db", "t", []tableColumn{{"lc", "LowCardinality(String)", ""}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, b := tbl.encoder(), tbl.encoder()
	defer a.release()
	defer b.release()
	a.convert(recs(`{"lc":"x"}`, `{"lc":"y"}`), nil, 0, 2)
	b.convert(recs(`{"lc":"y"}`, `{"lc":"z"}`, `{"lc":"x"}`), nil, 0, 3)
	a.adopt(b)
	pa := a.builders[0].slice(0, 2).([]*string)
	pb := b.builders[0].slice(0, 3).([]*string)
	if pb[0] != pa[1] || pb[2] != pa[0] || *pb[1] != "z" || a.builders[0].(*lowCard).intern["z"] != pb[1] {
		t.Fatalf("pointers a %v, b %v: want y and x shared, z adopted", pa, pb)
	}
}
