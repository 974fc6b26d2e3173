package ingest

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/ingest/spool"
)

const (
	// feedBatch is how many spool records a feeder reads at once.
	feedBatch = 256
	// A feeder copies records of up to slabMaxRecord bytes into shared
	// slabs of slabBytes.
	slabBytes, slabMaxRecord = 64 << 10, 4 << 10
)

// feeder moves one sink's spool records to its runner: it reads the
// sink's cursor in batches, decodes each record once, hands the outputs
// for the sink to their lanes and acknowledges the record to the cursor
// once every one of them is delivered or dead-lettered.
type feeder struct {
	p    *Pipeline
	r    *runner
	c    *spool.Cursor
	pool sync.Pool // *spooled, reused once their record is acknowledged
	// slab is carved into the records' bytes. Sinks may keep what they
	// are given past Write (republish queues payloads in the broker), so
	// slabs are left to the garbage collector, never reused.
	slab []byte
	// The flow of the last rule seen: flows are never removed, and most
	// records of a sink come from few rules.
	lastRule string
	lastFlow *flow
}

// spooled is one spool record on its way through one sink's lanes: the
// deliveries of its outputs for the sink (their sink records alias the
// record's bytes in the feeder's slab). Pooled per feeder, so a record
// costs no allocation for its struct, deliveries, counter or callback.
type spooled struct {
	fd        *feeder
	ds        []delivery
	off       uint64
	big       bool // the record has its own allocation (not a slab's)
	remaining atomic.Int32
	doneFn    func(ok bool) // sp.done, bound once
}

// done is every delivery's callback. When the last one succeeds the
// record is acknowledged and the struct goes back to the pool; after a
// delivery given up at shutdown (ok false) the record stays in the spool
// and the struct is left to the garbage collector.
func (sp *spooled) done(ok bool) {
	if !ok || sp.remaining.Add(-1) != 0 {
		return
	}
	fd := sp.fd
	fd.p.ack(fd.c, sp.off)
	fd.release(sp)
}

// release pools sp. Its deliveries are left in place (the next use
// overwrites them; clearing costs write barriers on every record): a
// pooled struct pins the slab of its last record, a few slabs for the
// whole pool, which the pool's own clearing at GC releases. A record too
// large for the slab is let go at once.
func (fd *feeder) release(sp *spooled) {
	if sp.big {
		clear(sp.ds)
		sp.big = false
	}
	fd.pool.Put(sp)
}

// feed reads a sink's spool cursor and hands its outputs to the runner
// until ctx ends.
func (p *Pipeline) feed(ctx context.Context, r *runner, c *spool.Cursor) {
	fd := &feeder{p: p, r: r, c: c}
	fd.pool.New = func() any {
		sp := &spooled{fd: fd}
		sp.doneFn = sp.done
		return sp
	}
	var batch []spool.Record
	for {
		var err error
		batch, err = c.NextBatch(ctx, batch[:0], feedBatch)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.log.Error("reading spool", "sink", r.name, "error", err)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		// The batch aliases the cursor's buffer until the next NextBatch:
		// each record is copied (handle) before that.
		for i := range batch {
			if !fd.handle(ctx, &batch[i]) {
				return // shutting down: the records stay in the spool
			}
		}
	}
}

// handle decodes one record and enqueues its outputs for the sink. It
// reports false when ctx ended while a lane was full.
func (fd *feeder) handle(ctx context.Context, rec *spool.Record) bool {
	p := fd.p
	data, mark := fd.own(rec.Data)
	// Decoded on the stack: only the sink records below are written to
	// the heap (each heap pointer write costs a barrier while the GC
	// marks, which with this allocation rate is often).
	var (
		msg    broker.Message
		outBuf [4]Output
	)
	outs, err := decodeInto(&msg, outBuf[:0], data, true)
	if err != nil {
		p.log.Error("skipping undecodable spool record", "sink", fd.r.name, "offset", rec.Offset, "error", err)
		p.acct.corrupt.Add(1)
		fd.slab = fd.slab[:mark]
		p.ack(fd.c, rec.Offset)
		return true
	}
	mine := 0
	for i := range outs {
		if outs[i].Sink == fd.r.name {
			mine++
		}
	}
	if mine == 0 {
		// Nothing references the bytes: give them back to the slab.
		fd.slab = fd.slab[:mark]
		p.ack(fd.c, rec.Offset)
		return true
	}
	recovered := rec.Offset < p.startOff
	sp := fd.pool.Get().(*spooled)
	sp.big = sp.big || len(data) > slabMaxRecord
	sp.off = rec.Offset
	sp.remaining.Store(int32(mine))
	if cap(sp.ds) < mine {
		sp.ds = make([]delivery, mine)
	}
	sp.ds = sp.ds[:mine]
	n := 0
	for i := range outs {
		o := &outs[i]
		if o.Sink != fd.r.name {
			continue
		}
		f := fd.flow(o.Rule)
		if recovered {
			f.received.Add(1)
			f.buffered.Add(1)
		}
		sp.ds[n] = delivery{rec: toRecord(&msg, o), flow: f, raw: data, outIdx: i, done: sp.doneFn}
		n++
	}
	// sp is recycled when the last delivery is done, which needs every
	// one enqueued: it stays valid until the last enqueue returns.
	for i := range sp.ds {
		if err := fd.r.enqueue(ctx, &sp.ds[i]); err != nil {
			return false
		}
	}
	return true
}

// own copies data into the slab and returns the copy and the slab length
// before it (to give the bytes back when nothing keeps them).
func (fd *feeder) own(data []byte) ([]byte, int) {
	n := len(data)
	if n > slabMaxRecord {
		return append([]byte(nil), data...), len(fd.slab)
	}
	if cap(fd.slab)-len(fd.slab) < n {
		fd.slab = make([]byte, 0, slabBytes)
	}
	mark := len(fd.slab)
	fd.slab = append(fd.slab, data...)
	return fd.slab[mark:len(fd.slab):len(fd.slab)], mark
}

// flow returns the accounting flow of (rule, this sink).
func (fd *feeder) flow(rule string) *flow {
	if fd.lastFlow == nil || rule != fd.lastRule {
		fd.lastFlow = fd.p.acct.flow(rule, fd.r.name)
		fd.lastRule = strings.Clone(rule) // rule aliases a slab
	}
	return fd.lastFlow
}

func (p *Pipeline) ack(c *spool.Cursor, off uint64) {
	if err := c.Ack(off); err != nil {
		p.log.Error("acknowledging spool record", "cursor", c.Name(), "offset", off, "error", err)
	}
}
