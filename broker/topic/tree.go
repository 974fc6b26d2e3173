package topic

import (
	"sort"
	"strings"
	"sync"
)

// Sub is one subscription.
type Sub struct {
	// ClientID identifies the subscribing session.
	ClientID string
	// Filter is the topic filter without the $share/{group}/ prefix.
	Filter string
	// Group is the shared subscription group; "" when not shared.
	Group string
	// QoS is the maximum QoS granted.
	QoS byte
	// NoLocal asks not to receive the client's own publications (v5).
	NoLocal bool
	// RetainAsPublished keeps the RETAIN flag on forwarded messages (v5).
	RetainAsPublished bool
	// RetainHandling is the v5 retain handling option (0, 1 or 2).
	RetainHandling byte
	// ID is the v5 subscription identifier, 0 = none.
	ID uint32
}

// Tree indexes subscriptions in a trie of topic levels for matching. It is
// safe for concurrent use: Match takes a read lock, so many publishers match
// in parallel while Add and Remove take the write lock briefly.
type Tree struct {
	mu      sync.RWMutex
	root    node
	count   int
	clients map[string]map[subKey]struct{} // ClientID -> its subscriptions
}

// subKey names one of a client's subscriptions.
type subKey struct {
	group, filter string
}

// node is one filter level. Children are created lazily so that leaves,
// the bulk of a large tree, cost only the struct.
type node struct {
	children map[string]*node // literal next levels
	plus     *node            // '+' next level
	hash     *node            // '#' next (and last) level
	subs     []Sub            // non-shared subscriptions ending here
	subIdx   map[string]int   // ClientID -> index in subs
	groups   []*group         // shared groups ending here
}

// group is one shared subscription (group, filter): its members are kept
// together so Match appends them contiguously.
type group struct {
	name    string
	members []Sub
	idx     map[string]int // ClientID -> index in members
}

// NewTree returns an empty Tree.
func NewTree() *Tree {
	return &Tree{clients: make(map[string]map[subKey]struct{})}
}

// Add inserts or replaces the subscription keyed by (ClientID, Group,
// Filter); replaced reports whether one existed. s.Filter must be a valid
// filter without the $share/ prefix (see ValidFilter and ParseShared).
func (t *Tree) Add(s Sub) (replaced bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := &t.root
	rest := s.Filter
	for {
		level, tail, more := cut(rest)
		n = n.child(level, !more)
		if !more {
			break
		}
		rest = tail
	}
	if s.Group == "" {
		replaced = n.put(&n.subs, &n.subIdx, s)
	} else {
		g := n.group(s.Group)
		if g == nil {
			g = &group{name: s.Group}
			n.groups = append(n.groups, g)
		}
		replaced = n.put(&g.members, &g.idx, s)
	}
	if !replaced {
		t.count++
		cs := t.clients[s.ClientID]
		if cs == nil {
			cs = make(map[subKey]struct{})
			t.clients[s.ClientID] = cs
		}
		cs[subKey{s.Group, s.Filter}] = struct{}{}
	}
	return replaced
}

// put stores s in list, replacing the entry of the same client.
func (n *node) put(list *[]Sub, idx *map[string]int, s Sub) bool {
	if i, ok := (*idx)[s.ClientID]; ok {
		(*list)[i] = s
		return true
	}
	if *idx == nil {
		*idx = make(map[string]int)
	}
	(*idx)[s.ClientID] = len(*list)
	*list = append(*list, s)
	return false
}

// child returns (creating it) the child for one filter level; last tells
// whether it is the final level, where "#" is the multi-level wildcard.
func (n *node) child(level string, last bool) *node {
	switch {
	case level == "+":
		if n.plus == nil {
			n.plus = &node{}
		}
		return n.plus
	case level == "#" && last:
		if n.hash == nil {
			n.hash = &node{}
		}
		return n.hash
	}
	c := n.children[level]
	if c == nil {
		if n.children == nil {
			n.children = make(map[string]*node)
		}
		c = &node{}
		n.children[level] = c
	}
	return c
}

// group returns the shared group named name at n, or nil.
func (n *node) group(name string) *group {
	for _, g := range n.groups {
		if g.name == name {
			return g
		}
	}
	return nil
}

// empty reports whether n holds nothing and can be pruned.
func (n *node) empty() bool {
	return len(n.children) == 0 && n.plus == nil && n.hash == nil &&
		len(n.subs) == 0 && len(n.groups) == 0
}

// cut splits the first level off a topic or filter; more is false when
// level is the last one.
func cut(s string) (level, rest string, more bool) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// Remove deletes the subscription keyed by (clientID, group, filter) and
// reports whether it existed. Emptied trie nodes are pruned.
func (t *Tree) Remove(clientID, group, filter string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.remove(clientID, group, filter)
}

func (t *Tree) remove(clientID, group, filter string) bool {
	if !t.root.remove(clientID, group, filter) {
		return false
	}
	t.count--
	if cs := t.clients[clientID]; cs != nil {
		delete(cs, subKey{group, filter})
		if len(cs) == 0 {
			delete(t.clients, clientID)
		}
	}
	return true
}

