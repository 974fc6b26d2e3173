package auth

import "strings"

// pubIndex finds the first publish rule matching a topic name in one walk
// of a level trie holding every publish rule, instead of trying the rules
// one by one. Each rule is stored at the node its pattern ends on; a match
// collects the lowest-numbered applicable rule over all nodes the name
// reaches. Placeholder levels are edges checked against the identity's
// names at match time, so one index serves every identity.
type pubIndex struct {
	root pubNode
	// denyAll are the publish denies with placeholders, in order: they
	// match every topic for an identity lacking a usable name.
	denyAll []int
}

// pubNode is one level of the trie.
type pubNode struct {
	lit  map[string]*pubNode // literal levels
	plus *pubNode            // '+'
	tmpl []tmplEdge          // levels with placeholders
	hash []int               // rules ending in '#' here, ascending
	end  []int               // rules ending here, ascending
	min  int                 // the lowest rule at or below this node
}

// tmplEdge is a level with placeholders and the node it leads to.
type tmplEdge struct {
	key   string // the level as written, for sharing the edge
	parts []part
	next  *pubNode
}

// newPubIndex indexes the publish rules of rules.
func newPubIndex(rules []*rule) *pubIndex {
	x := &pubIndex{}
	for i, r := range rules {
		if !r.pub {
			continue
		}
		if !r.allow && (r.needsUser || r.needsClient) {
			x.denyAll = append(x.denyAll, i)
		}
		n := &x.root
		for j, lv := range r.levels {
			if lv.parts == nil && lv.text == "#" && j == len(r.levels)-1 {
				n.hash = append(n.hash, i)
				n = nil
				break
			}
			n = n.child(lv)
		}
		if n != nil {
			n.end = append(n.end, i)
		}
	}
	x.root.setMin()
	return x
}

// setMin computes min for n and the nodes below it. A node holds no rule
// only if it has children, so min is always a rule index.
func (n *pubNode) setMin() int {
	n.min = int(^uint(0) >> 1)
	if len(n.hash) > 0 {
		n.min = min(n.min, n.hash[0])
	}
	if len(n.end) > 0 {
		n.min = min(n.min, n.end[0])
	}
	for _, c := range n.lit {
		n.min = min(n.min, c.setMin())
	}
	if n.plus != nil {
		n.min = min(n.min, n.plus.setMin())
	}
	for _, e := range n.tmpl {
		n.min = min(n.min, e.next.setMin())
	}
	return n.min
}

// child returns (creating) the node below n for pattern level lv.
func (n *pubNode) child(lv patLevel) *pubNode {
	switch {
	case lv.parts != nil:
		for _, e := range n.tmpl {
			if e.key == lv.key() {
				return e.next
			}
		}
		e := tmplEdge{key: lv.key(), parts: lv.parts, next: &pubNode{}}
		n.tmpl = append(n.tmpl, e)
		return e.next
	case lv.text == "+":
		if n.plus == nil {
			n.plus = &pubNode{}
		}
		return n.plus
	}
	if n.lit == nil {
		n.lit = make(map[string]*pubNode)
	}
	c := n.lit[lv.text]
	if c == nil {
		c = &pubNode{}
		n.lit[lv.text] = c
	}
	return c
}

// key renders a placeholder level back to its pattern form.
func (lv patLevel) key() string {
	var b strings.Builder
	for _, p := range lv.parts {
		switch p.ph {
		case 0:
			b.WriteString(strings.ReplaceAll(p.lit, "%", "%%"))
		default:
			b.WriteByte('%')
			b.WriteByte(p.ph)
		}
	}
	return b.String()
}

// match returns the index of the first rule of a that decides whether id
// may publish to name, or -1.
func (x *pubIndex) match(a *ACL, id *Identity, name string) int {
	best := -1
	for _, i := range x.denyAll {
		if r := a.rules[i]; r.appliesTo(id) && !r.namesUsable(id) {
			best = i
			break
		}
	}
	w := walker{a: a, id: id, name: name, best: best}
	dollar := len(name) > 0 && name[0] == '$'
	w.walk(&x.root, 0, dollar)
	return w.best
}

// walker is the state of one match.
type walker struct {
	a    *ACL
	id   *Identity
	name string
	best int // lowest applicable rule found so far, -1 for none
}

// walk visits node n with the name's levels from index ni on. noWild is
// set at the root for a '$' name, which wildcards do not match
// [MQTT-4.7.2-1].
func (w *walker) walk(n *pubNode, ni int, noWild bool) {
	if w.best >= 0 && n.min >= w.best {
		return // nothing here can come before what was found
	}
	if !noWild {
		w.consider(n.hash) // '#' also matches the parent level
	}
	if ni > len(w.name) {
		w.consider(n.end)
		return
	}
	end := strings.IndexByte(w.name[ni:], '/')
	if end < 0 {
		end = len(w.name)
	} else {
		end += ni
	}
	level := w.name[ni:end]
	if c := n.lit[level]; c != nil {
		w.walk(c, end+1, false)
	}
	if n.plus != nil && !noWild {
		w.walk(n.plus, end+1, false)
	}
	for i := range n.tmpl {
		if e := &n.tmpl[i]; matchTemplate(e.parts, level, w.id) {
			w.walk(e.next, end+1, false)
		}
	}
}

// consider records the first rule of rules (ascending) that applies to
// the identity, if it comes before the best so far.
func (w *walker) consider(rules []int) {
	for _, i := range rules {
		if w.best >= 0 && i >= w.best {
			return
		}
		if w.a.rules[i].appliesTo(w.id) {
			w.best = i
			return
		}
	}
}

// matchTemplate reports whether level is the placeholder level parts with
// id's names substituted. A name that is not usable matches nothing.
func matchTemplate(parts []part, level string, id *Identity) bool {
	for _, p := range parts {
		v := p.value(id)
		if p.ph != 0 && !usableName(v) {
			return false
		}
		if !strings.HasPrefix(level, v) {
			return false
		}
		level = level[len(v):]
	}
	return level == ""
}
