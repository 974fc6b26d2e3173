package rules

import (
	"fmt"
	"sync"

	"github.com/sluicehq/sluice/ingest"
)

// A Scratch is the memory one decoded JSON payload is built in, kept for
// the next payload once the first is no longer used. Building the maps of
// a payload (Go's map allocation: a header and an 8-slot group for a small
// object, a directory and tables past 8 members) and boxing its numbers
// cost more than scanning it; a released Scratch hands its cleared maps
// and slabs to the next decode, which then allocates nothing for a payload
// of the same shape.
//
// Values decoded with a Scratch are valid until its Release: the pipeline
// releases after routing, when the rules have encoded their outputs and
// nothing refers to the payload (see ingest.RecyclingDecoder). A Scratch
// serves one payload at a time.
type Scratch struct {
	// maps are the objects of the payloads decoded so far, in the order
	// they were built; the next payload takes them in that order (the
	// same shape gets maps of the right size back).
	maps  []map[string]any
	nmaps int
	// floats and strs are the slabs numbers and strings are boxed into.
	floats  [][]float64
	nfloats int
	strs    [][]string
	nstrs   int
	// elems are chunks arrays' elements are carved from, and hdrs slabs
	// their slice headers are boxed into.
	elems  [][]any
	nelems int
	hdrs   [][][]any
	nhdrs  int
	inUse  bool
}

// Bounds on what a Scratch keeps: a payload of a very different shape
// (a 10,000-member object, say) is built in fresh memory that is dropped
// instead of kept in every pooled Scratch.
const (
	maxScratchMaps   = 64
	maxScratchSlabs  = 16
	maxRecycledEntry = 64 // members of a map kept for reuse
	elemChunk        = 64 // array elements per chunk; longer arrays get a chunk of their own
)

var scratches = sync.Pool{New: func() any { return new(Scratch) }}

// NewScratch returns an empty Scratch, recycled when one was released.
func NewScratch() *Scratch {
	s := scratches.Get().(*Scratch)
	s.inUse = true
	return s
}

// Release gives s back for the next payload: every value decoded with it
// must be out of use. Releasing twice is a no-op.
func (s *Scratch) Release() {
	if s == nil || !s.inUse {
		return
	}
	s.inUse = false
	s.reset()
	scratches.Put(s)
}

// reset empties s for the next payload.
func (s *Scratch) reset() {
	for i, m := range s.maps[:s.nmaps] {
		if len(m) > maxRecycledEntry {
			s.maps[i] = nil // clearing a large map costs its capacity; drop it
			continue
		}
		clear(m)
	}
	for _, st := range s.strs[:s.nstrs] {
		clear(st[:cap(st)]) // no references into the last payload
	}
	for i, e := range s.elems[:s.nelems] {
		clear(e)
		if cap(e) > elemChunk {
			s.elems[i] = nil // a long array's chunk
		} else {
			s.elems[i] = e[:0]
		}
	}
	for _, h := range s.hdrs[:s.nhdrs] {
		clear(h[:cap(h)])
	}
	s.nmaps, s.nfloats, s.nstrs, s.nelems, s.nhdrs = 0, 0, 0, 0, 0
}

// newMap returns an empty map for an object of n members.
func (s *Scratch) newMap(n int) map[string]any {
	if s.nmaps < len(s.maps) {
		m := s.maps[s.nmaps]
		if m == nil {
			m = make(map[string]any, n)
			s.maps[s.nmaps] = m
		}
		s.nmaps++
		return m
	}
	m := make(map[string]any, n)
	if len(s.maps) < maxScratchMaps {
		s.maps = append(s.maps, m)
		s.nmaps++
	}
	return m
}

// floatSlab returns an empty slab of slabLen floats.
func (s *Scratch) floatSlab() []float64 {
	if s.nfloats < len(s.floats) {
		f := s.floats[s.nfloats][:0]
		s.nfloats++
		return f
	}
	f := make([]float64, 0, slabLen)
	if len(s.floats) < maxScratchSlabs {
		s.floats = append(s.floats, f)
		s.nfloats++
	}
	return f
}

// stringSlab is floatSlab for strings.
func (s *Scratch) stringSlab() []string {
	if s.nstrs < len(s.strs) {
		st := s.strs[s.nstrs][:0]
		s.nstrs++
		return st
	}
	st := make([]string, 0, slabLen)
	if len(s.strs) < maxScratchSlabs {
		s.strs = append(s.strs, st)
		s.nstrs++
	}
	return st
}

// elemsFor returns room for an array of n elements, carved from the
// current chunk (or a next one). Its capacity is n: appending to the
// array copies it.
func (s *Scratch) elemsFor(n int) []any {
	if s.nelems > 0 {
		cur := s.elems[s.nelems-1]
		if l := len(cur); cap(cur)-l >= n {
			s.elems[s.nelems-1] = cur[:l+n]
			return cur[l : l+n : l+n]
		}
	}
	var c []any
	if s.nelems < len(s.elems) && cap(s.elems[s.nelems]) >= n {
		c = s.elems[s.nelems][:0]
	} else {
		c = make([]any, 0, max(elemChunk, n))
	}
	switch {
	case s.nelems < len(s.elems):
		s.elems[s.nelems] = c[:n]
	case len(s.elems) < maxScratchSlabs:
		s.elems = append(s.elems, c[:n])
	default:
		return c[:n:n] // not kept
	}
	s.nelems++
	return c[:n:n]
}

// headerSlab is floatSlab for the slice headers of arrays.
func (s *Scratch) headerSlab() [][]any {
	if s.nhdrs < len(s.hdrs) {
		h := s.hdrs[s.nhdrs][:0]
		s.nhdrs++
		return h
	}
	h := make([][]any, 0, slabLen)
	if len(s.hdrs) < maxScratchSlabs {
		s.hdrs = append(s.hdrs, h)
		s.nhdrs++
	}
	return h
}

// sliceTypeWord is the type word of []any.
var sliceTypeWord = typeWord([]any(nil))

// DecodeJSON is the package's DecodeJSON into s.
func (s *Scratch) DecodeJSON(b []byte) (any, error) { return decodeJSON(b, nil, false, s) }

// DecodeJSONKeys is the package's DecodeJSONKeys into s.
func (s *Scratch) DecodeJSONKeys(b []byte, keys []string) (any, error) {
	return decodeJSON(b, keys, true, s)
}

var _ ingest.RecyclingDecoder = JSONDecoder{}

// DecodeRecycled implements ingest.RecyclingDecoder: Decode into a
// Scratch, returned as the Releaser (nil on error).
func (j JSONDecoder) DecodeRecycled(_ string, payload []byte) (any, ingest.Releaser, error) {
	if !mayStartJSON(payload) {
		return nil, nil, ErrNotJSON
	}
	s := NewScratch()
	v, err := j.ValueIn(payload, s)
	if err != nil {
		s.Release()
		return nil, nil, fmt.Errorf("decoding JSON payload: %w", err)
	}
	return v, s, nil
}

// ValueIn is Value decoding into s.
func (j JSONDecoder) ValueIn(payload []byte, s *Scratch) (any, error) {
	if j.Keys != nil {
		if keys, all := j.Keys(); !all {
			return decodeJSON(payload, keys, true, s)
		}
	}
	return decodeJSON(payload, nil, false, s)
}
