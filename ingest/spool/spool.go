// Package spool is Sluice's durable ingest log: an on-disk, append-only,
// segmented log of opaque records. The pipeline appends every accepted MQTT
// message and acknowledges the device only once the record is fsynced; each
// sink reads the log through its own durable Cursor.
//
// Offsets are record sequence numbers: the first record ever appended to a
// directory has offset 0 and each record's offset is one more than the
// previous one's. See DESIGN.md for the guarantees and the file format.
package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Errors returned by the spool. Test with errors.Is.
var (
	// ErrClosed is returned once Close has begun.
	ErrClosed = errors.New("spool closed")
	// ErrTooLarge is returned by Append for a record above
	// Options.MaxRecordBytes.
	ErrTooLarge = errors.New("record too large")
	// ErrFailed is returned after a write or fsync failed: the spool no
	// longer accepts appends and must be reopened (which recovers the log).
	ErrFailed = errors.New("spool failed")
	// ErrCursorRemoved is returned by a Cursor removed with RemoveCursor.
	ErrCursorRemoved = errors.New("cursor removed")
	// ErrCorrupt is returned by Cursor.Next when committed data in the
	// active segment cannot be decoded.
	ErrCorrupt = errors.New("corrupt record")
)

// pending is one record waiting in the append queue.
type pending struct {
	data []byte
	done func(off uint64, err error)
}

// Spool is a durable, segmented append-only log. It is safe for concurrent
// use. Lock order: Cursor.readMu, then Spool.ckptMu, then Spool.mu, then
// Cursor.mu.
type Spool struct {
	dir  string
	opts Options
	log  *slog.Logger
	lock *os.File

	wake       chan struct{} // cap 1: wakes the committer (see wakeAt)
	kick       chan struct{} // cap 1: wakes the maintainer early
	closedCh   chan struct{} // closed when Close begins
	abort      atomic.Bool   // Close's context ended: fail what is queued
	blocked    atomic.Int64  // appends waiting for MaxBytes space
	committer  sync.WaitGroup
	maintainer sync.WaitGroup
	closeOnce  sync.Once
	closeErr   error
	ckptMu     sync.Mutex // serializes cursor file writes, removal and retention

	mu         sync.Mutex
	segs       []*segment // sorted by base; the last one is active
	head       uint64     // offset of the next record to commit
	diskBytes  int64      // committed bytes of all segment files
	queue      []pending
	queued     int64 // framed bytes in queue (not yet taken by the committer)
	queueFrame int64 // framed bytes queued or written but not yet published
	wakeAt     int64 // the committer waits for queued >= wakeAt; 0: not waiting
	closing    bool
	failed     error
	spaceCh    chan struct{} // closed and replaced when queue or disk space frees
	commitCh   chan struct{} // closed and replaced when head advances
	cursors    map[string]*Cursor
	counters   counters
}

// counters are cumulative statistics, guarded by Spool.mu.
type counters struct {
	fsyncs       uint64
	fsyncTime    time.Duration
	fsyncMax     time.Duration
	fsyncBuckets [11]uint64 // len(FsyncBucketBounds)+1
	batches      uint64
	appended     uint64
	dropped      uint64
	deleted      uint64
}

// Open opens (creating if needed) the spool in dir, recovers a torn tail
// left by a crash and loads the durable cursor positions. Only one Spool
// may have dir open at a time.
func Open(dir string, opts Options) (*Spool, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, cursorDir), 0o755); err != nil {
		return nil, fmt.Errorf("creating spool directory: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	s := &Spool{
		dir:      dir,
		opts:     opts,
		log:      opts.Logger.With("spool", dir),
		lock:     lock,
		wake:     make(chan struct{}, 1),
		kick:     make(chan struct{}, 1),
		closedCh: make(chan struct{}),
		spaceCh:  make(chan struct{}),
		commitCh: make(chan struct{}),
		cursors:  make(map[string]*Cursor),
	}
	positions, err := s.loadCursorFiles()
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	var emptyBase uint64
	for _, p := range positions {
		emptyBase = max(emptyBase, p)
	}
	segs, active, err := recoverSegments(dir, emptyBase, opts.SegmentBytes, s.log)
	if err != nil {
		_ = lock.Close()
		return nil, fmt.Errorf("recovering spool: %w", err)
	}
	s.segs = segs
	last := segs[len(segs)-1]
	s.head = last.end()
	for _, g := range segs {
		s.diskBytes += g.bytes
	}
	for name, pos := range positions {
		s.cursors[name] = s.newCursor(name, s.clampPosition(name, pos))
	}
	w := newWriter(s, active, last)
	s.committer.Add(1)
	go w.run()
	s.maintainer.Add(1)
	go s.maintain()
	return s, nil
}

// lockDir takes an exclusive advisory lock on dir so that two processes
// never append to the same spool.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening spool lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("locking spool directory %s: %w", dir, err)
	}
	return f, nil
}

