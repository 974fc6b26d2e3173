package command

import (
	"context"
	"os"
	"sync/atomic"
	"time"
)

// Flushing (DESIGN.md, "Durability"). Two writers, each on its own
// goroutine, so a Submit never waits behind a store transaction:
//
//   - the accept flush, kicked by Submit, appends the commands created
//     since the last one (fresh) with their events to the accept log:
//     one write and one fdatasync for every Submit waiting meanwhile
//     (group commit). Once written (before the fdatasync) their Submits
//     route them to the broker, concurrently with the sync; they return
//     only after it (see DESIGN.md on what a crash in between means);
//   - the checkpoint, every flushEvery, writes every record changed since
//     the last one (dirty: new ones, state changes) and the events not
//     yet in the bbolt store in one transaction. A record that changed
//     several times in between (accepted → queued → sent → delivered) is
//     written once. It then deletes the log segments it covers.
//
// Lock order: walMu → mu → outbox.mu. The accept flush holds walMu from
// taking the fresh records until they are logged, so a checkpoint (which
// takes walMu to switch segments) never sees them half-way. No lock but
// walMu is held across a write, and walMu never across a store
// transaction.

// flushEvery is the checkpoint period: the longest a state change
// waits to be written to the store.
const flushEvery = 50 * time.Millisecond

// acceptLoop runs accept flushes when kicked until ctx ends, then once
// more. A failed append is retried after a pause.
func (s *Service) acceptLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			_ = s.acceptFlush() // logged; the final checkpoint stores what is left
			return
		case <-s.kick:
		}
		for s.acceptFlush() != nil {
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
				continue
			}
			break
		}
	}
}

// acceptFlush logs the fresh records. After an error they are fresh
// again, for the next one.
func (s *Service) acceptFlush() error {
	s.walMu.Lock()
	defer s.walMu.Unlock()
	s.mu.Lock()
	if len(s.fresh) == 0 {
		s.mu.Unlock()
		return nil
	}
	s.started++
	gen := s.started
	fresh := s.fresh
	s.fresh = nil
	ids := make(map[string]struct{}, len(fresh))
	entries := make([]walEntry, len(fresh))
	for i, id := range fresh {
		r := s.live[id]
		r.fresh, r.gen = false, gen
		entries[i].Rec = copyRecord(r)
		ids[id] = struct{}{}
	}
	evs := s.out.takeFor(ids)
	s.mu.Unlock()
	for _, e := range evs {
		for i := range entries {
			if entries[i].Rec.Status.ID == e.Ev.ID {
				entries[i].Events = append(entries[i].Events, e)
				break
			}
		}
	}
	t0 := time.Now()
	err := s.wal.write(entries)
	if err == nil {
		s.signalFlush(&s.written, gen) // their Submits route them now, while we sync
		err = s.wal.sync()
	}
	s.met.flushSeconds.WithLabelValues("accept").Observe(time.Since(t0).Seconds())
	s.met.flushRecords.WithLabelValues("accept").Observe(float64(len(entries)))
	if err != nil {
		s.log.Error("appending to the command accept log", "err", err)
		s.met.storeErrors.Inc()
		s.mu.Lock()
		for _, id := range fresh {
			s.live[id].fresh = true
		}
		s.fresh = append(fresh, s.fresh...)
		s.out.requeue(toLog, evs, 0)
		s.mu.Unlock()
		return err
	}
	s.out.markStored(toLog, evs)
	s.signalFlush(&s.done, gen)
	return nil
}

// signalFlush advances counter (written or done) to gen and wakes the
// Submits waiting. Accept flushes run one at a time, in number order.
func (s *Service) signalFlush(counter *atomic.Uint64, gen uint64) {
	s.flushMu.Lock()
	counter.Store(gen)
	if s.flushed != nil {
		close(s.flushed)
		s.flushed = nil
	}
	s.flushMu.Unlock()
}

// checkpointLoop checkpoints every flushEvery until ctx ends, then once
// more after the accept flush stopped (everything, fresh records too).
func (s *Service) checkpointLoop(ctx context.Context, acceptDone <-chan struct{}) {
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			<-acceptDone
			s.checkpoint(true)
			return
		case <-t.C:
		}
		s.checkpoint(false)
	}
}

