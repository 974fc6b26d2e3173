package bench

import "math/bits"

// histogram is a log-linear histogram of non-negative durations in
// nanoseconds: values below 256 are exact, larger ones fall in one of 128
// buckets per power of two (under 0.8% relative error). Recording is a
// few instructions and never allocates.
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    int64
}

const (
	histSubBits = 7
	histBuckets = (64-histSubBits)<<histSubBits + 1<<histSubBits
)

func histIndex(v uint64) int {
	if v < 1<<(histSubBits+1) {
		return int(v)
	}
	e := bits.Len64(v) - (histSubBits + 1)
	return e<<histSubBits + int(v>>e)
}

// histValue is the midpoint of bucket i.
func histValue(i int) int64 {
	if i < 1<<(histSubBits+1) {
		return int64(i)
	}
	e := i>>histSubBits - 1
	m := uint64(i&(1<<histSubBits-1) + 1<<histSubBits)
	return int64(m<<e + (uint64(1)<<e)/2)
}

func (h *histogram) record(ns int64) {
	h.counts[histIndex(uint64(ns))]++
	h.n++
	if ns > h.max {
		h.max = ns
	}
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the value at quantile q (0..1); the exact maximum for
// q = 1 and 0 for an empty histogram.
func (h *histogram) quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(q*float64(h.n)) + 1
	if rank > h.n {
		rank = h.n
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(histValue(i), h.max)
		}
	}
	return h.max
}
