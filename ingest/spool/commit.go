package spool

import (
	"fmt"
	"os"
	"runtime"
	"time"
)

// overlapBytes is how many framed bytes must be queued while an fdatasync
// runs before the committer writes them into the next batch (instead of
// waiting for the sync to return): large batches then reach the page cache
// while the disk is busy, and small ones cost no extra wake-up or write.
const overlapBytes = 64 << 10

// writer is the committer goroutine's state: it owns the active segment
// file and turns queued appends into batches, each made durable by one
// fdatasync (group commit). The fdatasync runs on a second goroutine (the
// syncer) so the committer can write the next batch meanwhile; a batch is
// published (head moves, done callbacks run) only after the fdatasync that
// started after its last write returned.
type writer struct {
	s     *Spool
	f     *os.File // active segment, opened for appending
	seg   *segment // the active segment's shared descriptor
	size  int64    // bytes written to f, including unpublished batches
	buf   []byte   // framed records not yet written to f
	spare []pending

	// cur holds records written to f that no running fdatasync covers;
	// syncing, while inSync, the records the running one covers: every
	// byte up to syncSize, which f held when the sync was started.
	cur, syncing        []pending
	curFrame, syncFrame int64
	syncSize            int64
	inSync              bool

	syncReq chan *os.File   // committer → syncer, one request at a time
	syncRes chan syncResult // syncer → committer
	synced  chan struct{}   // closed when the syncer has exited
}

// syncResult is what the syncer reports for one fdatasync.
type syncResult struct {
	err  error
	took time.Duration
}

func newWriter(s *Spool, f *os.File, seg *segment) *writer {
	return &writer{
		s: s, f: f, seg: seg, size: seg.bytes,
		syncReq: make(chan *os.File, 1),
		syncRes: make(chan syncResult, 1),
		synced:  make(chan struct{}),
	}
}

// run is the committer loop. It exits when the spool is closing and the
// queue is empty (or aborted) and no batch is unpublished.
func (w *writer) run() {
	s := w.s
	defer s.committer.Done()
	go w.syncLoop()
	defer func() {
		close(w.syncReq)
		<-w.synced
		_ = w.f.Close()
	}()
	for {
		if s.abort.Load() {
			if err := w.drain(); err != nil {
				w.fail(err)
			}
			w.failQueue(ErrClosed)
			return
		}
		if w.inSync {
			w.overlap()
			continue
		}
		s.mu.Lock()
		queued := len(s.queue) > 0
		if !queued && len(w.cur) == 0 {
			closing := s.closing
			s.wakeAt = 1
			s.mu.Unlock()
			if closing {
				return
			}
			<-s.wake
			continue
		}
		s.mu.Unlock()
		if queued {
			// Yield once so appenders woken by the previous commit can
			// queue their next record and join this batch: measured, it
			// doubles the records per fsync with tens of appenders.
			runtime.Gosched()
			if err := w.fill(); err != nil {
				w.fail(err)
				continue
			}
		}
		w.startSync()
	}
}

// syncLoop is the syncer goroutine: it fdatasyncs the files the committer
// asks for, one at a time, and reports each result.
func (w *writer) syncLoop() {
	defer close(w.synced)
	for f := range w.syncReq {
		t0 := time.Now()
		err := w.s.opts.syncFile(f)
		w.syncRes <- syncResult{err: err, took: time.Since(t0)}
	}
}

// fill writes queued records into the next batch until it finds the queue
// empty, the batch reaches CommitBytes, or CommitInterval has passed.
func (w *writer) fill() error {
	s := w.s
	start := time.Now()
	for w.curFrame < int64(s.opts.CommitBytes) && !s.abort.Load() {
		items := w.take()
		if len(items) == 0 {
			return nil
		}
		err := w.writeItems(items)
		clear(items)
		w.spare = items[:0]
		if err != nil {
			return err
		}
		if time.Since(start) >= s.opts.CommitInterval {
			return nil
		}
	}
	return nil
}

// overlap runs while an fdatasync is in progress: it writes what is queued
// meanwhile into the next batch, overlapBytes at a time and up to
// CommitBytes, until the sync returns; then it publishes the synced batch.
func (w *writer) overlap() {
	s := w.s
	limit := int64(s.opts.CommitBytes)
	for w.inSync { // a rollover inside writeItems may have drained it
		s.mu.Lock()
		now := w.curFrame < limit && s.queued >= overlapBytes
		if !now && w.curFrame < limit {
			s.wakeAt = overlapBytes
		}
		s.mu.Unlock()
		if now {
			items := w.take()
			err := w.writeItems(items)
			clear(items)
			w.spare = items[:0]
			if err != nil {
				w.fail(err)
				return
			}
			continue
		}
		select {
		case r := <-w.syncRes:
			if err := w.finishSync(r); err != nil {
				w.fail(err)
			}
			return
		case <-s.wake:
			if s.abort.Load() {
				return // run drains
			}
		}
	}
}

