package topic

import (
	"reflect"
	"testing"
)

func members(ids ...string) []Sub {
	out := make([]Sub, len(ids))
	for i, id := range ids {
		out[i] = Sub{ClientID: id, Group: "g", Filter: "a/#"}
	}
	return out
}

func TestSharedPickerPick(t *testing.T) {
	tests := []struct {
		name    string
		members []Sub
		offline map[string]bool
		nilFunc bool
		picks   int
		want    []string // ClientIDs picked, in order
		wantOK  bool
	}{
		{"empty", nil, nil, false, 2, []string{"", ""}, false},
		{"single online", members("a"), nil, false, 2, []string{"a", "a"}, true},
		{"single offline", members("a"), map[string]bool{"a": true}, false, 1, []string{"a"}, false},
		{"round robin", members("a", "b", "c"), nil, false, 4, []string{"a", "b", "c", "a"}, true},
		{"nil online func", members("a", "b"), nil, true, 3, []string{"a", "b", "a"}, true},
		{"skips offline", members("a", "b", "c"), map[string]bool{"b": true}, false, 4, []string{"a", "c", "c", "a"}, true},
		{"all offline", members("a", "b"), map[string]bool{"a": true, "b": true}, false, 3, []string{"a", "b", "a"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p SharedPicker
			online := func(id string) bool { return !tt.offline[id] }
			if tt.nilFunc {
				online = nil
			}
			var got []string
			for range tt.picks {
				s, ok := p.Pick("g", "a/#", tt.members, online)
				if ok != tt.wantOK {
					t.Errorf("Pick ok = %v, want %v", ok, tt.wantOK)
				}
				got = append(got, s.ClientID)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("picks = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSharedPickerPerGroup(t *testing.T) {
	var p SharedPicker
	m := members("a", "b")
	p.Pick("g", "a/#", m, nil)
	// Another (group, filter) has its own counter and starts at the first member.
	if s, _ := p.Pick("h", "a/#", m, nil); s.ClientID != "a" {
		t.Errorf("first pick of h = %q, want a", s.ClientID)
	}
	if s, _ := p.Pick("g", "a/+", m, nil); s.ClientID != "a" {
		t.Errorf("first pick of g a/+ = %q, want a", s.ClientID)
	}
	if p.Len() != 3 {
		t.Errorf("Len = %d, want 3", p.Len())
	}
	p.Forget("g", "a/#")
	if s, _ := p.Pick("g", "a/#", m, nil); s.ClientID != "a" {
		t.Errorf("pick after Forget = %q, want a", s.ClientID)
	}
}

func TestSharedPickerBounded(t *testing.T) {
	p := SharedPicker{MaxEntries: 4}
	m := members("a", "b")
	for _, g := range []string{"1", "2", "3", "4", "5", "6"} {
		p.Pick(g, "x", m, nil)
	}
	if n := p.Len(); n > 4 {
		t.Errorf("Len = %d, want <= 4", n)
	}
}

func TestSharedPickerNoAlloc(t *testing.T) {
	var p SharedPicker
	m := members("a", "b", "c")
	online := map[string]bool{"a": false, "b": true, "c": true}
	isOnline := func(id string) bool { return online[id] }
	p.Pick("g", "a/#", m, isOnline)
	allocs := testing.AllocsPerRun(100, func() {
		p.Pick("g", "a/#", m, isOnline)
	})
	if allocs != 0 {
		t.Errorf("Pick allocates %v times per call", allocs)
	}
}

func TestNextGroup(t *testing.T) {
	subs := []Sub{
		{ClientID: "x", Filter: "a"},
		{ClientID: "a", Group: "g", Filter: "a"},
		{ClientID: "b", Group: "g", Filter: "a"},
		{ClientID: "a", Group: "g", Filter: "+"},
		{ClientID: "c", Group: "h", Filter: "+"},
		{ClientID: "y", Filter: "a"},
	}
	var runs []int
	for rest := subs; len(rest) > 0; {
		n := NextGroup(rest)
		runs = append(runs, n)
		rest = rest[n:]
	}
	if want := []int{1, 2, 1, 1, 1}; !reflect.DeepEqual(runs, want) {
		t.Errorf("runs = %v, want %v", runs, want)
	}
	if NextGroup(nil) != 0 {
		t.Error("NextGroup(nil) != 0")
	}
}
