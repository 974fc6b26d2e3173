package topic

import (
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
)

// subFor builds the Sub a broker would add for a SUBSCRIBE filter.
func subFor(clientID, filter string) Sub {
	s := Sub{ClientID: clientID, Filter: filter}
	if g, f, ok, _ := ParseShared(filter); ok {
		s.Group, s.Filter = g, f
	}
	return s
}

func TestTreeMatchSpec(t *testing.T) {
	for _, tt := range matchCases {
		t.Run(tt.name, func(t *testing.T) {
			if !ValidFilter([]byte(tt.filter)) {
				t.Skip("invalid filters are rejected before Add")
			}
			tr := NewTree()
			tr.Add(subFor("c", tt.filter))
			got := tr.Match([]byte(tt.topic), nil)
			if (len(got) == 1) != tt.want || len(got) > 1 {
				t.Errorf("Tree.Match(%q) with filter %q = %v, want match=%v", tt.topic, tt.filter, got, tt.want)
			}
		})
	}
}

// keys renders matched subscriptions sorted, for comparison.
func keys(subs []Sub) []string {
	out := make([]string, 0, len(subs))
	for _, s := range subs {
		out = append(out, s.ClientID+"|"+s.Group+"|"+s.Filter)
	}
	sort.Strings(out)
	return out
}

func TestTreeMatchMany(t *testing.T) {
	tr := NewTree()
	for _, s := range []Sub{
		{ClientID: "a", Filter: "sport/#"},
		{ClientID: "a", Filter: "sport/+/player1"},
		{ClientID: "b", Filter: "sport/tennis/player1"},
		{ClientID: "b", Filter: "#"},
		{ClientID: "c", Filter: "+/+/+"},
		{ClientID: "d", Filter: "news/#"},
		{ClientID: "e", Filter: "$SYS/#"},
		{ClientID: "s1", Filter: "sport/#", Group: "g"},
		{ClientID: "s2", Filter: "sport/#", Group: "g"},
		{ClientID: "s3", Filter: "sport/#", Group: "h"},
		{ClientID: "s1", Filter: "sport/+/+", Group: "g"},
	} {
		tr.Add(s)
	}
	tests := []struct {
		name  string
		topic string
		want  []string
	}{
		{"overlapping filters of one client appear twice", "sport/tennis/player1", []string{
			"a||sport/#", "a||sport/+/player1", "b||#", "b||sport/tennis/player1", "c||+/+/+",
			"s1|g|sport/#", "s1|g|sport/+/+", "s2|g|sport/#", "s3|h|sport/#",
		}},
		{"MQTT-4.7.2-1 $ topic only matches literal first level", "$SYS/x", []string{"e||$SYS/#"}},
		{"parent level of #", "sport", []string{"a||sport/#", "b||#", "s1|g|sport/#", "s2|g|sport/#", "s3|h|sport/#"}},
		{"nothing but #", "weather", []string{"b||#"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tr.Match([]byte(tt.topic), nil)
			if k := keys(got); !reflect.DeepEqual(k, tt.want) {
				t.Errorf("Match(%q) = %v, want %v", tt.topic, k, tt.want)
			}
			assertGroupsContiguous(t, got)
		})
	}
}

// assertGroupsContiguous checks that the members of each shared (group,
// filter) are adjacent in a Match result.
func assertGroupsContiguous(t *testing.T, subs []Sub) {
	t.Helper()
	seen := map[subKey]bool{}
	var prev subKey
	for i, s := range subs {
		if s.Group == "" {
			continue
		}
		k := subKey{s.Group, s.Filter}
		if seen[k] && (i == 0 || prev != k) {
			t.Errorf("members of %v are not contiguous in %v", k, keys(subs))
		}
		seen[k], prev = true, k
	}
}

func TestTreeAddRemove(t *testing.T) {
	tr := NewTree()
	if tr.Add(Sub{ClientID: "a", Filter: "x/+", QoS: 0}) {
		t.Fatal("first Add reported replaced")
	}
	if !tr.Add(Sub{ClientID: "a", Filter: "x/+", QoS: 2, ID: 7}) {
		t.Fatal("second Add did not report replaced")
	}
	tr.Add(Sub{ClientID: "a", Filter: "x/+", Group: "g", QoS: 1})
	tr.Add(Sub{ClientID: "b", Filter: "x/+"})
	tr.Add(Sub{ClientID: "a", Filter: "y/#"})
	if got := tr.Count(); got != 4 {
		t.Fatalf("Count = %d, want 4", got)
	}
	got := tr.Match([]byte("x/1"), nil)
	if len(got) != 3 {
		t.Fatalf("Match = %v, want 3 subs", got)
	}
	for _, s := range got {
		if s.ClientID == "a" && s.Group == "" && (s.QoS != 2 || s.ID != 7) {
			t.Errorf("replaced sub not updated: %+v", s)
		}
	}
	want := []Sub{
		{ClientID: "a", Filter: "x/+", QoS: 2, ID: 7},
		{ClientID: "a", Filter: "x/+", Group: "g", QoS: 1},
		{ClientID: "a", Filter: "y/#"},
	}
	if cs := tr.ClientSubs("a"); !reflect.DeepEqual(cs, want) {
		t.Errorf("ClientSubs = %+v, want %+v", cs, want)
	}

	tests := []struct {
		name                  string
		client, group, filter string
		want                  bool
	}{
		{"unknown client", "z", "", "x/+", false},
		{"unknown filter", "a", "", "x/y", false},
		{"wrong group", "a", "h", "x/+", false},
		{"prefix of filter", "a", "", "x", false},
		{"non-shared", "a", "", "x/+", true},
		{"twice", "a", "", "x/+", false},
		{"shared", "a", "g", "x/+", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tr.Remove(tt.client, tt.group, tt.filter); got != tt.want {
				t.Errorf("Remove(%q, %q, %q) = %v, want %v", tt.client, tt.group, tt.filter, got, tt.want)
			}
		})
	}
	if got := keys(tr.Match([]byte("x/1"), nil)); !reflect.DeepEqual(got, []string{"b||x/+"}) {
		t.Errorf("after Remove Match = %v", got)
	}
	if n := tr.RemoveClient("a"); n != 1 {
		t.Errorf("RemoveClient(a) = %d, want 1", n)
	}
	if n := tr.RemoveClient("b"); n != 1 {
		t.Errorf("RemoveClient(b) = %d, want 1", n)
	}
	if tr.Count() != 0 || len(tr.clients) != 0 || !tr.root.empty() {
		t.Errorf("tree not empty after removing everything: count=%d clients=%d root=%+v",
			tr.Count(), len(tr.clients), tr.root)
	}
}

