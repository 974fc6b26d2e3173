package rules

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/broker/topic"
)

// TestIndexMatchesReference checks the trie against topic.Match, the
// reference matcher, over filters and names exercising '+', '#', '$' and
// empty levels, with many siblings to cross the slice/map threshold.
func TestIndexMatchesReference(t *testing.T) {
	filters := []string{"#", "+", "a", "a/#", "a/+", "+/b", "a/b", "a/b/c", "+/+/c", "a//c", "/a", "+/#",
		"$SYS/#", "$SYS/+", "a/b/#", "a/+/#", "#/x"}
	for i := 0; i < 12; i++ {
		filters = append(filters, fmt.Sprintf("s%d/+", i), fmt.Sprintf("a/s%d", i))
	}
	var x index
	var valid []string
	for _, f := range filters {
		if topic.ValidFilter([]byte(f)) {
			x.add(f, int32(len(valid)))
			valid = append(valid, f)
		}
	}
	names := []string{"a", "a/b", "a/b/c", "a//c", "/a", "b", "x/b", "x/y/c", "$SYS/x", "$SYS", "a/", "a/b/c/d",
		"s3/q", "a/s11", "s11", "a/s5/z"}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			var want []int32
			for i, f := range valid {
				if topic.Match(f, name) {
					want = append(want, int32(i))
				}
			}
			got := x.match(name, nil)
			if !slices.Equal(got, want) {
				t.Errorf("match(%q) = %v, want %v", name, got, want)
			}
		})
	}
}

// FuzzIndex checks the trie against topic.Match for one filter and name.
func FuzzIndex(f *testing.F) {
	for _, s := range [][2]string{{"a/+/c", "a/b/c"}, {"#", "$SYS/x"}, {"a/#", "a"}, {"+/+", "/"}, {"a//b", "a//b"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, filter, name string) {
		if !topic.ValidFilter([]byte(filter)) || !topic.ValidName([]byte(name)) || strings.HasPrefix(filter, topic.SharePrefix) {
			return
		}
		var x index
		x.add(filter, 0)
		x.add("unrelated/+/filter", 1)
		got := len(x.match(name, nil)) > 0 && x.match(name, nil)[0] == 0
		if want := topic.Match(filter, name); got != want {
			t.Fatalf("index match(%q, %q) = %v, topic.Match = %v", filter, name, got, want)
		}
	})
}
