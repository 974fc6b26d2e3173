package rules

import "strings"

// index finds the rules whose filters match a topic in one walk of the
// topic's levels through a trie of the filters, so routing costs grow with
// the topic's depth and the matching rules, not with the rules loaded. It
// is built once per Engine and read-only afterwards: no locks.
type index struct {
	root inode
}

// inode is one filter level.
type inode struct {
	children map[string]*inode
	plus     *inode  // '+' next level
	hash     *inode  // '#' last level
	rules    []int32 // rules whose filter ends here
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
			c := n.children[level]
			if c == nil {
				if n.children == nil {
					n.children = map[string]*inode{}
				}
				c = &inode{}
				n.children[level] = c
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
		if c := x.root.children[level]; c != nil {
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
	if c := n.children[level]; c != nil {
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
