package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"
)

// writer is the committer goroutine's state: it owns the active segment
// file and turns queued appends into batches, each made durable by one
// fsync (group commit).
type writer struct {
	s     *Spool
	f     *os.File // active segment, opened for appending
	seg   *segment // the active segment's shared descriptor
	size  int64    // bytes written to f, including the unpublished batch
	buf   []byte   // framed records not yet written to f
	batch []pending
	spare []pending

	batchFrame int64 // framed bytes of batch
}

// run is the committer loop. It exits when the spool is closing and the
// queue is empty (or aborted).
func (w *writer) run() {
	s := w.s
	defer s.committer.Done()
	defer func() { _ = w.f.Close() }()
	for {
		if s.abort.Load() {
			w.failQueue(ErrClosed)
			return
		}
		s.mu.Lock()
		if len(s.queue) == 0 {
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return
			}
			<-s.wake
			continue
		}
		s.mu.Unlock()
		// Yield once so appenders woken by the previous commit can queue
		// their next record and join this batch: measured, it doubles the
		// records per fsync with tens of concurrent appenders.
		runtime.Gosched()
		if err := w.commitBatch(); err != nil {
			w.fail(err)
		}
	}
}

// commitBatch forms one batch: it writes queued records until it finds the
// queue empty, the batch reaches CommitBytes, or CommitInterval has passed,
// then fsyncs once and publishes the batch.
func (w *writer) commitBatch() error {
	s := w.s
	start := time.Now()
	for {
		items := w.take()
		if len(items) == 0 {
			break
		}
		err := w.writeItems(items)
		clear(items)
		w.spare = items[:0]
		if err != nil {
			return err
		}
		if w.batchFrame >= int64(s.opts.CommitBytes) ||
			time.Since(start) >= s.opts.CommitInterval || s.abort.Load() {
			break
		}
	}
	return w.flush()
}

// take moves the whole append queue into the writer's hands.
func (w *writer) take() []pending {
	s := w.s
	s.mu.Lock()
	items := s.queue
	s.queue = w.spare
	w.spare = nil
	s.mu.Unlock()
	return items
}

// writeItems frames items into the active segment, rolling to a new segment
// (after making the current one durable) when a record would not fit.
func (w *writer) writeItems(items []pending) error {
	limit := w.s.opts.SegmentBytes
	for i, it := range items {
		framed := int64(len(it.data)) + frameOverhead
		pos := w.size + int64(len(w.buf))
		if pos+framed > limit && pos > segHeaderSize {
			if err := w.rollover(); err != nil {
				w.adopt(items[i:]) // fail() fails the whole unpublished batch
				return err
			}
		}
		w.buf = appendFrame(w.buf, it.data)
		w.adopt(items[i : i+1])
		if len(w.buf) >= w.s.opts.CommitBytes {
			if err := w.write(); err != nil { // keeps buf near CommitBytes
				w.adopt(items[i+1:])
				return err
			}
		}
	}
	return w.write()
}

// adopt adds items to the unpublished batch.
func (w *writer) adopt(items []pending) {
	for _, it := range items {
		w.batch = append(w.batch, it)
		w.batchFrame += int64(len(it.data)) + frameOverhead
	}
}

// rollover makes what is written durable and starts a new segment.
func (w *writer) rollover() error {
	if err := w.write(); err != nil {
		return err
	}
	if err := w.flush(); err != nil {
		return err
	}
	return w.roll()
}

// write hands the framed buffer to the file (no fsync yet).
func (w *writer) write() error {
	if len(w.buf) == 0 {
		return nil
	}
	if w.s.opts.Policy == PolicyDropOldest {
		w.makeRoom(int64(len(w.buf)))
	}
	n, err := w.f.Write(w.buf)
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("writing segment: %w", err)
	}
	if cap(w.buf) > 4*w.s.opts.CommitBytes {
		w.buf = nil // do not pin a buffer grown by one huge batch
	} else {
		w.buf = w.buf[:0]
	}
	return nil
}

// flush fsyncs the active segment and publishes the batch: offsets are
// assigned, readers see the records, and done callbacks run in order.
func (w *writer) flush() error {
	if len(w.batch) == 0 {
		return nil
	}
	t0 := time.Now()
	if err := w.s.opts.syncFile(w.f); err != nil {
		return fmt.Errorf("syncing segment: %w", err)
	}
	s := w.s
	took := time.Since(t0)
	s.mu.Lock()
	first := s.head
	n := uint64(len(w.batch))
	s.head += n
	w.seg.records += n
	s.diskBytes += w.size - w.seg.bytes
	w.seg.bytes = w.size
	s.queueFrame -= w.batchFrame
	s.counters.fsyncs++
	s.counters.fsyncTime += took
	s.counters.batches++
	s.counters.appended += n
	close(s.commitCh)
	s.commitCh = make(chan struct{})
	s.broadcastSpace()
	s.mu.Unlock()
	for i, it := range w.batch {
		if it.done != nil {
			it.done(first+uint64(i), nil)
		}
	}
	clear(w.batch)
	w.batch = w.batch[:0]
	w.batchFrame = 0
	return nil
}

