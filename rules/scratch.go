package rules

import (
	"fmt"
	"sync"

	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/internal/recycle"
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
	// maps are the payload's objects, handed out in the order the last
	// payload used them (the same shape gets maps of the right size).
	maps recycle.Maps
	// floats, strs and hdrs are the slabs numbers, strings and arrays'
	// slice headers are boxed into.
	floats recycle.Slabs[float64]
	strs   recycle.Slabs[string]
	hdrs   recycle.Slabs[[]any]
	// elems are chunks arrays' elements are carved from.
	elems  [][]any
	nelems int
	inUse  bool
}

// Bounds on what a Scratch keeps: a payload of a very different shape
// (a 10,000-member object, say) is built in fresh memory that is dropped
// instead of kept in every pooled Scratch.
const (
	maxRecycledEntry = 64 // members of a map kept for reuse
	maxScratchChunks = 16
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
	s.maps.Reset(maxRecycledEntry)
	s.floats.Reset(false)
	s.strs.Reset(true) // no references into the last payload
	s.hdrs.Reset(true)
	for i, e := range s.elems[:s.nelems] {
		clear(e)
		if cap(e) > elemChunk {
			s.elems[i] = nil // a long array's chunk
		} else {
			s.elems[i] = e[:0]
		}
	}
	s.nelems = 0
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
	case len(s.elems) < maxScratchChunks:
		s.elems = append(s.elems, c[:n])
	default:
		return c[:n:n] // not kept
	}
	s.nelems++
	return c[:n:n]
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
