package command

import (
	"errors"
	"fmt"
	"time"
)

// open opens the store and the accept log and loads what was pending:
// the store's pending records and outbox, then every logged command the
// store does not have (accepted after the last checkpoint before a
// crash) with its events. The logged ones are marked for the first
// checkpoint, which then deletes the replayed segments.
func (s *Service) open() error {
	d, err := openDB(s.dir)
	if err != nil {
		return err
	}
	recs, events, lost, err := d.loadPending()
	if err != nil {
		d.close()
		return err
	}
	if lost > 0 {
		s.log.Warn("status events dropped: their commands were purged", "events", lost)
		s.out.countLost(lost, "purged")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.db = d
	for i := range recs {
		r := recs[i]
		s.live[r.Status.ID] = &r
		s.pending++
	}
	logged := map[string]bool{} // ids taken from the log
	tooOld, stale := time.Now().Add(-s.cfg.Retention), 0
	var loggedEvents []seqEvent
	seen := map[uint64]bool{}
	next, bad, err := replayWAL(s.dir, func(e walEntry) error {
		id := e.Rec.Status.ID
		if e.Rec.Status.UpdatedAt.Before(tooOld) {
			stale++ // older than the retention: purged from the store, or down that long
			return nil
		}
		if _, ok := s.live[id]; ok && !logged[id] {
			return nil // pending in the store: written there after it was logged
		}
		if !logged[id] {
			if _, ok, err := d.get(id); err != nil || ok {
				return err // in the store already
			}
		} else if s.live[id].pending() {
			s.pending-- // logged again (an append was retried): the later entry wins
		}
		r := e.Rec
		s.live[id] = &r
		s.dirty[id] = true
		logged[id] = true
		if r.pending() {
			s.pending++
		}
		for _, ev := range e.Events {
			if !seen[ev.Seq] && ev.Idx < len(r.Status.History) {
				seen[ev.Seq] = true
				ev.Ev = eventFrom(&r, ev.Idx)
				loggedEvents = append(loggedEvents, ev)
			}
		}
		return nil
	})
	if err != nil {
		return errors.Join(fmt.Errorf("replaying the command accept log: %w", err), d.close())
	}
	if bad > 0 {
		s.log.Warn("command accept log: segments end in a torn write (an append interrupted by a crash, never acknowledged)", "segments", bad)
	}
	if stale > 0 {
		s.log.Warn("command accept log: entries older than the retention skipped", "entries", stale)
	}
	if len(logged) > 0 {
		s.log.Info("commands recovered from the accept log", "commands", len(logged))
	}
	s.wal = &wal{dir: s.dir, seg: max(next, 1) - 1, alloc: max(next, 1) - 1}
	sortSeq(loggedEvents)
	s.out.load(events, loggedEvents)
	s.met.pending.Set(float64(s.pending))
	return nil
}

// close closes the accept log and the store.
func (s *Service) close() error {
	s.walMu.Lock()
	werr := s.wal.close()
	s.walMu.Unlock()
	return errors.Join(werr, s.db.close())
}