func TestTreeRemoveClientMany(t *testing.T) {
	tr := NewTree()
	for i := range 100 {
		tr.Add(Sub{ClientID: "a", Filter: fmt.Sprintf("t/%d/+", i)})
		tr.Add(Sub{ClientID: "b", Filter: fmt.Sprintf("t/%d/+", i)})
		tr.Add(Sub{ClientID: "a", Filter: fmt.Sprintf("t/%d/#", i), Group: "g"})
	}
	if n := tr.RemoveClient("a"); n != 200 {
		t.Fatalf("RemoveClient = %d, want 200", n)
	}
	if got := tr.Count(); got != 100 {
		t.Fatalf("Count = %d, want 100", got)
	}
	if got := keys(tr.Match([]byte("t/5/x"), nil)); !reflect.DeepEqual(got, []string{"b||t/5/+"}) {
		t.Errorf("Match = %v", got)
	}
	if cs := tr.ClientSubs("a"); len(cs) != 0 {
		t.Errorf("ClientSubs(a) = %v, want none", cs)
	}
}

// TestTreeSwapRemove checks that removing from the middle of a node's list
// keeps the client index consistent for the entry that moved.
func TestTreeSwapRemove(t *testing.T) {
	tr := NewTree()
	for _, c := range []string{"a", "b", "c", "d"} {
		tr.Add(Sub{ClientID: c, Filter: "x"})
		tr.Add(Sub{ClientID: c, Filter: "x", Group: "g"})
	}
	for _, g := range []string{"", "g"} {
		if !tr.Remove("b", g, "x") {
			t.Fatalf("Remove(b, %q) failed", g)
		}
	}
	// "d" moved into "b"'s slot; replacing and removing it must still work.
	for _, g := range []string{"", "g"} {
		if !tr.Add(Sub{ClientID: "d", Filter: "x", Group: g, QoS: 1}) {
			t.Errorf("re-Add(d, %q) did not replace", g)
		}
		if !tr.Remove("d", g, "x") {
			t.Errorf("Remove(d, %q) failed", g)
		}
	}
	want := []string{"a|g|x", "a||x", "c|g|x", "c||x"}
	if got := keys(tr.Match([]byte("x"), nil)); !reflect.DeepEqual(got, want) {
		t.Errorf("Match = %v, want %v", got, want)
	}
}

func TestTreeMatchNoAlloc(t *testing.T) {
	tr := NewTree()
	for i := range 100 {
		c := fmt.Sprint("c", i)
		tr.Add(Sub{ClientID: c, Filter: "a/+/c"})
		tr.Add(Sub{ClientID: c, Filter: "a/#", Group: "g"})
	}
	topic := []byte("a/b/c")
	dst := make([]Sub, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		dst = tr.Match(topic, dst[:0])
	})
	if allocs != 0 {
		t.Errorf("Match allocates %v times per call", allocs)
	}
	if len(dst) != 200 {
		t.Errorf("Match returned %d subs, want 200", len(dst))
	}
}

// TestTreeConcurrent runs matchers against writers; run it with -race.
func TestTreeConcurrent(t *testing.T) {
	tr := NewTree()
	tr.Add(Sub{ClientID: "stable", Filter: "a/#"})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c := fmt.Sprintf("w%d-%d", w, i%50)
				tr.Add(Sub{ClientID: c, Filter: "a/+/c"})
				tr.Add(Sub{ClientID: c, Filter: "a/b/#", Group: "g"})
				if i%7 == 0 {
					tr.RemoveClient(c)
				} else {
					tr.Remove(c, "", "a/+/c")
				}
			}
		})
	}
	var dst []Sub
	for range 2000 {
		dst = tr.Match([]byte("a/b/c"), dst[:0])
		found := false
		for _, s := range dst {
			found = found || s.ClientID == "stable"
		}
		if !found {
			t.Fatal("stable subscription missing from Match")
		}
	}
	close(stop)
	wg.Wait()
}