// checkpoint writes the dirty records and the events not yet in the
// store in one transaction, then drops the log segments that held only
// what is now in the store. Records still fresh (waiting for the accept
// log) wait for the next one, unless final. Records no longer pending
// leave memory once written.
func (s *Service) checkpoint(final bool) {
	if s.crashed.Load() {
		return
	}
	s.prepareSegment()
	s.walMu.Lock()
	s.mu.Lock()
	b := &batch{}
	var skip map[string]struct{}
	if !final && len(s.fresh) > 0 {
		skip = make(map[string]struct{}, len(s.fresh))
		for _, id := range s.fresh {
			skip[id] = struct{}{}
		}
	}
	var written []string
	for id, created := range s.dirty {
		if _, ok := skip[id]; ok {
			continue
		}
		b.recs = append(b.recs, copyRecord(s.live[id]))
		b.created = append(b.created, created)
		written = append(written, id)
		delete(s.dirty, id)
	}
	cp := s.out.takeCheckpoint(skip)
	b.events, b.deleteBelow = cp.events, cp.deleteBelow
	cut, err := s.wal.cut()
	s.mu.Unlock()
	s.walMu.Unlock()
	if err != nil {
		s.log.Error("switching the command accept log", "err", err)
	}
	if len(b.recs) > 0 || len(b.events) > 0 || b.deleteBelow > 0 {
		t0 := time.Now()
		err := s.db.write(b)
		s.met.flushSeconds.WithLabelValues("full").Observe(time.Since(t0).Seconds())
		s.met.flushRecords.WithLabelValues("full").Observe(float64(len(b.recs)))
		if err != nil {
			s.log.Error("writing command store", "err", err)
			s.met.storeErrors.Inc()
			s.mu.Lock()
			for i, id := range written {
				s.dirty[id] = s.dirty[id] || b.created[i]
			}
			s.out.requeue(toStore, cp.taken, cp.deleteBelow)
			s.mu.Unlock()
			return
		}
	}
	s.out.checkpointed(cp)
	if cut > 0 {
		if err := s.wal.removeBefore(cut); err != nil {
			s.log.Warn("deleting command accept log segments", "err", err)
		}
	}
	s.mu.Lock()
	for _, id := range written {
		if r := s.live[id]; r != nil && !r.pending() && !r.fresh {
			if _, again := s.dirty[id]; !again {
				delete(s.live, id)
			}
		}
	}
	s.mu.Unlock()
}

// prepareSegment creates the accept log's next segment ahead of the
// checkpoint's switch, outside the locks (it syncs the directory).
func (s *Service) prepareSegment() {
	s.walMu.Lock()
	if s.wal.next != nil {
		s.walMu.Unlock()
		return
	}
	s.wal.alloc++
	n := s.wal.alloc
	s.walMu.Unlock()
	f, err := createSegment(s.wal.dir, n)
	if err != nil {
		s.log.Error("preparing the command accept log", "err", err)
		return
	}
	s.walMu.Lock()
	if s.wal.next == nil && n > s.wal.seg {
		s.wal.next, s.wal.nextSeg, f = f, n, nil
	}
	s.walMu.Unlock()
	if f != nil { // overtaken by an append that made its own segment
		f.Close()
		_ = os.Remove(f.Name())
	}
}

func copyRecord(r *record) record {
	c := *r
	c.Status = copyStatus(r.Status)
	return c
}

// kickFlush asks for an accept flush.
func (s *Service) kickFlush() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// waitFlush waits until accept flush number need (one that began after
// the caller's record was added) has reached counter: written (in the
// log, not yet synced) or done (durable). A flush that fails after its
// write is redone under a higher number: done only ever reaches need
// with the caller's record durable.
func (s *Service) waitFlush(ctx context.Context, counter *atomic.Uint64, need uint64) error {
	for {
		if counter.Load() >= need {
			return nil
		}
		s.flushMu.Lock()
		if counter.Load() >= need {
			s.flushMu.Unlock()
			return nil
		}
		if s.flushed == nil {
			s.flushed = make(chan struct{})
		}
		ch := s.flushed
		s.flushMu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stopped:
			return ErrNotRunning
		}
	}
}
