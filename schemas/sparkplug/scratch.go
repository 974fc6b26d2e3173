package sparkplug

import (
	"maps"
	"sync"

	"github.com/sluicehq/sluice/internal/recycle"
)

// A Scratch is the memory one decoded message is built in, kept for the
// next message once the first is no longer used: its metric maps, its
// metrics list and its slab. Twenty metric maps cost more to allocate
// (and to collect) than the whole protobuf decode; a released Scratch
// hands them cleared to the next message, which then allocates nothing
// when it has the same shape. The same technique as rules.Scratch.
//
// Values decoded with a Scratch are valid until its Release; the pipeline
// releases after routing (see ingest.RecyclingDecoder).
type Scratch struct {
	maps    recycle.Maps // in the order the last message used them
	metrics []any
	words   []uint64
	strs    []string
	sl      slab // the slab over words and strs
	inUse   bool
}

// Bounds on what a Scratch keeps, so that an unusual message does not
// leave large buffers in every pooled Scratch.
const (
	maxScratchMaps   = 256
	maxRecycledEntry = 16   // members of a map kept for reuse
	maxScratchList   = 1024 // metrics, numbers or strings kept for reuse
)

var scratches = sync.Pool{New: func() any { return &Scratch{maps: recycle.Maps{Keep: maxScratchMaps}} }}

// Release gives s back for the next message: every value decoded with it
// must be out of use. Releasing twice is a no-op.
func (s *Scratch) Release() {
	if s == nil || !s.inUse {
		return
	}
	s.inUse = false
	s.maps.Reset(maxRecycledEntry)
	s.sl = slab{}
	clear(s.metrics[:cap(s.metrics)])
	clear(s.strs[:cap(s.strs)])
	if cap(s.metrics) > maxScratchList {
		s.metrics = nil
	}
	if cap(s.words) > maxScratchList {
		s.words = nil
	}
	if cap(s.strs) > maxScratchList {
		s.strs = nil
	}
	scratches.Put(s)
}

// slab returns a slab with room for words numbers and strs strings in
// s's buffers.
func (s *Scratch) slab(words, strs int) *slab {
	if cap(s.words) < words {
		s.words = make([]uint64, 0, words)
	}
	if cap(s.strs) < strs {
		s.strs = make([]string, 0, strs)
	}
	s.sl = slab{words: s.words[:0], strs: s.strs[:0], sc: s}
	return &s.sl
}

// list returns a zeroed, non-nil list of n values; appending to it
// copies.
func (s *Scratch) list(n int) []any {
	if s.metrics == nil || cap(s.metrics) < n {
		s.metrics = make([]any, max(n, 8))
	}
	return s.metrics[:n:n]
}

// DecodeScratch is Decode building the value in a Scratch, returned for
// the caller to release (nil on error and for STATE messages, which
// recycle nothing).
func (d *Decoder) DecodeScratch(topicName string, payload []byte) (any, *Scratch, error) {
	s := scratches.Get().(*Scratch)
	s.inUse = true
	v, err := d.decode(topicName, payload, s)
	if err != nil {
		s.Release()
		return nil, nil, err
	}
	if s.maps.Used() == 0 { // STATE
		s.Release()
		return v, nil, nil
	}
	return v, s, nil
}

// newMap returns an empty map for about n members, recycled when s has
// a Scratch.
func (s *slab) newMap(n int) map[string]any {
	if s != nil && s.sc != nil {
		return s.sc.maps.Next(n)
	}
	return make(map[string]any, n)
}

// fromTemplate returns a metric map holding t's members: a clone of its
// map, or a recycled map they are set in when s has a Scratch (ranging
// over a map costs more than setting three members).
func (s *slab) fromTemplate(t *metricTemplate) map[string]any {
	if s != nil && s.sc != nil {
		m := s.sc.maps.Next(5)
		m["name"], m["datatype"], m["alias"] = t.name, t.datatype, t.alias
		return m
	}
	return maps.Clone(t.m)
}

// list returns a zeroed list of n values.
func (s *slab) list(n int) []any {
	if s != nil && s.sc != nil {
		return s.sc.list(n)
	}
	return make([]any, n)
}
