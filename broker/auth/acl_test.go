package auth

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/broker/topic"
)

// ident returns an Identity.
func ident(user, client string) Identity {
	return Identity{Username: user, ClientID: client}
}

// check is one authorisation question and its expected answer.
type check struct {
	user, client string
	sub          bool // CanSubscribe, else CanPublish
	topic        string
	want         bool
}

func (c check) String() string {
	op := "pub"
	if c.sub {
		op = "sub"
	}
	return fmt.Sprintf("%s u=%q c=%q %s", op, c.user, c.client, c.topic)
}

// runChecks asks every question of acl.
func runChecks(t *testing.T, acl *ACL, checks []check) {
	t.Helper()
	for _, c := range checks {
		t.Run(c.String(), func(t *testing.T) {
			id := ident(c.user, c.client)
			var got bool
			if c.sub {
				got = acl.CanSubscribe(id, c.topic)
			} else {
				got = acl.CanPublish(id, c.topic)
			}
			if got != c.want {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

func mustACL(t testing.TB, rules ...ACLRule) *ACL {
	t.Helper()
	a, err := NewACL(rules)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestACLEmptyAllowsEverything(t *testing.T) {
	for name, acl := range map[string]*ACL{"no rules": mustACL(t), "nil": nil} {
		t.Run(name, func(t *testing.T) {
			runChecks(t, acl, []check{
				{"", "c", false, "a/b", true},
				{"u", "c", true, "#", true},
				{"u", "c", true, "$share/g/a/+", true},
				{"u", "c", true, "a/#/b", false}, // invalid filters are refused regardless
				{"u", "c", true, "$share//a", false},
			})
		})
	}
}

func TestACLOrderFirstMatchWins(t *testing.T) {
	acl := mustACL(t,
		ACLRule{Permission: "deny", Action: "publish", Topic: "plant/secret/#"},
		ACLRule{Permission: "allow", Action: "publish", Topic: "plant/#"},
		ACLRule{Permission: "allow", Action: "subscribe", Topic: "plant/+/status"},
		ACLRule{Permission: "deny", Topic: "admin/#", Clients: []string{"evil"}},
		ACLRule{Permission: "allow", Topic: "admin/#", Users: []string{"root"}},
		ACLRule{Permission: "Allow", Action: "SUBSCRIBE", Topic: "public/#"},
		ACLRule{Permission: "deny", Action: "subscribe", Topic: "public/private"},
		ACLRule{Permission: "deny", Action: "subscribe", Topic: "news/internal/#"},
		ACLRule{Permission: "allow", Action: "subscribe", Topic: "news/#"},
	)
	runChecks(t, acl, []check{
		// An earlier deny beats a later allow.
		{"u", "c", false, "plant/secret/x", false},
		{"u", "c", false, "plant/secret", false},
		{"u", "c", false, "plant/line1/temp", true},
		{"u", "c", false, "plant", true}, // '#' matches the parent level
		// Actions are separate: rule 1 allows publish only.
		{"u", "c", true, "plant/line1/temp", false},
		{"u", "c", true, "plant/line1/status", true},
		{"u", "c", true, "plant/+/status", true},
		{"u", "c", true, "plant/#", false}, // wider than any allow
		// Users and clients scope rules; the first applicable wins.
		{"root", "c", false, "admin/x", true},
		{"root", "c", true, "admin/#", true},
		{"root", "evil", false, "admin/x", false},
		{"u", "c", false, "admin/x", false},
		{"", "c", false, "admin/x", false},
		// An allow grants a subscription only if it covers the whole filter.
		{"u", "c", true, "public/#", true},
		{"u", "c", true, "public/private", true}, // rule 5 came first
		// A deny refuses any subscription that could receive its topics.
		{"u", "c", true, "news/#", false},
		{"u", "c", true, "news/+/x", false},
		{"u", "c", true, "news/+", false},
		{"u", "c", true, "news/sports/#", true},
		{"u", "c", true, "news/internal", false},
		{"u", "c", true, "$share/g/news/sports", true},
		{"u", "c", true, "$share/g/news/#", false},
		// Deny by default once any rule exists.
		{"u", "c", false, "other", false},
		{"u", "c", true, "other/#", false},
		// A leading wildcard never covers '$' topics [MQTT-4.7.2-1].
		{"root", "c", true, "$SYS/#", false},
	})
}

func TestACLDollarTopics(t *testing.T) {
	acl := mustACL(t,
		ACLRule{Permission: "deny", Topic: "#", Users: []string{"blocked"}},
		ACLRule{Permission: "allow", Topic: "#"},
		ACLRule{Permission: "allow", Action: "subscribe", Topic: "$SYS/broker/#"},
	)
	runChecks(t, acl, []check{
		{"u", "c", false, "a/b", true},
		{"u", "c", true, "#", true},
		{"u", "c", false, "$SYS/x", false},
		{"u", "c", true, "$SYS/#", false},
		{"u", "c", true, "$SYS/broker/uptime", true},
		{"u", "c", true, "$SYS/broker/#", true},
		{"u", "c", true, "+/broker/#", true}, // matches no '$' topic, so rule 1 covers it
		{"blocked", "c", true, "#", false},
		{"blocked", "c", true, "$SYS/broker/uptime", true}, // '#' in rule 0 does not reach '$SYS'
	})
}

func TestACLSubstitution(t *testing.T) {
	acl := mustACL(t,
		ACLRule{Permission: "deny", Action: "publish", Topic: "quota/%u/#"},
		ACLRule{Permission: "allow", Action: "publish", Topic: "quota/#"},
		ACLRule{Permission: "allow", Topic: "devices/%u/#"},
		ACLRule{Permission: "allow", Action: "publish", Topic: "clients/%c/out"},
		ACLRule{Permission: "allow", Action: "subscribe", Topic: "clients/%c/in"},
		ACLRule{Permission: "allow", Topic: "users/u-%u.%c/x"},
		ACLRule{Permission: "allow", Topic: "pct/%%u/%u"},
	)
	runChecks(t, acl, []check{
		{"bob", "c1", false, "devices/bob/temp", true},
		{"bob", "c1", true, "devices/bob/#", true},
		{"bob", "c1", true, "devices/+/temp", false},
		{"bob", "c1", false, "devices/alice/temp", false},
		{"bob", "c1", false, "devices/bobby/temp", false},
		{"bob", "c1", false, "clients/c1/out", true},
		{"bob", "c1", false, "clients/c2/out", false},
		{"bob", "c1", true, "clients/c1/in", true},
		{"bob", "c1", false, "clients/c1/in", false},
		{"bob", "c1", false, "users/u-bob.c1/x", true},
		{"bob", "c1", false, "users/u-bob.c2/x", false},
		{"bob", "c1", false, "users/u-bobc1/x", false},
		{"bob", "c1", false, "pct/%u/bob", true},
		{"bob", "c1", false, "pct/bob/bob", false},
		// A deny with a placeholder: only the user's own subtree.
		{"bob", "c1", false, "quota/bob/x", false},
		{"bob", "c1", false, "quota/alice/x", true},
		// A name is substituted once, never read as a pattern.
		{"%c", "bob", false, "devices/%c/x", true},
		{"%c", "bob", false, "devices/bob/x", false},
	})
}

// TestACLInjection: user names and client ids that contain wildcards or
// level separators, or are empty, must never widen access.
func TestACLInjection(t *testing.T) {
	acl := mustACL(t,
		ACLRule{Permission: "deny", Action: "publish", Topic: "quota/%u/#"},
		ACLRule{Permission: "allow", Action: "publish", Topic: "quota/#"},
		ACLRule{Permission: "allow", Topic: "devices/%u/#"},
		ACLRule{Permission: "allow", Topic: "clients/%c/#"},
		ACLRule{Permission: "allow", Action: "subscribe", Topic: "public/#"},
	)
	runChecks(t, acl, []check{
		{"+", "c", true, "devices/+/#", false},
		{"+", "c", true, "devices/+/x", false},
		{"#", "c", true, "devices/#", false},
		{"#", "c", true, "devices/#/#", false},
		{"a/b", "c", false, "devices/a/b/x", false},
		{"a/b", "c", false, "devices/a/x", false},
		{"a/+", "c", true, "devices/a/+/#", false},
		{"x\x00", "c", false, "devices/x\x00/y", false},
		{"", "c", false, "devices//x", false},
		{"", "c", true, "devices/+/#", false},
		{"u", "+", true, "clients/+/#", false},
		{"u", "#", true, "clients/#", false},
		{"u", "x/y", false, "clients/x/y/z", false},
		{"u", "", false, "clients//z", false},
		// A deny whose name is unusable matches everything (fail closed):
		// 'a/b' is denied quota/a/b/x, and all other publishing too.
		{"a/b", "c", false, "quota/a/b/x", false},
		{"a/b", "c", false, "quota/other", false},
		{"", "c", false, "quota/other", false},
		// Rules without a placeholder still apply to such identities.
		{"+", "c", true, "public/#", true},
		{"", "", true, "public/x", true},
	})
}

func TestNewACLRejects(t *testing.T) {
	tests := []struct {
		name string
		rule ACLRule
		want string
	}{
		{"no permission", ACLRule{Topic: "a"}, "permission: must be"},
		{"bad permission", ACLRule{Permission: "maybe", Topic: "a"}, "permission: must be"},
		{"bad action", ACLRule{Permission: "allow", Action: "read", Topic: "a"}, "action: must be"},
		{"no topic", ACLRule{Permission: "allow"}, "topic: must not be empty"},
		{"bad filter", ACLRule{Permission: "allow", Topic: "a/#/b"}, "not a valid topic filter"},
		{"wildcard inside level", ACLRule{Permission: "allow", Topic: "a/x+"}, "not a valid topic filter"},
		{"placeholder beside wildcard", ACLRule{Permission: "allow", Topic: "a/+%u"}, "not a valid topic filter"},
		{"unknown placeholder", ACLRule{Permission: "allow", Topic: "a/%U"}, "unknown placeholder %U"},
		{"trailing percent", ACLRule{Permission: "allow", Topic: "a/b%"}, "at the end of a level"},
		{"shared", ACLRule{Permission: "allow", Topic: "$share/g/a"}, "$share"},
		{"empty user", ACLRule{Permission: "allow", Topic: "a", Users: []string{"x", ""}}, "users[1]: must not be empty"},
		{"empty client", ACLRule{Permission: "allow", Topic: "a", Clients: []string{""}}, "clients[0]: must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewACL([]ACLRule{{Permission: "allow", Topic: "ok"}, tt.rule})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "acl[1]") {
				t.Fatalf("NewACL = %v, want an error about acl[1] containing %q", err, tt.want)
			}
		})
	}
}

// TestSubsetOverlap checks subset, overlap and the publish index against
// topic.Match over every valid topic name of up to four levels drawn from
// a small alphabet, for every pair of filters of up to three levels. (A
// counterexample needs at most one level more than the filters have.)
func TestSubsetOverlap(t *testing.T) {
	levels := []string{"a", "b", "$s", ""}
	var names []string
	var gen func(prefix string, depth int)
	gen = func(prefix string, depth int) {
		for _, l := range append(levels, "z") {
			n := prefix + l
			if topic.ValidName([]byte(n)) {
				names = append(names, n)
			}
			if depth < 4 {
				gen(n+"/", depth+1)
			}
		}
	}
	gen("", 1)
	var filters []string
	var genF func(prefix string, depth int)
	genF = func(prefix string, depth int) {
		for _, l := range append(levels, "+", "#") {
			f := prefix + l
			if topic.ValidFilter([]byte(f)) {
				filters = append(filters, f)
			}
			if depth < 3 && l != "#" {
				genF(f+"/", depth+1)
			}
		}
	}
	genF("", 1)
	// matches[i][j]: filters[i] matches names[j], by the reference.
	matches := make([][]bool, len(filters))
	for i, f := range filters {
		matches[i] = make([]bool, len(names))
		acl := mustACL(t, ACLRule{Permission: "allow", Action: "publish", Topic: f})
		for j, n := range names {
			matches[i][j] = topic.Match(f, n)
			if got := acl.CanPublish(Identity{}, n); got != matches[i][j] {
				t.Errorf("rule %q: CanPublish(%q) = %v, want %v", f, n, got, matches[i][j])
			}
		}
	}
	for i, f := range filters {
		for k, p := range filters {
			wantSub, wantOver := true, false
			for j := range names {
				fm, pm := matches[i][j], matches[k][j]
				wantSub = wantSub && (!fm || pm)
				wantOver = wantOver || fm && pm
			}
			fl, pl := strings.Split(f, "/"), strings.Split(p, "/")
			if got := subset(fl, pl); got != wantSub {
				t.Errorf("subset(%q, %q) = %v, want %v", f, p, got, wantSub)
			}
			if got := overlap(fl, pl); got != wantOver {
				t.Errorf("overlap(%q, %q) = %v, want %v", f, p, got, wantOver)
			}
		}
	}
	t.Logf("%d filters, %d names", len(filters), len(names))
}
