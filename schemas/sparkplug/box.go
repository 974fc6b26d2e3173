package sparkplug

import (
	"math"
	"unsafe"
)

// A decoded message holds one boxed value per metric, and boxing a
// number or a string into an `any` allocates. A slab holds the boxed
// values of one message instead: one allocation for all its numbers and
// one for all its strings, sized by counting them first. A slab is
// reused across messages only through a Scratch, once the values boxed in
// it are released. The same technique as rules/jsondec.go's boxFloat.

// eface is the layout of an empty interface (runtime.eface).
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// Type words of the boxed scalar types, taken from boxed values.
var (
	int64TypeWord   = typeWord(int64(1 << 40))
	uint64TypeWord  = typeWord(uint64(1 << 63))
	float64TypeWord = typeWord(1.5)
	stringTypeWord  = typeWord("x")
)

func typeWord(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

// slab boxes the values of one message. A nil *slab boxes as Go does,
// one allocation per value: nested values (data sets, templates,
// properties) and Metric.Value use that.
type slab struct {
	words []uint64 // int64, uint64 and float64 values, by their bits
	strs  []string
	sc    *Scratch // supplies maps and lists too, when not nil
}

// newSlab returns a slab with room for words numbers and strs strings.
// More values than that still box correctly, into further slabs.
func newSlab(words, strs int) *slab {
	s := &slab{}
	if words > 0 {
		s.words = make([]uint64, 0, words)
	}
	if strs > 0 {
		s.strs = make([]string, 0, strs)
	}
	return s
}

// box returns an `any` of type typ (a type word above) whose data is w in
// the slab. Slab entries are never written after boxing, and the slab
// never grows in place, so the values stay as boxed.
func (s *slab) box(typ unsafe.Pointer, w uint64) any {
	if len(s.words) == cap(s.words) {
		s.words = make([]uint64, 0, max(2*cap(s.words), 8))
	}
	s.words = append(s.words, w)
	var v any
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = typ, unsafe.Pointer(&s.words[len(s.words)-1])
	return v
}

// int64 boxes x. Values 0–255 box without allocating anyway (the runtime
// keeps them boxed), so they take no room in the slab.
func (s *slab) int64(x int64) any {
	if s == nil || uint64(x) < 256 {
		return x
	}
	return s.box(int64TypeWord, uint64(x))
}

// int boxes u as intValue does: int64, or uint64 beyond math.MaxInt64.
func (s *slab) int(u uint64) any {
	if u > math.MaxInt64 {
		if s == nil {
			return u
		}
		return s.box(uint64TypeWord, u)
	}
	return s.int64(int64(u))
}

// float64 boxes f.
func (s *slab) float64(f float64) any {
	if s == nil {
		return f
	}
	return s.box(float64TypeWord, math.Float64bits(f))
}

// string boxes str.
func (s *slab) string(str string) any {
	if s == nil {
		return str
	}
	if len(s.strs) == cap(s.strs) {
		s.strs = make([]string, 0, max(2*cap(s.strs), 4))
	}
	s.strs = append(s.strs, str)
	var v any
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = stringTypeWord, unsafe.Pointer(&s.strs[len(s.strs)-1])
	return v
}

// boxesOf counts the slab entries p's decoded form needs, at most: one
// word per numeric value, alias, timestamp (counted once while
// consecutive metrics share it) and seq; one string per string value,
// metric name and uuid. Integers below 256 need none; an alias resolved
// from its birth's template needs none either.
func boxesOf(p *Payload) (words, strs int) {
	var lastTS uint64
	haveTS := false
	if p.HasTimestamp {
		words++
		lastTS, haveTS = p.Timestamp, true
	}
	if p.HasSeq {
		words++
	}
	if p.UUID != "" {
		strs++
	}
	for i := range p.Metrics {
		m := &p.Metrics[i]
		if m.HasName {
			strs++
		}
		if m.HasAlias && m.Alias >= 256 {
			words++
		}
		if m.HasTimestamp && (!haveTS || m.Timestamp != lastTS) {
			words++
			lastTS, haveTS = m.Timestamp, true
		}
		if m.IsNull {
			continue
		}
		switch m.Kind {
		case 10, 11, 12, 13:
			words++
		case 15:
			strs++
		}
	}
	return words, strs
}