// Append enqueues rec and returns without waiting for it to be durable.
// done (which may be nil) is called from the committer goroutine, in append
// order, once the record is fsynced (err == nil, off is its offset) or has
// failed; it must not block. The spool keeps rec until done is called: the
// caller must not modify it before then.
//
// Append blocks while the append queue is full, or under PolicyBlock while
// the spool holds MaxBytes. It returns an error without calling done when
// the spool is closed or failed, rec is too large, or ctx ends while it
// waits.
func (s *Spool) Append(ctx context.Context, rec []byte, done func(off uint64, err error)) error {
	return s.AppendWait(ctx, rec, 0, done)
}

// ErrWaitTimeout is returned by AppendWait when the spool had no room
// within maxWait.
var ErrWaitTimeout = errors.New("no spool space within the wait limit")

// AppendWait is Append with a bound on how long it waits for space
// (maxWait > 0), returning ErrWaitTimeout when it runs out. The timer is
// only started when Append has to wait, so the common path costs nothing.
func (s *Spool) AppendWait(ctx context.Context, rec []byte, maxWait time.Duration, done func(off uint64, err error)) error {
	var timeout <-chan time.Time
	if len(rec) > s.opts.MaxRecordBytes {
		return fmt.Errorf("appending %d bytes (limit %d): %w", len(rec), s.opts.MaxRecordBytes, ErrTooLarge)
	}
	framed := int64(len(rec)) + frameOverhead
	s.mu.Lock()
	for {
		if s.closing {
			s.mu.Unlock()
			return ErrClosed
		}
		if s.failed != nil {
			err := s.failed
			s.mu.Unlock()
			return err
		}
		queueOK := s.queueFrame == 0 || s.queueFrame+framed <= int64(s.opts.QueueBytes)
		diskOK := s.opts.Policy != PolicyBlock ||
			s.diskBytes+s.queueFrame+framed <= s.opts.MaxBytes
		if queueOK && diskOK {
			break
		}
		ch := s.spaceCh
		s.mu.Unlock()
		if !diskOK {
			s.blocked.Add(1)
			s.kickMaintainer()
		}
		if maxWait > 0 && timeout == nil {
			t := time.NewTimer(maxWait)
			defer t.Stop()
			timeout = t.C
		}
		var err error
		select {
		case <-ch:
		case <-s.closedCh:
		case <-ctx.Done():
			err = ctx.Err()
		case <-timeout:
			err = ErrWaitTimeout
		}
		if !diskOK {
			s.blocked.Add(-1)
		}
		if err != nil {
			return fmt.Errorf("waiting for spool space: %w", err)
		}
		s.mu.Lock()
	}
	s.queue = append(s.queue, pending{data: rec, done: done})
	s.queueFrame += framed
	s.queued += framed
	// Wake the committer only when it waits for this much: once per batch
	// when idle, once per overlapBytes while an fdatasync runs.
	wake := s.wakeAt > 0 && s.queued >= s.wakeAt
	if wake {
		s.wakeAt = 0
	}
	s.mu.Unlock()
	if wake {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// AppendSync appends rec and waits until it is durable, returning its
// offset. If ctx ends after rec was queued, AppendSync returns ctx's error
// but the record may still be committed.
func (s *Spool) AppendSync(ctx context.Context, rec []byte) (uint64, error) {
	type result struct {
		off uint64
		err error
	}
	ch := make(chan result, 1)
	err := s.Append(ctx, rec, func(off uint64, err error) { ch <- result{off, err} })
	if err != nil {
		return 0, err
	}
	select {
	case r := <-ch:
		return r.off, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("waiting for commit: %w", ctx.Err())
	}
}

// Close commits every queued record, persists cursor positions and stops
// the spool's goroutines. If ctx ends first, records still queued fail with
// ErrClosed (their done sees the error) and Close returns ctx's error once
// the in-progress fsync has finished. Close is safe to call twice.
func (s *Spool) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.close(ctx) })
	return s.closeErr
}

func (s *Spool) close(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	close(s.closedCh)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	drained := make(chan struct{})
	go func() { s.committer.Wait(); close(drained) }()
	var errs []error
	select {
	case <-drained:
	case <-ctx.Done():
		s.abort.Store(true)
		select {
		case s.wake <- struct{}{}:
		default:
		}
		<-drained
		errs = append(errs, fmt.Errorf("draining spool: %w", ctx.Err()))
	}
	s.maintainer.Wait()
	if err := s.checkpoint(); err != nil {
		errs = append(errs, err)
	}
	s.mu.Lock()
	cursors := make([]*Cursor, 0, len(s.cursors))
	for _, c := range s.cursors {
		cursors = append(cursors, c)
	}
	s.mu.Unlock()
	for _, c := range cursors {
		c.closeReader()
	}
	if err := s.lock.Close(); err != nil {
		errs = append(errs, fmt.Errorf("releasing spool lock: %w", err))
	}
	return errors.Join(errs...)
}

// kickMaintainer asks the maintainer to checkpoint and apply retention now
// rather than at its next tick.
func (s *Spool) kickMaintainer() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// broadcastSpace wakes every Append waiting for space. Callers hold s.mu.
func (s *Spool) broadcastSpace() {
	close(s.spaceCh)
	s.spaceCh = make(chan struct{})
}

// tail is the oldest offset still stored. Callers hold s.mu.
func (s *Spool) tail() uint64 { return s.segs[0].base }
