package auth

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/broker/topic"
)

// linearCanPublish is the reference for ACL.CanPublish: the rules tried in
// order, placeholders substituted as text, topics matched by topic.Match.
func linearCanPublish(rules []ACLRule, id Identity, name string) bool {
	if len(rules) == 0 {
		return true
	}
	for _, r := range rules {
		r = r.normalise()
		if r.Action == ActionSubscribe ||
			len(r.Users) > 0 && !slices.Contains(r.Users, id.Username) ||
			len(r.Clients) > 0 && !slices.Contains(r.Clients, id.ClientID) {
			continue
		}
		var b strings.Builder
		unusable := false
		for i := 0; i < len(r.Topic); i++ {
			if r.Topic[i] != '%' {
				b.WriteByte(r.Topic[i])
				continue
			}
			i++
			v := map[byte]string{'%': "%", 'u': id.Username, 'c': id.ClientID}[r.Topic[i]]
			if r.Topic[i] != '%' && (v == "" || strings.ContainsAny(v, "+#/\x00")) {
				unusable = true
			}
			b.WriteString(v)
		}
		allow := r.Permission == PermissionAllow
		switch {
		case unusable && allow:
			continue
		case unusable:
			return false
		case topic.Match(b.String(), name):
			return allow
		}
	}
	return false
}

// TestPublishIndexMatchesLinear compares the index with the reference on
// random rule lists, identities and topic names.
func TestPublishIndexMatchesLinear(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	randRule := func() ACLRule {
		n := 1 + rng.IntN(3)
		levels := make([]string, n)
		for i := range levels {
			levels[i] = pick("a", "b", "+", "%u", "%c", "x%u", "%u-%c", "$a", "")
		}
		if rng.IntN(4) == 0 {
			levels[n-1] = "#"
		}
		r := ACLRule{
			Permission: pick("allow", "deny"),
			Action:     pick("publish", "subscribe", "all"),
			Topic:      strings.Join(levels, "/"),
		}
		if rng.IntN(4) == 0 {
			r.Users = []string{pick("u1", "u2", "a")}
		}
		if rng.IntN(5) == 0 {
			r.Clients = []string{pick("c1", "a")}
		}
		return r
	}
	users := []string{"u1", "u2", "a", "", "a/b", "+", "#"}
	clients := []string{"c1", "a", "", "+", "c/1"}
	var names []string
	var gen func(prefix string, depth int)
	gen = func(prefix string, depth int) {
		for _, l := range []string{"a", "b", "u1", "c1", "xu1", "u1-c1", "$a", ""} {
			if n := prefix + l; topic.ValidName([]byte(n)) {
				names = append(names, n)
			}
			if depth < 3 {
				gen(prefix+l+"/", depth+1)
			}
		}
	}
	gen("", 1)
	checked := 0
	for range 80 {
		rules := make([]ACLRule, rng.IntN(12))
		for i := range rules {
			rules[i] = randRule()
		}
		acl, err := NewACL(rules)
		if err != nil {
			continue // e.g. "$a" after a level: still valid; skip the odd invalid one
		}
		for _, u := range users {
			for _, c := range clients {
				id := Identity{Username: u, ClientID: c}
				for _, n := range names {
					checked++
					if got, want := acl.CanPublish(id, n), linearCanPublish(rules, id, n); got != want {
						t.Fatalf("rules %+v\nidentity %+v name %q: CanPublish = %v, reference %v", rules, id, n, got, want)
					}
				}
			}
		}
	}
	t.Logf("%d checks", checked)
}
