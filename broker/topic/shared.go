package topic

import (
	"sync"
	"sync/atomic"
)

// DefaultMaxPickerEntries bounds a SharedPicker whose MaxEntries is zero.
const DefaultMaxPickerEntries = 1 << 16

// SharedPicker chooses one member of a shared subscription per message,
// round-robin per (group, filter), preferring members that are online. The
// zero value is ready to use and safe for concurrent use.
//
// Its counters are soft state: when more than MaxEntries (group, filter)
// pairs have been seen, all counters are dropped and start again at zero,
// which only perturbs fairness. Forget drops one pair eagerly.
type SharedPicker struct {
	// MaxEntries bounds the number of (group, filter) counters kept.
	// Default (0): DefaultMaxPickerEntries.
	MaxEntries int

	mu       sync.RWMutex
	counters map[subKey]*atomic.Uint32
}

// Pick returns the next member of the shared subscription (group, filter)
// in round-robin order, skipping members for which online returns false; a
// nil online treats every member as online. ok is false when no member is
// online: Sub is then the round-robin choice among all members (zero when
// members is empty), which the broker may queue for that offline session
// or drop. members are typically the contiguous run of one (group, filter)
// in a Tree.Match result. Pick does not allocate once the pair is known.
func (p *SharedPicker) Pick(group, filter string, members []Sub, online func(clientID string) bool) (Sub, bool) {
	switch len(members) {
	case 0:
		return Sub{}, false
	case 1:
		return members[0], online == nil || online(members[0].ClientID)
	}
	start := int((p.counter(group, filter).Add(1) - 1) % uint32(len(members)))
	if online == nil {
		return members[start], true
	}
	for i := range members {
		m := members[(start+i)%len(members)]
		if online(m.ClientID) {
			return m, true
		}
	}
	return members[start], false
}

// counter returns the round-robin counter of (group, filter), creating it.
func (p *SharedPicker) counter(group, filter string) *atomic.Uint32 {
	k := subKey{group, filter}
	p.mu.RLock()
	c := p.counters[k]
	p.mu.RUnlock()
	if c != nil {
		return c
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c = p.counters[k]; c != nil {
		return c
	}
	limit := p.MaxEntries
	if limit <= 0 {
		limit = DefaultMaxPickerEntries
	}
	if p.counters == nil || len(p.counters) >= limit {
		p.counters = make(map[subKey]*atomic.Uint32)
	}
	c = new(atomic.Uint32)
	p.counters[k] = c
	return c
}

// Forget drops the counter of (group, filter), e.g. when its last member
// unsubscribes.
func (p *SharedPicker) Forget(group, filter string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.counters, subKey{group, filter})
}

// Len returns the number of (group, filter) counters kept.
func (p *SharedPicker) Len() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.counters)
}

// NextGroup returns the length of the run of subs[0]'s shared (group,
// filter) at the start of subs: the members Tree.Match appended together.
// It returns 1 for a non-shared subscription and 0 for an empty slice, so a
// broker can walk a Match result with
//
//	for len(subs) > 0 { n := NextGroup(subs); handle(subs[:n]); subs = subs[n:] }
func NextGroup(subs []Sub) int {
	if len(subs) == 0 {
		return 0
	}
	first := subs[0]
	if first.Group == "" {
		return 1
	}
	n := 1
	for n < len(subs) && subs[n].Group == first.Group && subs[n].Filter == first.Filter {
		n++
	}
	return n
}
