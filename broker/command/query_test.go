package command

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestListReadsYourWrites lists commands stored, in memory only (accepted
// a moment ago, not yet written) and in both (changed since written):
// newest first, each once with its newest state, limit applied across
// both sources.
func TestListReadsYourWrites(t *testing.T) {
	s, err := New(func() Config { c := DefaultConfig(); c.Enabled = true; c.Dir = t.TempDir(); return c }(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.db, err = openDB(s.cfg.Dir); err != nil {
		t.Fatal(err)
	}
	defer s.db.close()
	t0 := time.Now()
	rec := func(i int, st State) *record {
		r := &record{Cmd: Command{ID: fmt.Sprint("c", i), Device: "d"}}
		r.Status = Status{ID: r.Cmd.ID, Device: "d", State: st, CreatedAt: t0.Add(time.Duration(i) * time.Millisecond)}
		return r
	}
	// c0-c3 stored; c1 delivered since (in memory); c4, c5 only in memory.
	b := &batch{}
	for i := range 4 {
		b.recs = append(b.recs, *rec(i, Queued))
		b.created = append(b.created, true)
	}
	if err := s.db.write(b); err != nil {
		t.Fatal(err)
	}
	s.live["c1"] = rec(1, Delivered)
	s.live["c4"] = rec(4, Accepted)
	s.live["c5"] = rec(5, Accepted)
	cases := []struct {
		name  string
		state State
		limit int
		want  []string
	}{
		{"all", "", 10, []string{"c5", "c4", "c3", "c2", "c1", "c0"}},
		{"limit", "", 3, []string{"c5", "c4", "c3"}},
		{"newest state from memory", Delivered, 10, []string{"c1"}},
		{"stale stored state not listed", Queued, 10, []string{"c3", "c2", "c0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := s.List(func(st *Status) bool { return c.state == "" || st.State == c.state }, c.limit)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, st := range out {
				ids = append(ids, st.ID)
			}
			if !slices.Equal(ids, c.want) {
				t.Errorf("listed %v, want %v", ids, c.want)
			}
		})
	}
}
