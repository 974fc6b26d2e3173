package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
)

// Record is one record read from the spool.
type Record struct {
	// Offset is the record's sequence number in the spool.
	Offset uint64
	// Data is the record as appended. It belongs to the caller.
	Data []byte
}

// Cursor is one sink's durable read position. Next is meant for one reading
// goroutine (calls are serialized); Ack may be called from any goroutine, in
// any order. The durable position is the lowest offset not yet acknowledged:
// after a restart the cursor resumes there, so records delivered but not
// acknowledged are delivered again (at-least-once).
type Cursor struct {
	s    *Spool
	name string

	readMu sync.Mutex // serializes Next and NextBatch; guards the fields below
	r      segReader
	slab   []byte   // carved into small records' Data by Next
	one    []Record // Next's batch of one

	mu        sync.Mutex
	base      uint64 // lowest unacknowledged offset
	readPos   uint64 // next offset Next delivers
	delivered uint64 // one past the highest offset ever delivered
	acks      ackRing
	persisted uint64 // position last written to the cursor file
	dirty     bool   // base moved since the last checkpoint
	removed   bool
	dropped   uint64
	gen       uint64        // bumped whenever readPos is moved by other than Next
	ackWait   chan struct{} // non-nil while Next waits for base to move
	removedCh chan struct{}
}

func (s *Spool) newCursor(name string, pos uint64) *Cursor {
	return &Cursor{
		s:         s,
		name:      name,
		base:      pos,
		readPos:   pos,
		delivered: pos,
		persisted: pos,
		acks:      newAckRing(s.opts.MaxInflight),
		removedCh: make(chan struct{}),
	}
}

// Name returns the cursor's name.
func (c *Cursor) Name() string { return c.name }

// Next returns the next committed record past the read position, blocking
// until one is available, ctx ends, the spool closes or the cursor is
// removed. It also blocks while MaxInflight delivered records await Ack.
// A sealed segment found corrupt is skipped (once every earlier record is
// acknowledged) and reported through Options.OnDrop with ReasonCorrupt.
// The record's Data belongs to the caller.
func (c *Cursor) Next(ctx context.Context) (Record, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	recs, err := c.next(ctx, c.one[:0], 1)
	if err != nil {
		return Record{}, err
	}
	r := recs[0]
	c.one = recs[:0]
	r.Data = c.own(r.Data)
	return r, nil
}

// NextBatch is Next for up to n records at once (at least one; fewer
// when fewer are committed, buffered or allowed in flight, and never
// across a segment boundary): it appends them to dst and returns it. One
// call costs one round of locks and at most one read system call for the
// whole batch, and the records are CRC-checked in the cursor's read
// buffer without copying: their Data is valid only until the next call
// to Next or NextBatch on this cursor. A caller that keeps a record
// longer copies it.
func (c *Cursor) NextBatch(ctx context.Context, dst []Record, n int) ([]Record, error) {
	c.readMu.Lock()
	defer c.readMu.Unlock()
	return c.next(ctx, dst, max(n, 1))
}

// own copies data out of the read buffer, carving small records from a
// shared slab: one allocation serves many records. Slabs are never
// reused, so the caller owns what own returns.
func (c *Cursor) own(data []byte) []byte {
	const slabBytes, slabMaxRecord = 64 << 10, 4 << 10
	n := len(data)
	if n > slabMaxRecord {
		return append([]byte(nil), data...)
	}
	if cap(c.slab)-len(c.slab) < n {
		c.slab = make([]byte, 0, slabBytes)
	}
	out := c.slab[len(c.slab) : len(c.slab)+n : len(c.slab)+n]
	c.slab = c.slab[:len(c.slab)+n]
	copy(out, data)
	return out
}

// next appends up to want records to dst, blocking until at least one is
// available. Callers hold c.readMu.
func (c *Cursor) next(ctx context.Context, dst []Record, want int) ([]Record, error) {
	s := c.s
	for {
		c.mu.Lock()
		if c.removed {
			c.mu.Unlock()
			return dst, ErrCursorRemoved
		}
		room := c.acks.size() - (c.readPos - c.base)
		if room == 0 {
			if err := c.waitAck(ctx); err != nil {
				return dst, err
			}
			continue
		}
		pos, gen := c.readPos, c.gen
		c.mu.Unlock()

		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			return dst, ErrClosed
		}
		if pos >= s.head {
			ch := s.commitCh
			s.mu.Unlock()
			if err := c.wait(ctx, ch); err != nil {
				return dst, err
			}
			continue
		}
		if pos < s.tail() {
			// Only possible if the tail moved between the two locks.
			lost := c.jumpTo(s.tail())
			s.mu.Unlock()
			if lost > 0 {
				s.reportDrop(c.name, lost, ReasonSpoolFull, nil)
			}
			continue
		}
		i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].base > pos }) - 1
		seg, sealed := s.segs[i], i < len(s.segs)-1
		segBase, segEnd := seg.base, seg.end()
		s.mu.Unlock()

		limit := min(uint64(want), room, segEnd-pos)
		from := len(dst)
		var err error
		dst, err = c.read(dst, segBase, pos, int(limit))
		if len(dst) == from {
			c.r.close()
			if isCorrupt(err) && sealed {
				if err := c.skipCorrupt(ctx, pos, gen, segEnd, err); err != nil {
					return dst, err
				}
				continue
			}
			if c.moved(gen) {
				continue // the segment was dropped under us
			}
			if isCorrupt(err) {
				return dst, fmt.Errorf("reading offset %d of cursor %s: %w", pos, c.name, errors.Join(ErrCorrupt, err))
			}
			return dst, fmt.Errorf("reading offset %d of cursor %s: %w", pos, c.name, err)
		}
		// A read error after some records surfaces on the next call, at
		// the record that caused it.
		n := uint64(len(dst) - from)
		c.mu.Lock()
		if c.readPos != pos || c.gen != gen {
			c.mu.Unlock()
			dst = dst[:from]
			continue
		}
		c.readPos += n
		c.delivered = max(c.delivered, c.readPos)
		c.mu.Unlock()
		return dst, nil
	}
}

