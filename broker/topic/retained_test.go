package topic

import (
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
)

// matched collects the topics Retained.Match visits, sorted.
func matched(r *Retained[int], filter string) []string {
	var out []string
	r.Match(filter, func(topic string, _ int) bool {
		out = append(out, topic)
		return true
	})
	sort.Strings(out)
	return out
}

func TestRetainedMatchSpec(t *testing.T) {
	for _, tt := range matchCases {
		t.Run(tt.name, func(t *testing.T) {
			var r Retained[int]
			if ValidName([]byte(tt.topic)) {
				r.Set(tt.topic, 1)
			}
			got := matched(&r, tt.filter)
			if (len(got) == 1) != tt.want || len(got) > 1 {
				t.Errorf("Retained.Match(%q) with topic %q = %v, want match=%v", tt.filter, tt.topic, got, tt.want)
			}
		})
	}
}

func TestRetainedMatch(t *testing.T) {
	r := NewRetained[int]()
	topics := []string{"a", "a/b", "a/b/c", "a/c", "a/", "/", "/a", "b/b", "$SYS/x", "$SYS", "x/$y"}
	for i, tp := range topics {
		r.Set(tp, i)
	}
	tests := []struct {
		filter string
		want   []string
	}{
		{"#", []string{"/", "/a", "a", "a/", "a/b", "a/b/c", "a/c", "b/b", "x/$y"}},
		{"a/#", []string{"a", "a/", "a/b", "a/b/c", "a/c"}},
		{"a/+", []string{"a/", "a/b", "a/c"}},
		{"+/b", []string{"a/b", "b/b"}},
		{"+", []string{"a"}},
		{"+/+", []string{"/", "/a", "a/", "a/b", "a/c", "b/b", "x/$y"}},
		{"+/#", []string{"/", "/a", "a", "a/", "a/b", "a/b/c", "a/c", "b/b", "x/$y"}},
		{"$SYS/#", []string{"$SYS", "$SYS/x"}},
		{"$SYS/+", []string{"$SYS/x"}},
		{"a/b/c/#", []string{"a/b/c"}},
		{"a/b/c/+", nil},
		{"nope/#", nil},
		{"a#", nil},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			if got := matched(r, tt.filter); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Match(%q) = %v, want %v", tt.filter, got, tt.want)
			}
			for _, tp := range tt.want {
				if !Match(tt.filter, tp) {
					t.Errorf("reference Match(%q, %q) = false", tt.filter, tp)
				}
			}
		})
	}
	t.Run("stops when fn returns false", func(t *testing.T) {
		calls := 0
		r.Match("#", func(string, int) bool { calls++; return false })
		if calls != 1 {
			t.Errorf("fn called %d times, want 1", calls)
		}
		calls = 0
		r.All(func(string, int) bool { calls++; return calls < 3 })
		if calls != 3 {
			t.Errorf("All called fn %d times, want 3", calls)
		}
	})
}

func TestRetainedSetGetDelete(t *testing.T) {
	var r Retained[string]
	r.Set("a/b", "1")
	r.Set("a/b", "2")
	r.Set("a", "3")
	r.Set("a/b/c", "4")
	if r.Len() != 3 {
		t.Fatalf("Len = %d, want 3", r.Len())
	}
	tests := []struct {
		name   string
		op     func()
		topic  string
		want   string
		wantOK bool
		len    int
	}{
		{"replaced value", func() {}, "a/b", "2", true, 3},
		{"missing deeper", func() {}, "a/b/c/d", "", false, 3},
		{"missing prefix without value", func() {}, "a/b/c/", "", false, 3},
		{"delete inner node keeps children", func() { r.Delete("a/b") }, "a/b/c", "4", true, 2},
		{"deleted", func() {}, "a/b", "", false, 2},
		{"delete missing is a no-op", func() { r.Delete("zz/top"); r.Delete("a/b") }, "a", "3", true, 2},
		{"delete leaf", func() { r.Delete("a/b/c") }, "a/b/c", "", false, 1},
		{"delete last", func() { r.Delete("a") }, "a", "", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.op()
			v, ok := r.Get(tt.topic)
			if v != tt.want || ok != tt.wantOK || r.Len() != tt.len {
				t.Errorf("Get(%q) = %q, %v, Len %d; want %q, %v, Len %d", tt.topic, v, ok, r.Len(), tt.want, tt.wantOK, tt.len)
			}
		})
	}
	if len(r.root.children) != 0 {
		t.Errorf("trie not pruned: %d root children", len(r.root.children))
	}
}

func TestRetainedAll(t *testing.T) {
	var r Retained[int]
	want := map[string]int{"a": 1, "$SYS/x": 2, "a/b/c": 3, "/": 4}
	for k, v := range want {
		r.Set(k, v)
	}
	got := map[string]int{}
	r.All(func(topic string, v int) bool { got[topic] = v; return true })
	if !reflect.DeepEqual(got, want) {
		t.Errorf("All = %v, want %v", got, want)
	}
}

// TestRetainedConcurrent runs readers against writers; run it with -race.
func TestRetainedConcurrent(t *testing.T) {
	var r Retained[int]
	r.Set("stable/x", 1)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			tp := fmt.Sprintf("stable/%d/y", i%100)
			r.Set(tp, i)
			if i%3 == 0 {
				r.Delete(tp)
			}
		}
	})
	for range 500 {
		found := false
		r.Match("stable/#", func(topic string, _ int) bool {
			found = found || topic == "stable/x"
			return true
		})
		if !found {
			t.Fatal("stable/x missing from Match")
		}
		if _, ok := r.Get("stable/x"); !ok {
			t.Fatal("stable/x missing from Get")
		}
	}
	close(stop)
	wg.Wait()
}
