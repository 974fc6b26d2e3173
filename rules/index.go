package rules

import "strings"

// index finds the rules whose filters match a topic in one walk of the
// topic's levels through a trie of the filters, so routing costs grow with
// the topic's depth and the matching rules, not with the rules loaded. It
// is built once per Engine and read-only afterwards: no locks.
type index struct {
	root inode
}

// inode is one filter level. Literal children sit in a short slice,
// compared in turn, until there are more than maxKids of them; then in a
// map. Most levels have few children, and comparing a few short strings
// beats hashing.
type inode struct {
	kids     []kid
	children map[string]*inode // all literal children once len > maxKids
	plus     *inode            // '+' next level
	hash     *inode            // '#' last level
	rules    []int32           // rules whose filter ends here
}

type kid struct {
	level string
	node  *inode
}

const maxKids = 8

// child returns the literal child for level, or nil.
func (n *inode) child(level string) *inode {
	if n.children != nil {
		return n.children[level]
	}
	for i := range n.kids {
		if n.kids[i].level == level {
			return n.kids[i].node
		}
	}
	return nil
}

// addChild creates the literal child for level.
func (n *inode) addChild(level string) *inode {
	c := &inode{}
	n.kids = append(n.kids, kid{level, c})
	if len(n.kids) > maxKids {
		if n.children == nil {
			n.children = make(map[string]*inode, len(n.kids))
			for _, k := range n.kids {
				n.children[k.level] = k.node
			}
		}
		n.children[level] = c
	}
	return c
}

// add indexes filter (valid, not shared) for rule r.
func (x *index) add(filter string, r int32) {
	n := &x.root
	for {
		level, rest, more := strings.Cut(filter, "/")
		var next **inode
		switch level {
		case "+":
			next = &n.plus
		case "#":
			next = &n.hash
		}
		if next != nil {
			if *next == nil {
				*next = &inode{}
			}
			n = *next
		} else {
			c := n.child(level)
			if c == nil {
				c = n.addChild(level)
			}
			n = c
		}
		if !more {
			break
		}
		filter = rest
	}
	for _, have := range n.rules {
		if have == r {
			return
		}
	}
	n.rules = append(n.rules, r)
}

// match appends the indexes of the rules matching name to dst, sorted and
// without duplicates. A filter starting with a wildcard does not match a
// topic starting with '$' [MQTT-4.7.2-1].
func (x *index) match(name string, dst []int32) []int32 {
	if name == "" {
		return dst
	}
	start := len(dst)
	if name[0] == '$' {
		level, rest, more := strings.Cut(name, "/")
		if c := x.root.child(level); c != nil {
			dst = c.match(rest, more, dst)
		}
	} else {
		dst = x.root.match(name, true, dst)
	}
	return sortUnique(dst, start)
}

// match walks the remaining levels; more is false once every level of the
// topic has been consumed.
func (n *inode) match(name string, more bool, dst []int32) []int32 {
	if n.hash != nil {
		dst = append(dst, n.hash.rules...) // '#' also matches the parent level
	}
	if !more {
		return append(dst, n.rules...)
	}
	level, rest, next := name, "", false
	if i := strings.IndexByte(name, '/'); i >= 0 {
		level, rest, next = name[:i], name[i+1:], true
	}
	if n.plus != nil {
		dst = n.plus.match(rest, next, dst)
	}
	if c := n.child(level); c != nil {
		dst = c.match(rest, next, dst)
	}
	return dst
}

// sortUnique sorts dst[start:] (rule order) and drops duplicates (a rule
// with two matching filters runs once). The run is short: insertion sort.
func sortUnique(dst []int32, start int) []int32 {
	s := dst[start:]
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	w := 0
	for i, v := range s {
		if i == 0 || v != s[w-1] {
			s[w] = v
			w++
		}
	}
	return dst[:start+w]
}