// isCorrupt reports whether err means the bytes on disk are not a valid
// record (as opposed to an I/O error).
func isCorrupt(err error) bool {
	return errors.Is(err, errShortFrame) || errors.Is(err, errBadLength) ||
		errors.Is(err, errChecksum) || errors.Is(err, errBadHeader) ||
		errors.Is(err, os.ErrNotExist)
}

// moved reports whether the read position was moved (dropped, rewound)
// since gen was observed.
func (c *Cursor) moved(gen uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen != gen
}

// waitAck waits, with c.mu held on entry and released on return, until the
// acknowledged prefix moves.
func (c *Cursor) waitAck(ctx context.Context) error {
	if c.ackWait == nil {
		c.ackWait = make(chan struct{})
	}
	ch := c.ackWait
	c.mu.Unlock()
	return c.wait(ctx, ch)
}

// wait blocks until ch is closed, or returns why it stopped waiting.
func (c *Cursor) wait(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting on cursor %s: %w", c.name, ctx.Err())
	case <-c.s.closedCh:
		return ErrClosed
	case <-c.removedCh:
		return ErrCursorRemoved
	}
}

// skipCorrupt moves the cursor past the unreadable rest of a sealed segment,
// [pos, segEnd), once every earlier delivered record is acknowledged (so
// the durable position can jump with it), and reports the loss.
func (c *Cursor) skipCorrupt(ctx context.Context, pos, gen, segEnd uint64, cause error) error {
	for {
		c.mu.Lock()
		if c.gen != gen || c.readPos != pos {
			c.mu.Unlock()
			return nil
		}
		if c.base < pos {
			if err := c.waitAck(ctx); err != nil {
				return err
			}
			continue
		}
		lost := segEnd - pos
		c.base, c.readPos = segEnd, segEnd
		c.delivered = max(c.delivered, segEnd)
		c.acks.reset()
		c.dirty = true
		c.dropped += lost
		c.gen++
		c.mu.Unlock()
		c.s.reportDrop(c.name, lost, ReasonCorrupt, cause)
		return nil
	}
}

// read appends to dst up to limit records of the segment at segBase,
// starting at offset pos, reusing the open reader when it is already
// positioned at or before pos in that segment. Only the first record may
// move the read buffer; the batch ends where the buffer does. It returns
// the error that stopped it, if any; records appended before it are good.
func (c *Cursor) read(dst []Record, segBase, pos uint64, limit int) ([]Record, error) {
	if !c.r.at(segBase, pos) {
		if err := c.r.open(c.s.dir, segBase); err != nil {
			return dst, err
		}
	}
	for c.r.off < pos {
		if err := c.r.skip(); err != nil {
			return dst, err
		}
	}
	for n := 0; n < limit; n++ {
		data, ok, err := c.r.next(n == 0)
		if !ok {
			return dst, err
		}
		dst = append(dst, Record{Offset: pos + uint64(n), Data: data})
	}
	return dst, nil
}

// closeReader closes the segment reader once no Next is running.
func (c *Cursor) closeReader() {
	c.readMu.Lock()
	c.r.close()
	c.readMu.Unlock()
}

// Ack acknowledges the record at off. Acks may arrive in any order; the
// durable position advances over the contiguous acknowledged prefix and is
// persisted at the next checkpoint. Acking an offset already behind the
// position, or one delivered before a Rewind, is a no-op; acking an offset
// never delivered is an error.
func (c *Cursor) Ack(off uint64) error {
	c.mu.Lock()
	if c.removed {
		c.mu.Unlock()
		return ErrCursorRemoved
	}
	if off >= c.delivered {
		c.mu.Unlock()
		return fmt.Errorf("acking offset %d on cursor %s: not delivered yet", off, c.name)
	}
	if off < c.base || off >= c.readPos {
		c.mu.Unlock()
		return nil
	}
	c.acks.set(off)
	if off == c.base {
		c.base = c.acks.advance(c.base, c.readPos)
		c.dirty = true
		if c.ackWait != nil {
			close(c.ackWait)
			c.ackWait = nil
		}
	}
	c.mu.Unlock()
	if c.s.blocked.Load() > 0 {
		c.s.kickMaintainer()
	}
	return nil
}

// Rewind moves the read position back to the lowest unacknowledged offset,
// so Next delivers every unacknowledged record again (as a restart would).
func (c *Cursor) Rewind() {
	c.mu.Lock()
	c.readPos = c.base
	c.acks.reset()
	c.gen++
	c.mu.Unlock()
}

// jumpTo moves the cursor forward to newTail after the records before it
// were deleted, and returns how many records it had not read yet. Callers
// hold s.mu.
func (c *Cursor) jumpTo(newTail uint64) (lost uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.readPos < newTail {
		lost = newTail - c.readPos
		c.readPos = newTail
		c.delivered = max(c.delivered, newTail)
		c.gen++
	}
	if c.base < newTail {
		c.acks.clearRange(c.base, newTail)
		c.base = c.acks.advance(newTail, c.readPos)
		c.dirty = true
		if c.ackWait != nil {
			close(c.ackWait)
			c.ackWait = nil
		}
	}
	c.dropped += lost
	return lost
}