// remove walks the rest of the filter from n and deletes the subscription,
// pruning children left empty on the way back up.
func (n *node) remove(clientID, groupName, rest string) bool {
	level, tail, more := cut(rest)
	var c *node
	switch {
	case level == "+":
		c = n.plus
	case level == "#" && !more:
		c = n.hash
	default:
		c = n.children[level]
	}
	if c == nil {
		return false
	}
	var ok bool
	if more {
		ok = c.remove(clientID, groupName, tail)
	} else {
		ok = c.removeSub(clientID, groupName)
	}
	if ok && c.empty() {
		switch {
		case c == n.plus:
			n.plus = nil
		case c == n.hash:
			n.hash = nil
		default:
			delete(n.children, level)
		}
	}
	return ok
}

// removeSub deletes a subscription ending at n.
func (n *node) removeSub(clientID, groupName string) bool {
	if groupName == "" {
		return swapRemove(&n.subs, n.subIdx, clientID)
	}
	for i, g := range n.groups {
		if g.name != groupName {
			continue
		}
		if !swapRemove(&g.members, g.idx, clientID) {
			return false
		}
		if len(g.members) == 0 {
			last := len(n.groups) - 1
			n.groups[i] = n.groups[last]
			n.groups[last] = nil
			n.groups = n.groups[:last]
		}
		return true
	}
	return false
}

// swapRemove deletes clientID's entry from list in O(1), moving the last
// entry into its place.
func swapRemove(list *[]Sub, idx map[string]int, clientID string) bool {
	i, ok := idx[clientID]
	if !ok {
		return false
	}
	last := len(*list) - 1
	if i != last {
		moved := (*list)[last]
		(*list)[i] = moved
		idx[moved.ClientID] = i
	}
	(*list)[last] = Sub{}
	*list = (*list)[:last]
	delete(idx, clientID)
	if len(*list) == 0 {
		*list = nil
	}
	return true
}

// RemoveClient deletes every subscription of clientID (used when a session
// ends) and returns how many there were.
func (t *Tree) RemoveClient(clientID string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	cs := t.clients[clientID]
	n := 0
	for k := range cs {
		if t.remove(clientID, k.group, k.filter) {
			n++
		}
	}
	return n
}

// Count returns the number of subscriptions.
func (t *Tree) Count() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.count
}

// ClientSubs returns the subscriptions of one client sorted by filter and
// group, for session persistence and administration.
func (t *Tree) ClientSubs(clientID string) []Sub {
	t.mu.RLock()
	defer t.mu.RUnlock()
	cs := t.clients[clientID]
	out := make([]Sub, 0, len(cs))
	for k := range cs {
		if s, ok := t.root.find(clientID, k.group, k.filter); ok {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Filter != out[j].Filter {
			return out[i].Filter < out[j].Filter
		}
		return out[i].Group < out[j].Group
	})
	return out
}

// find returns the subscription stored for (clientID, group, filter).
func (n *node) find(clientID, groupName, filter string) (Sub, bool) {
	rest := filter
	for {
		level, tail, more := cut(rest)
		switch {
		case level == "+":
			n = n.plus
		case level == "#" && !more:
			n = n.hash
		default:
			n = n.children[level]
		}
		if n == nil {
			return Sub{}, false
		}
		if !more {
			break
		}
		rest = tail
	}
	if groupName == "" {
		if i, ok := n.subIdx[clientID]; ok {
			return n.subs[i], true
		}
		return Sub{}, false
	}
	if g := n.group(groupName); g != nil {
		if i, ok := g.idx[clientID]; ok {
			return g.members[i], true
		}
	}
	return Sub{}, false
}

// Match appends to dst every subscription matching topic name and returns
// it. Non-shared subscriptions appear once per (client, filter) that
// matches, so a client with two overlapping filters appears twice. For each
// matching shared (group, filter), all members are appended contiguously
// with Group set; the broker picks one (see SharedPicker). A filter whose
// first level is a wildcard does not match a name starting with '$'
// [MQTT-4.7.2-1]. Match does not allocate unless dst must grow; topic is not
// retained.
func (t *Tree) Match(topic []byte, dst []Sub) []Sub {
	if len(topic) == 0 {
		return dst
	}
	name := view(topic)
	t.mu.RLock()
	defer t.mu.RUnlock()
	root := &t.root
	if name[0] == '$' {
		// Only literal first levels may match a '$' topic.
		if c := root.children[levelAt(name, 0)]; c != nil {
			dst = c.match(name, levelEnd(name, 0)+1, dst)
		}
		return dst
	}
	return root.match(name, 0, dst)
}

// match appends the subscriptions under n matching the levels of name from
// pos on; pos > len(name) means every level has been consumed.
func (n *node) match(name string, pos int, dst []Sub) []Sub {
	if n.hash != nil {
		// '#' matches the remaining levels, including none: "a/#" matches "a".
		dst = n.hash.appendSubs(dst)
	}
	if pos > len(name) {
		return n.appendSubs(dst)
	}
	end := levelEnd(name, pos)
	if n.plus != nil {
		dst = n.plus.match(name, end+1, dst)
	}
	if c := n.children[name[pos:end]]; c != nil {
		dst = c.match(name, end+1, dst)
	}
	return dst
}

// appendSubs appends every subscription ending at n.
func (n *node) appendSubs(dst []Sub) []Sub {
	dst = append(dst, n.subs...)
	for _, g := range n.groups {
		dst = append(dst, g.members...)
	}
	return dst
}

// levelAt returns the level of name starting at pos.
func levelAt(name string, pos int) string {
	return name[pos:levelEnd(name, pos)]
}
