package command

import (
	"context"
	"time"
)

// Flushing (see DESIGN.md, "Durability"). Two kinds of flush write the
// store, one bbolt transaction (one fsync) each, from one goroutine:
//
//   - an accept flush, kicked by Submit: only the commands created since
//     the last flush (fresh) and their events, so a waiting Submit pays
//     for a small write however many transitions are pending;
//   - a full flush, every flushEvery: the fresh commands too, and every
//     record changed since the last full flush, written once however many
//     times it changed (accepted → queued → sent → delivered within
//     flushEvery is one write), with all numbered events.
//
// No lock is held while the transaction runs.

// flushEvery is the longest a transition waits to be written.
const flushEvery = 50 * time.Millisecond

// flushLoop flushes until ctx ends, then once more (full).
func (s *Service) flushLoop(ctx context.Context) {
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	lastFull := time.Now()
	for {
		full := false
		select {
		case <-ctx.Done():
			s.flush(true)
			return
		case <-s.kick:
			full = time.Since(lastFull) >= flushEvery
		case <-t.C:
			full = true
		}
		if full {
			lastFull = time.Now()
		}
		s.flush(full)
	}
}

// flush writes one batch: the fresh records and their events, and with
// full every changed record and every event. Records that are no longer
// pending leave memory once written.
func (s *Service) flush(full bool) {
	s.mu.Lock()
	b := &batch{}
	ids := make(map[string]struct{}, len(s.fresh))
	for _, id := range s.fresh {
		r := s.live[id]
		r.fresh = false
		b.recs = append(b.recs, copyRecord(r))
		b.created = append(b.created, true)
		ids[id] = struct{}{}
	}
	fresh := s.fresh
	s.fresh = nil
	var dirty map[string]struct{}
	if full {
		dirty = s.dirty
		s.dirty = map[string]struct{}{}
		for id := range dirty {
			b.recs = append(b.recs, copyRecord(s.live[id]))
			b.created = append(b.created, false)
		}
		b.events, b.deleteBelow = s.out.takeNew()
	} else {
		b.events = s.out.takeFor(ids)
	}
	s.started++
	gen := s.started
	s.mu.Unlock()
	if len(b.recs) > 0 || len(b.events) > 0 || b.deleteBelow > 0 {
		if err := s.db.write(b); err != nil {
			s.log.Error("writing command store", "err", err)
			s.met.storeErrors.Inc()
			s.mu.Lock()
			for _, id := range fresh {
				if r := s.live[id]; r != nil && !r.fresh {
					r.fresh = true
					delete(s.dirty, id)
				}
			}
			s.fresh = append(fresh, s.fresh...)
			for id := range dirty {
				if r := s.live[id]; r != nil && !r.fresh {
					s.dirty[id] = struct{}{}
				}
			}
			s.out.requeue(b.events, b.deleteBelow)
			s.mu.Unlock()
			return
		}
	}
	s.out.markStored(b.events)
	s.mu.Lock()
	evict := func(id string) {
		if r := s.live[id]; r != nil && !r.pending() {
			if _, again := s.dirty[id]; !again {
				delete(s.live, id)
			}
		}
	}
	for _, id := range fresh {
		evict(id)
	}
	for id := range dirty {
		evict(id)
	}
	s.done = gen
	if s.flushed != nil {
		close(s.flushed)
		s.flushed = nil
	}
	s.mu.Unlock()
}

func copyRecord(r *record) record {
	c := *r
	c.Status = copyStatus(r.Status)
	return c
}

// waitFlush waits until flush number need (one that began after the
// caller's record was added) has completed.
func (s *Service) waitFlush(ctx context.Context, need uint64) error {
	select {
	case s.kick <- struct{}{}:
	default:
	}
	for {
		s.mu.Lock()
		if s.done >= need {
			s.mu.Unlock()
			return nil
		}
		if s.flushed == nil {
			s.flushed = make(chan struct{})
		}
		ch := s.flushed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		select { // the flush that completed may have started before the record was added
		case s.kick <- struct{}{}:
		default:
		}
	}
}
