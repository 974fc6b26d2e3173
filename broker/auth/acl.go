package auth

import (
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/broker/topic"
)

// ACL is a compiled, immutable list of access rules: an Authorizer. It is
// safe for concurrent use; a reload builds a new ACL and swaps it in.
//
// Rules are tried in order and the first one that matches decides. A rule
// matches a PUBLISH when its pattern matches the topic name. It matches a
// SUBSCRIBE, when it allows, if its pattern covers every topic the filter
// can match, and when it denies, if its pattern and the filter have any
// topic in common; so a subscription is granted only if everything it can
// receive is allowed. When no rule matches the answer is no, unless the
// ACL has no rules at all, in which case everything is allowed.
type ACL struct {
	rules []*rule
	pub   *pubIndex
}

// rule is a compiled ACLRule.
type rule struct {
	allow       bool
	pub, sub    bool
	users       map[string]struct{} // nil: any username
	clients     map[string]struct{} // nil: any client id
	levels      []patLevel
	needsUser   bool     // the pattern uses %u
	needsClient bool     // the pattern uses %c
	plain       []string // the levels, when the pattern has no placeholder
}

// patLevel is one level of a rule's pattern.
type patLevel struct {
	text  string // the level when it has no placeholder: literal, "+" or "#"
	parts []part // the level's pieces when it has a placeholder
}

// part is a piece of a pattern level: literal text or a placeholder.
type part struct {
	lit string
	ph  byte // 0 for literal text, 'u' for the username, 'c' for the client id
}

// NewACL compiles rules. An empty list gives an ACL that allows
// everything.
func NewACL(rules []ACLRule) (*ACL, error) {
	a := &ACL{rules: make([]*rule, 0, len(rules))}
	for i, r := range rules {
		cr, err := compileRule(r)
		if err != nil {
			return nil, fmt.Errorf("compiling acl[%d]: %w", i, err)
		}
		a.rules = append(a.rules, cr)
	}
	a.pub = newPubIndex(a.rules)
	return a, nil
}

// compileRule checks r and compiles it. Errors are *ruleError.
func compileRule(r ACLRule) (*rule, error) {
	r = r.normalise()
	cr := &rule{}
	switch r.Permission {
	case PermissionAllow:
		cr.allow = true
	case PermissionDeny:
	default:
		return nil, &ruleError{"permission", fmt.Sprintf("must be %q or %q, got %q", PermissionAllow, PermissionDeny, r.Permission)}
	}
	switch r.Action {
	case ActionPublish:
		cr.pub = true
	case ActionSubscribe:
		cr.sub = true
	case ActionAll:
		cr.pub, cr.sub = true, true
	default:
		return nil, &ruleError{"action", fmt.Sprintf("must be %q, %q or %q, got %q", ActionPublish, ActionSubscribe, ActionAll, r.Action)}
	}
	if err := cr.compileTopic(r.Topic); err != nil {
		return nil, err
	}
	var err error
	if cr.users, err = nameSet("users", r.Users); err != nil {
		return nil, err
	}
	if cr.clients, err = nameSet("clients", r.Clients); err != nil {
		return nil, err
	}
	return cr, nil
}

// compileTopic splits the pattern into levels and its placeholders into
// parts, and checks that it is a valid filter whatever is substituted.
func (cr *rule) compileTopic(pattern string) error {
	bad := func(format string, args ...any) error {
		return &ruleError{"topic", fmt.Sprintf(format, args...)}
	}
	switch {
	case pattern == "":
		return bad("must not be empty")
	case strings.HasPrefix(pattern, topic.SharePrefix):
		return bad("%q: write the filter without its $share/{group}/ prefix (shared subscriptions are checked by their filter)", pattern)
	}
	var probe strings.Builder // the pattern with "x" for each placeholder
	for _, raw := range strings.Split(pattern, "/") {
		var lv patLevel
		var lit strings.Builder
		for i := 0; i < len(raw); i++ {
			c := raw[i]
			if c != '%' {
				lit.WriteByte(c)
				continue
			}
			if i+1 == len(raw) {
				return bad("%q: '%%' at the end of a level; write %%%% for a literal '%%'", pattern)
			}
			i++
			switch raw[i] {
			case '%':
				lit.WriteByte('%')
			case 'u', 'c':
				lv.parts = append(lv.parts, part{lit: lit.String()}, part{ph: raw[i]})
				lit.Reset()
				if raw[i] == 'u' {
					cr.needsUser = true
				} else {
					cr.needsClient = true
				}
			default:
				return bad("%q: unknown placeholder %%%c (want %%u, %%c or %%%%)", pattern, raw[i])
			}
		}
		if lv.parts != nil {
			lv.parts = append(lv.parts, part{lit: lit.String()})
			lv.parts = compactParts(lv.parts)
			for _, p := range lv.parts {
				probe.WriteString(p.lit)
				if p.ph != 0 {
					probe.WriteByte('x')
				}
			}
		} else {
			lv.text = lit.String()
			probe.WriteString(lv.text)
		}
		probe.WriteByte('/')
		cr.levels = append(cr.levels, lv)
	}
	if f := strings.TrimSuffix(probe.String(), "/"); !topic.ValidFilter([]byte(f)) {
		return bad("%q is not a valid topic filter ('+' and '#' must be whole levels, '#' the last)", pattern)
	}
	if !cr.needsUser && !cr.needsClient {
		for _, lv := range cr.levels {
			cr.plain = append(cr.plain, lv.text)
		}
	}
	return nil
}

// compactParts drops the empty literal parts around placeholders.
func compactParts(ps []part) []part {
	out := ps[:0]
	for _, p := range ps {
		if p.ph != 0 || p.lit != "" {
			out = append(out, p)
		}
	}
	return out
}

