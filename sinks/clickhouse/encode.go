package clickhouse

import (
	"runtime"
	"sync"

	"github.com/sluicehq/sluice/sinks"
)

// parallelMin is the fewest rows a Write converts on two goroutines:
// converting is most of the sink's own CPU, and while one lane converts
// the server has nothing to do, so a second core halves that wait. Below
// it the goroutine is not worth its start.
const parallelMin = 8192

// encoded is one table's rows of a Write, converted: by one encoder, or
// by two that converted the halves side by side (their rows in order).
type encoded struct {
	parts []*encoder
	rows  []int // the batch index of each converted row, all parts'
}

// failure is a record that did not convert.
type failure struct {
	index int
	err   error
}

// encode converts the records idx of batch (nil: all) with encoders of
// t; failures are permanent errors in errs. release returns the encoders.
func (t *table) encode(batch []sinks.Record, idx []int, errs *results) *encoded {
	n := len(idx)
	if idx == nil {
		n = len(batch)
	}
	enc := &encoded{parts: []*encoder{t.encoder()}}
	if n < parallelMin || runtime.GOMAXPROCS(0) < 2 {
		enc.parts[0].convert(batch, idx, 0, n)
	} else {
		enc.parts = append(enc.parts, t.encoder())
		var wg sync.WaitGroup
		wg.Go(func() { enc.parts[1].convert(batch, idx, n/2, n) })
		enc.parts[0].convert(batch, idx, 0, n/2)
		wg.Wait()
		enc.parts[0].adopt(enc.parts[1])
	}
	first := enc.parts[0]
	first.all = first.all[:0]
	for _, e := range enc.parts {
		for _, f := range e.failed {
			errs.set(f.index, sinks.Permanent(f.err))
		}
		first.all = append(first.all, e.good...)
	}
	enc.rows = first.all
	return enc
}

// release returns the encoders to their table.
func (enc *encoded) release() {
	for _, e := range enc.parts {
		e.release()
	}
}

// convert adds the records idx[lo:hi] of batch (batch[lo:hi] when idx is
// nil), noting which converted (good) and which failed.
func (e *encoder) convert(batch []sinks.Record, idx []int, lo, hi int) {
	for k := lo; k < hi; k++ {
		i := k
		if idx != nil {
			i = idx[k]
		}
		if err := e.add(&batch[i]); err != nil {
			e.failed = append(e.failed, failure{i, err})
			continue
		}
		e.good = append(e.good, i)
	}
}

// adopt makes the LowCardinality values of o (converted beside e) share
// e's pointers: the driver keys a column's dictionary by pointer, and a
// value must appear in it once.
func (e *encoder) adopt(o *encoder) {
	for i, b := range e.builders {
		if lc, ok := b.(*lowCard); ok {
			lc.adopt(o.builders[i].(*lowCard))
		}
	}
}

// adopt points o's values at b's pointers for the values both hold, and
// makes b know o's others.
func (b *lowCard) adopt(o *lowCard) {
	var remap map[*string]*string
	for s, p := range o.intern {
		q := b.intern[s]
		switch {
		case q == nil:
			b.intern[s] = p
		case q != p:
			if remap == nil {
				remap = make(map[*string]*string, len(o.intern))
			}
			remap[p] = q
		}
	}
	if remap == nil {
		return
	}
	for i, p := range o.ptrs {
		if q, ok := remap[p]; ok {
			o.ptrs[i] = q
		}
	}
}

// slices calls fn with the column's values of rows [lo, hi) of enc, one
// slice per part they span.
func (enc *encoded) slices(col, lo, hi int, fn func(v any) error) error {
	off := 0
	for _, e := range enc.parts {
		l, h := max(lo-off, 0), min(hi-off, e.rows)
		if l < h {
			if err := fn(e.builders[col].slice(l, h)); err != nil {
				return err
			}
		}
		off += e.rows
	}
	return nil
}
