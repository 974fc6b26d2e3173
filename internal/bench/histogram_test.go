package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestHistogramIndexRoundTrip(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 255, 256, 257, 511, 512, 1000, 1 << 20, 1<<40 + 12345, math.MaxInt64} {
		i := histIndex(v)
		if i < prev {
			t.Fatalf("histIndex(%d) = %d, below the previous index %d", v, i, prev)
		}
		prev = i
		if i >= histBuckets {
			t.Fatalf("histIndex(%d) = %d, out of range %d", v, i, histBuckets)
		}
		got := float64(histValue(i))
		if rel := math.Abs(got-float64(v)) / math.Max(float64(v), 1); rel > 0.008 {
			t.Errorf("value %d lands in bucket %d with midpoint %v (%.2f%% off)", v, i, got, 100*rel)
		}
	}
}

func TestHistogramQuantiles(t *testing.T) {
	tests := []struct {
		name string
		gen  func(r *rand.Rand) int64
	}{
		{"uniform microseconds", func(r *rand.Rand) int64 { return r.Int64N(1e6) }},
		{"exponential", func(r *rand.Rand) int64 { return int64(r.ExpFloat64() * 2e6) }},
		{"small exact values", func(r *rand.Rand) int64 { return r.Int64N(200) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var h histogram
			vals := make([]int64, 20000)
			for i := range vals {
				vals[i] = tt.gen(r)
				h.record(vals[i])
			}
			slices.Sort(vals)
			for _, q := range []float64{0.5, 0.9, 0.99} {
				want := vals[int(q*float64(len(vals)))]
				got := h.quantile(q)
				if diff := math.Abs(float64(got - want)); diff > 0.01*float64(want)+1 {
					t.Errorf("q%.2f = %d, want %d within 1%%", q, got, want)
				}
			}
			if got, want := h.quantile(1), vals[len(vals)-1]; got != want {
				t.Errorf("max = %d, want %d", got, want)
			}
			var merged histogram
			merged.merge(&h)
			merged.merge(&h)
			if merged.n != 2*h.n || merged.quantile(0.5) != h.quantile(0.5) {
				t.Errorf("merge: n %d p50 %d, want n %d p50 %d", merged.n, merged.quantile(0.5), 2*h.n, h.quantile(0.5))
			}
		})
	}
}
