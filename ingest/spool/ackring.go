package spool

import "math/bits"

// ackRing records out-of-order acknowledgements of the offsets in
// [base, base+size) as a ring of bits, so a cursor can track its contiguous
// acked prefix in memory bounded by Options.MaxInflight.
type ackRing struct {
	words []uint64
	mask  uint64 // size-1; size is a power of two >= 64
}

func newAckRing(n int) ackRing {
	size := uint64(64)
	for size < uint64(n) {
		size <<= 1
	}
	return ackRing{words: make([]uint64, size/64), mask: size - 1}
}

// size is the number of offsets the ring can track at once.
func (r *ackRing) size() uint64 { return r.mask + 1 }

func (r *ackRing) set(off uint64) {
	i := off & r.mask
	r.words[i>>6] |= 1 << (i & 63)
}

// advance consumes the run of acked offsets starting at base, stopping at
// limit, clears their bits and returns the first unacked offset.
func (r *ackRing) advance(base, limit uint64) uint64 {
	for base < limit {
		i := base & r.mask
		w, b := i>>6, i&63
		run := uint64(bits.TrailingZeros64(^(r.words[w] >> b))) // ones from bit b
		if run == 0 {
			break
		}
		run = min(run, 64-b, limit-base)
		if run == 64 {
			r.words[w] = 0
		} else {
			r.words[w] &^= ((1 << run) - 1) << b
		}
		base += run
	}
	return base
}

// clearRange forgets acknowledgements of the offsets in [from, to).
func (r *ackRing) clearRange(from, to uint64) {
	if to <= from {
		return
	}
	if to-from >= r.size() {
		clear(r.words)
		return
	}
	for off := from; off < to; off++ {
		i := off & r.mask
		r.words[i>>6] &^= 1 << (i & 63)
	}
}

// reset forgets every acknowledgement.
func (r *ackRing) reset() { clear(r.words) }