// nameSet turns a users or clients list into a set; nil for an empty list.
func nameSet(field string, names []string) (map[string]struct{}, error) {
	if len(names) == 0 {
		return nil, nil
	}
	set := make(map[string]struct{}, len(names))
	for i, n := range names {
		if n == "" {
			return nil, &ruleError{fmt.Sprintf("%s[%d]", field, i), "must not be empty"}
		}
		set[n] = struct{}{}
	}
	return set, nil
}

// CanPublish reports whether id may publish to the topic name, which the
// caller has checked is a valid topic name. It walks the rules' level trie
// once, whatever the number of rules, and does not allocate.
func (a *ACL) CanPublish(id Identity, name string) bool {
	if a == nil || len(a.rules) == 0 {
		return true
	}
	best := a.pub.match(a, &id, name)
	return best >= 0 && a.rules[best].allow
}

// CanSubscribe reports whether id may subscribe to filter. A shared
// subscription "$share/{group}/{filter}" is judged by its filter. An
// invalid filter is refused. Rules are tried one by one (subscribing is
// rare next to publishing).
func (a *ACL) CanSubscribe(id Identity, filter string) bool {
	if _, inner, ok, err := topic.ParseShared(filter); ok {
		if err != nil {
			return false
		}
		filter = inner
	}
	if !topic.ValidFilter([]byte(filter)) {
		return false
	}
	if a == nil || len(a.rules) == 0 {
		return true
	}
	f := strings.Split(filter, "/")
	for _, r := range a.rules {
		if !r.sub || !r.appliesTo(&id) {
			continue
		}
		if !r.namesUsable(&id) {
			if r.allow {
				continue // an allow never applies with a name it cannot use
			}
			return false // a deny then applies to everything: fail closed
		}
		p := r.substitute(&id)
		if r.allow && subset(f, p) || !r.allow && overlap(f, p) {
			return r.allow
		}
	}
	return false
}

// appliesTo reports whether r's users and clients lists admit id.
func (r *rule) appliesTo(id *Identity) bool {
	if r.users != nil {
		if _, ok := r.users[id.Username]; !ok {
			return false
		}
	}
	if r.clients != nil {
		if _, ok := r.clients[id.ClientID]; !ok {
			return false
		}
	}
	return true
}

// namesUsable reports whether id has usable values for r's placeholders.
func (r *rule) namesUsable(id *Identity) bool {
	return (!r.needsUser || usableName(id.Username)) && (!r.needsClient || usableName(id.ClientID))
}

// usableName reports whether s may be substituted into a pattern: a
// non-empty single level that is not, and does not contain, a wildcard.
func usableName(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '+', '#', '/', 0:
			return false
		}
	}
	return s != ""
}

// substitute returns the pattern's levels with id's names in place of the
// placeholders.
func (r *rule) substitute(id *Identity) []string {
	if r.plain != nil {
		return r.plain
	}
	out := make([]string, len(r.levels))
	for i, lv := range r.levels {
		if lv.parts == nil {
			out[i] = lv.text
			continue
		}
		var b strings.Builder
		for _, p := range lv.parts {
			b.WriteString(p.value(id))
		}
		out[i] = b.String()
	}
	return out
}

// value returns the text p stands for.
func (p part) value(id *Identity) string {
	switch p.ph {
	case 'u':
		return id.Username
	case 'c':
		return id.ClientID
	}
	return p.lit
}

// subset reports whether every topic name filter f matches is matched by
// pattern p (both given as levels).
func subset(f, p []string) bool {
	for i := 0; ; i++ {
		if i < len(p) && p[i] == "#" {
			return i > 0 || !isDollar(f[0])
		}
		if i == len(f) || i == len(p) {
			return i == len(f) && i == len(p)
		}
		switch fl, pl := f[i], p[i]; {
		case fl == "#":
			// f matches its parent and every longer name; "+/#" from here
			// matches the longer names only, so only if f has no parent.
			return pl == "+" && len(p) == i+2 && p[i+1] == "#" && !hasParent(f, i)
		case fl == "+":
			if pl != "+" {
				return false
			}
		case pl == "+":
			if i == 0 && isDollar(fl) {
				return false
			}
		case pl != fl:
			return false
		}
	}
}

// overlap reports whether some topic name is matched by both filter f and
// pattern p (both given as levels).
func overlap(f, p []string) bool {
	for i := 0; ; i++ {
		fh, ph := i < len(f) && f[i] == "#", i < len(p) && p[i] == "#"
		if fh || ph {
			if i == 0 {
				// A leading wildcard matches no '$' topic [MQTT-4.7.2-1].
				return !(fh && isDollar(p[0]) || ph && isDollar(f[0]))
			}
			// If the other side ends here, only the parent is shared.
			switch {
			case fh && i == len(p):
				return hasParent(f, i)
			case ph && i == len(f):
				return hasParent(p, i)
			}
			return true
		}
		if i == len(f) || i == len(p) {
			return i == len(f) && i == len(p)
		}
		fl, pl := f[i], p[i]
		switch {
		case fl == "+" || pl == "+":
			if i == 0 && (isDollar(fl) || isDollar(pl)) {
				return false
			}
		case fl != pl:
			return false
		}
	}
}

// hasParent reports whether the levels before a '#' at level i form a
// valid topic name: not when '#' is the first level, nor when it follows
// one empty level (the name would be "").
func hasParent(levels []string, i int) bool {
	return i > 1 || i == 1 && levels[0] != ""
}

// isDollar reports whether a filter level is a literal starting with '$'.
func isDollar(level string) bool {
	return len(level) > 0 && level[0] == '$'
}
