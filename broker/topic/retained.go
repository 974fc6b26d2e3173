package topic

import "sync"

// Retained stores one value per topic name, typically the retained message
// of that topic, indexed in a trie of topic levels so that Match visits only
// the topics a filter can reach instead of scanning every entry. The zero
// value is ready to use; it is safe for concurrent use.
type Retained[T any] struct {
	mu   sync.RWMutex
	root rnode[T]
	n    int
}

// rnode is one topic level. topic is kept on the node so visits hand out
// the stored name without rebuilding it.
type rnode[T any] struct {
	children map[string]*rnode[T]
	topic    string
	val      T
	has      bool
}

// NewRetained returns an empty Retained.
func NewRetained[T any]() *Retained[T] {
	return &Retained[T]{}
}

// Set stores v for topic, replacing any previous value. topic must be a
// valid topic name (see ValidName); the string is retained.
func (r *Retained[T]) Set(topic string, v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := &r.root
	rest := topic
	for {
		level, tail, more := cut(rest)
		c := n.children[level]
		if c == nil {
			if n.children == nil {
				n.children = make(map[string]*rnode[T])
			}
			c = &rnode[T]{}
			n.children[level] = c
		}
		n = c
		if !more {
			break
		}
		rest = tail
	}
	if !n.has {
		r.n++
	}
	n.topic, n.val, n.has = topic, v, true
}

// Delete removes the value of topic, if any, pruning emptied levels.
func (r *Retained[T]) Delete(topic string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.root.delete(topic) {
		r.n--
	}
}

// delete removes the value at the rest of the topic below n and reports
// whether one existed.
func (n *rnode[T]) delete(rest string) bool {
	level, tail, more := cut(rest)
	c := n.children[level]
	if c == nil {
		return false
	}
	var ok bool
	if more {
		ok = c.delete(tail)
	} else if c.has {
		var zero T
		c.topic, c.val, c.has = "", zero, false
		ok = true
	}
	if ok && !c.has && len(c.children) == 0 {
		delete(n.children, level)
	}
	return ok
}

// Get returns the value stored for topic.
func (r *Retained[T]) Get(topic string) (T, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := &r.root
	rest := topic
	for {
		level, tail, more := cut(rest)
		if n = n.children[level]; n == nil {
			var zero T
			return zero, false
		}
		if !more {
			break
		}
		rest = tail
	}
	return n.val, n.has
}

// Len returns the number of topics with a value.
func (r *Retained[T]) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.n
}

// Match calls fn for every stored topic matching filter, in no particular
// order, until fn returns false. A filter whose first level is a wildcard
// does not reach topics starting with '$' [MQTT-4.7.2-1]; a shared filter
// matches as its inner filter and an invalid one matches nothing. The walk
// follows only the trie branches the filter can reach.
//
// fn runs under the read lock: it must not call Set or Delete and should
// not block (copy what it needs and act after Match returns), since a
// waiting writer holds up every later reader.
func (r *Retained[T]) Match(filter string, fn func(topic string, v T) bool) {
	if _, inner, ok, err := ParseShared(filter); ok {
		if err != nil {
			return
		}
		filter = inner
	}
	if !validPlainFilter(filter) {
		return
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	r.root.match(filter, 0, true, fn)
}

// match visits the values below n matching filter from fpos on (fpos >
// len(filter) once every level is consumed); root is true at the first
// level, where wildcards skip '$' topics. It reports whether to continue.
func (n *rnode[T]) match(filter string, fpos int, root bool, fn func(string, T) bool) bool {
	if fpos > len(filter) {
		return !n.has || fn(n.topic, n.val)
	}
	end := levelEnd(filter, fpos)
	switch level := filter[fpos:end]; level {
	case "#":
		// '#' matches the parent level too: "a/#" matches "a".
		if n.has && !fn(n.topic, n.val) {
			return false
		}
		for k, c := range n.children {
			if root && isDollar(k) {
				continue
			}
			if !c.all(fn) {
				return false
			}
		}
	case "+":
		for k, c := range n.children {
			if root && isDollar(k) {
				continue
			}
			if !c.match(filter, end+1, false, fn) {
				return false
			}
		}
	default:
		if c := n.children[level]; c != nil {
			return c.match(filter, end+1, false, fn)
		}
	}
	return true
}

func isDollar(level string) bool {
	return len(level) > 0 && level[0] == '$'
}

// All calls fn for every stored topic, '$' topics included, in no
// particular order, until fn returns false. fn runs under the read lock
// with the same restrictions as for Match.
func (r *Retained[T]) All(fn func(topic string, v T) bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	r.root.all(fn)
}

// all visits n and every value below it; it reports whether to continue.
func (n *rnode[T]) all(fn func(string, T) bool) bool {
	if n.has && !fn(n.topic, n.val) {
		return false
	}
	for _, c := range n.children {
		if !c.all(fn) {
			return false
		}
	}
	return true
}
