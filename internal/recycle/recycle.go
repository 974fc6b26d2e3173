// Package recycle keeps the memory decoded payloads are built in for the
// next payload of the same shape: maps handed out in the order the last
// payload used them, and fixed-size slabs values are boxed into. The
// decoders' Scratch types (rules.Scratch, sparkplug.Scratch) are made of
// these; see rules/DESIGN.md, "Recycled decoding".
//
// Nothing here is safe for concurrent use: one payload at a time.
package recycle

import "cmp"

// Maps hands out maps for one payload's objects and takes them back
// cleared. The zero value is ready to use.
type Maps struct {
	maps []map[string]any
	n    int // handed out since the last Reset
	// Keep bounds how many maps are kept (0: 64).
	Keep int
}

// Next returns an empty map for about hint members: the map handed out at
// the same position for the last payload when there is one.
func (m *Maps) Next(hint int) map[string]any {
	if m.n < len(m.maps) {
		mp := m.maps[m.n]
		if mp == nil {
			mp = make(map[string]any, hint)
			m.maps[m.n] = mp
		}
		m.n++
		return mp
	}
	mp := make(map[string]any, hint)
	if len(m.maps) < cmp.Or(m.Keep, 64) {
		m.maps = append(m.maps, mp)
		m.n++
	}
	return mp
}

// Used reports how many maps were handed out since the last Reset.
func (m *Maps) Used() int { return m.n }

// Reset takes back every map handed out: maps of at most maxEntries
// members are cleared for reuse, larger ones dropped (clearing costs a
// map's capacity, and a pooled Scratch should not pin it).
func (m *Maps) Reset(maxEntries int) {
	for i, mp := range m.maps[:m.n] {
		if len(mp) > maxEntries {
			m.maps[i] = nil
			continue
		}
		clear(mp)
	}
	m.n = 0
}

// Slabs hands out empty slabs of Size values and takes them back. The
// zero value is ready to use.
type Slabs[T any] struct {
	slabs [][]T
	n     int
	// Size is the capacity of each slab (0: 16).
	Size int
	// Keep bounds how many slabs are kept (0: 16).
	Keep int
}

// Next returns an empty slab of capacity Size. Values appended to it stay
// where they are until Reset: it is never grown in place.
func (s *Slabs[T]) Next() []T {
	if s.n < len(s.slabs) {
		sl := s.slabs[s.n][:0]
		s.n++
		return sl
	}
	sl := make([]T, 0, cmp.Or(s.Size, 16))
	if len(s.slabs) < cmp.Or(s.Keep, 16) {
		s.slabs = append(s.slabs, sl)
		s.n++
	}
	return sl
}

// Reset takes back every slab handed out, zeroing them when zero is set
// (a slab of pointers must not keep the last payload's memory alive).
func (s *Slabs[T]) Reset(zero bool) {
	if zero {
		for _, sl := range s.slabs[:s.n] {
			clear(sl[:cap(sl)])
		}
	}
	s.n = 0
}
