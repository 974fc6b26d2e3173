package topic

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

// naiveMatch is an independent, allocating oracle for Match built on
// strings.Split, so the fuzzer also checks the reference itself.
func naiveMatch(filter, name string) bool {
	if _, inner, ok, err := ParseShared(filter); ok {
		if err != nil {
			return false
		}
		filter = inner
	}
	if !ValidFilter([]byte(filter)) || !ValidName([]byte(name)) {
		return false
	}
	fl, nl := strings.Split(filter, "/"), strings.Split(name, "/")
	if name[0] == '$' && (fl[0] == "+" || fl[0] == "#") {
		return false
	}
	for i, f := range fl {
		if f == "#" {
			return true
		}
		if i >= len(nl) || (f != "+" && f != nl[i]) {
			return false
		}
	}
	return len(fl) == len(nl)
}

// FuzzMatch splits its input on ',' into tokens used both as filters (added
// to a Tree) and as topic names (stored in a Retained), then checks that
// Tree.Match and Retained.Match agree with Match for every pair, and Match
// with naiveMatch; it repeats the Tree check after removing half the
// subscriptions to exercise pruning.
func FuzzMatch(f *testing.F) {
	for _, c := range matchCases {
		f.Add(c.filter + "," + c.topic)
	}
	f.Add("#,+,+/+,a/#,a/+/c,$SYS/#,$share/g/a/#,a,a/b,a/b/c,$SYS/x,/,a/,//")
	f.Add("+/#,/+,+/,a//b,a/+/+,$x,$x/y,x/$y,#/a,a/#/b,$share//a,$share/g/+")
	f.Fuzz(func(t *testing.T, input string) {
		tokens := strings.Split(input, ",")
		if len(tokens) > 64 {
			tokens = tokens[:64]
		}
		tree := NewTree()
		var subs []Sub
		var topics []string
		var retained Retained[int]
		for i, tok := range tokens {
			if ValidFilter([]byte(tok)) {
				s := subFor(fmt.Sprint(i), tok)
				tree.Add(s)
				subs = append(subs, s)
			}
			if ValidName([]byte(tok)) {
				topics = append(topics, tok)
				retained.Set(tok, i)
			}
		}
		checkTree(t, tree, subs, topics)
		checkRetained(t, &retained, tokens, topics)
		for i, s := range subs {
			if i%2 == 0 && !tree.Remove(s.ClientID, s.Group, s.Filter) {
				t.Fatalf("Remove(%+v) = false", s)
			}
		}
		var kept []Sub
		for i, s := range subs {
			if i%2 == 1 {
				kept = append(kept, s)
			}
		}
		checkTree(t, tree, kept, topics)
		if n := tree.Count(); n != len(kept) {
			t.Fatalf("Count = %d after removals, want %d", n, len(kept))
		}
	})
}

func checkTree(t *testing.T, tree *Tree, subs []Sub, topics []string) {
	t.Helper()
	var dst []Sub
	for _, name := range topics {
		var want []string
		for _, s := range subs {
			full := s.Filter
			if s.Group != "" {
				full = SharePrefix + s.Group + "/" + s.Filter
			}
			m := Match(full, name)
			if m != naiveMatch(full, name) {
				t.Fatalf("Match(%q, %q) = %v, naive oracle disagrees", full, name, m)
			}
			if m {
				want = append(want, s.ClientID+"|"+s.Group+"|"+s.Filter)
			}
		}
		sort.Strings(want)
		dst = tree.Match([]byte(name), dst[:0])
		got := keys(dst)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("Tree.Match(%q) = %q, want %q", name, got, want)
		}
		assertGroupsContiguous(t, dst)
	}
}

func checkRetained(t *testing.T, r *Retained[int], filters, topics []string) {
	t.Helper()
	if r.Len() != len(dedupe(topics)) {
		t.Fatalf("Retained.Len = %d, want %d", r.Len(), len(dedupe(topics)))
	}
	for _, f := range filters {
		var want []string
		for _, name := range dedupe(topics) {
			if Match(f, name) {
				want = append(want, name)
			}
		}
		got := matched(r, f)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("Retained.Match(%q) = %q, want %q", f, got, want)
		}
	}
}

// dedupe returns the distinct strings of s, sorted.
func dedupe(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	n := 0
	for i, v := range out {
		if i == 0 || v != out[n-1] {
			out[n] = v
			n++
		}
	}
	return out[:n]
}