// roll seals the active segment (already fsynced by flush) and starts a new
// one at the current head.
func (w *writer) roll() error {
	s := w.s
	s.mu.Lock()
	base := s.head
	s.mu.Unlock()
	f, err := createSegment(s.dir, base, s.opts.SegmentBytes)
	if err != nil {
		return err
	}
	seg := &segment{base: base, bytes: segHeaderSize}
	s.mu.Lock()
	s.segs = append(s.segs, seg)
	s.diskBytes += segHeaderSize
	s.mu.Unlock()
	if err := w.f.Close(); err != nil {
		s.log.Warn("closing sealed segment", "error", err)
	}
	w.f, w.seg, w.size = f, seg, segHeaderSize
	return nil
}

// fail puts the spool in the failed state after a write, fsync or segment
// creation error: the unpublished batch and everything queued fail, and
// Append refuses new records until the spool is reopened. After an fsync
// error the page cache can no longer be trusted, so there is no retry.
func (w *writer) fail(cause error) {
	s := w.s
	err := fmt.Errorf("%w: %w", ErrFailed, cause)
	s.log.Error("spool write failed; refusing further appends", "error", cause)
	s.mu.Lock()
	if s.failed == nil {
		s.failed = err
	}
	committed := w.seg.bytes
	s.mu.Unlock()
	// Best effort: cut the unpublished bytes so a reopen does not resurrect
	// records whose appenders were told they failed.
	if terr := w.f.Truncate(committed); terr != nil {
		s.log.Error("truncating failed batch", "error", terr)
	} else {
		w.size = committed
	}
	w.buf = w.buf[:0]
	batch := w.batch
	w.batch = nil
	s.mu.Lock()
	s.queueFrame -= w.batchFrame
	s.mu.Unlock()
	w.batchFrame = 0
	for _, it := range batch {
		if it.done != nil {
			it.done(0, err)
		}
	}
	w.failQueue(err)
}

// failQueue fails every queued record with err.
func (w *writer) failQueue(err error) {
	s := w.s
	s.mu.Lock()
	items := s.queue
	s.queue = nil
	s.queueFrame = 0
	s.broadcastSpace()
	s.mu.Unlock()
	for _, it := range items {
		if it.done != nil {
			it.done(0, err)
		}
	}
}

// makeRoom applies PolicyDropOldest before need more bytes are written:
// it deletes the oldest sealed segments until the spool fits in MaxBytes,
// moves every cursor that had not read them past them and reports the loss.
func (w *writer) makeRoom(need int64) {
	s := w.s
	var (
		removed     []uint64
		removedSegs []segment
		drops       []dropEvent
	)
	s.mu.Lock()
	unpublished := w.size - w.seg.bytes
	for s.diskBytes+unpublished+need > s.opts.MaxBytes && len(s.segs) > 1 {
		g := s.segs[0]
		s.segs = s.segs[1:]
		s.diskBytes -= g.bytes
		s.counters.deleted++
		removed = append(removed, g.base)
		removedSegs = append(removedSegs, *g)
		newTail := s.segs[0].base
		for _, c := range s.cursors {
			if lost := c.jumpTo(newTail); lost > 0 {
				drops = append(drops, dropEvent{cursor: c.name, records: lost, from: newTail - lost, to: newTail})
			}
		}
	}
	s.mu.Unlock()
	if len(removed) == 0 {
		return
	}
	if s.opts.OnDropRecord != nil && len(drops) > 0 {
		s.reportDroppedRecords(removedSegs, drops)
	}
	s.removeSegmentFiles(removed)
	for _, d := range drops {
		s.reportDrop(d.cursor, d.records, ReasonSpoolFull, nil)
	}
}

// dropEvent is one cursor's loss, reported after locks are released.
type dropEvent struct {
	cursor   string
	records  uint64
	from, to uint64 // the offsets lost: [from, to)
}

// reportDroppedRecords hands every record a cursor lost to
// Options.OnDropRecord, reading the segments before they are deleted, so
// the caller can account for each one by what it held.
func (s *Spool) reportDroppedRecords(segs []segment, drops []dropEvent) {
	for _, g := range segs {
		f, err := os.Open(segPath(s.dir, g.base))
		if err != nil {
			s.log.Error("reading dropped segment", "segment", segName(g.base), "error", err)
			continue
		}
		if _, err := f.Seek(segHeaderSize, io.SeekStart); err != nil {
			f.Close()
			s.log.Error("reading dropped segment", "segment", segName(g.base), "error", err)
			continue
		}
		off := g.base
		_, _, stop := scanValid(f, g.bytes-segHeaderSize, func(data []byte) {
			for _, d := range drops {
				if off >= d.from && off < d.to {
					s.opts.OnDropRecord(d.cursor, off, data, ReasonSpoolFull)
				}
			}
			off++
		})
		f.Close()
		if stop != nil {
			s.log.Error("reading dropped segment", "segment", segName(g.base), "error", stop)
		}
	}
}

// removeSegmentFiles deletes segment files already taken out of s.segs.
func (s *Spool) removeSegmentFiles(bases []uint64) {
	for _, base := range bases {
		if err := os.Remove(segPath(s.dir, base)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Error("removing segment", "segment", segName(base), "error", err)
		}
	}
	if err := syncDir(s.dir); err != nil {
		s.log.Warn("syncing directory after segment removal", "error", err)
	}
}