// take moves the whole append queue into the writer's hands.
func (w *writer) take() []pending {
	s := w.s
	s.mu.Lock()
	items := s.queue
	s.queue = w.spare
	s.queued = 0
	s.wakeAt = 0
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
				w.adopt(items[i:]) // fail() fails every unpublished record
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

// adopt adds items to the batch no fdatasync covers yet.
func (w *writer) adopt(items []pending) {
	for _, it := range items {
		w.cur = append(w.cur, it)
		w.curFrame += int64(len(it.data)) + frameOverhead
	}
}

// rollover makes what is written durable and starts a new segment.
func (w *writer) rollover() error {
	if err := w.write(); err != nil {
		return err
	}
	if err := w.drain(); err != nil {
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

// startSync hands the current batch to the syncer. Every record of it is
// already written to f, so the fdatasync covers it. No sync may be running.
func (w *writer) startSync() {
	w.syncing, w.cur = w.cur, w.syncing[:0]
	w.syncFrame, w.curFrame = w.curFrame, 0
	w.syncSize = w.size
	w.inSync = true
	w.syncReq <- w.f
}

// finishSync takes the running fdatasync's result and, when it succeeded,
// publishes the batch it covered. On failure the batch stays in syncing
// for fail.
func (w *writer) finishSync(r syncResult) error {
	w.inSync = false
	if r.err != nil {
		return fmt.Errorf("syncing segment: %w", r.err)
	}
	w.publish(r.took)
	return nil
}

// drain waits for the running fdatasync, then syncs what is written but
// not covered yet: afterwards every written record is published.
func (w *writer) drain() error {
	if w.inSync {
		if err := w.finishSync(<-w.syncRes); err != nil {
			return err
		}
	}
	if len(w.cur) == 0 {
		return nil
	}
	w.startSync()
	return w.finishSync(<-w.syncRes)
}

// publish makes the synced batch visible: offsets are assigned, readers see
// the records, and done callbacks run in order.
func (w *writer) publish(took time.Duration) {
	s := w.s
	s.mu.Lock()
	first := s.head
	n := uint64(len(w.syncing))
	s.head += n
	w.seg.records += n
	s.diskBytes += w.syncSize - w.seg.bytes
	w.seg.bytes = w.syncSize
	s.queueFrame -= w.syncFrame
	s.counters.fsyncs++
	s.counters.fsyncTime += took
	s.counters.fsyncMax = max(s.counters.fsyncMax, took)
	s.counters.fsyncBuckets[fsyncBucket(took)]++
	s.counters.batches++
	s.counters.appended += n
	close(s.commitCh)
	s.commitCh = make(chan struct{})
	s.broadcastSpace()
	s.mu.Unlock()
	for i, it := range w.syncing {
		if it.done != nil {
			it.done(first+uint64(i), nil)
		}
	}
	clear(w.syncing)
	w.syncing = w.syncing[:0]
	w.syncFrame = 0
}

// roll seals the active segment (already fsynced by drain) and starts a new
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
// creation error: every unpublished record and everything queued fail, and
// Append refuses new records until the spool is reopened. A batch whose
// running fdatasync still succeeds is published first (it is durable).
// After an fsync error the page cache can no longer be trusted, so there
// is no retry.
func (w *writer) fail(cause error) {
	s := w.s
	if w.inSync {
		if r := <-w.syncRes; r.err == nil {
			w.inSync = false
			w.publish(r.took)
		}
		w.inSync = false
	}
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
	s.mu.Lock()
	s.queueFrame -= w.syncFrame + w.curFrame
	s.mu.Unlock()
	for _, batch := range [][]pending{w.syncing, w.cur} {
		for _, it := range batch {
			if it.done != nil {
				it.done(0, err)
			}
		}
	}
	w.syncing, w.cur = nil, nil
	w.syncFrame, w.curFrame = 0, 0
	w.failQueue(err)
}

// failQueue fails every queued record with err.
func (w *writer) failQueue(err error) {
	s := w.s
	s.mu.Lock()
	items := s.queue
	s.queue = nil
	s.queued = 0
	s.queueFrame = 0
	s.broadcastSpace()
	s.mu.Unlock()
	for _, it := range items {
		if it.done != nil {
			it.done(0, err)
		}
	}
}
