package command

import (
	"context"
	"time"

	"github.com/sluicehq/sluice/broker"
)

// rank orders the states a command moves forward through.
func rank(s State) int {
	switch s {
	case "":
		return 0
	case Accepted:
		return 1
	case Queued:
		return 2
	case Sent:
		return 3
	case Delivered:
		return 4
	case Responded:
		return 5
	}
	return 6 // expired, rejected, failed
}

// applyLocked moves r to state (filling in skipped intermediate states,
// so accepted → delivered also reports queued and sent, and a reply
// implies delivery) and queues the events. It reports whether anything changed. s.mu must be held.
func (s *Service) applyLocked(r *record, to State, reason string, response []byte, now time.Time) bool {
	cur := r.Status.State
	switch {
	case cur != "" && cur.Final():
		return false
	case (to == Expired || to == Failed) && rank(cur) >= rank(Delivered):
		return false // delivered already (to another subscriber of a topic, or before a late drop report)
	case to == Expired || to == Rejected || to == Failed:
	case rank(to) <= rank(cur):
		return false
	}
	wasPending := r.Status.State != "" && r.pending()
	var steps []State
	if to != Expired && to != Rejected && to != Failed && cur != "" {
		for _, st := range []State{Queued, Sent, Delivered} {
			if rank(st) > rank(cur) && rank(st) < rank(to) {
				steps = append(steps, st)
			}
		}
	}
	steps = append(steps, to)
	for _, st := range steps {
		tr := Transition{State: st, At: now}
		if st == to {
			tr.Reason = reason
		}
		r.Status.History = append(r.Status.History, tr)
		r.Status.State, r.Status.UpdatedAt = st, now
		if st == to {
			r.Status.Reason = reason
			if response != nil {
				r.Status.Response = response
			}
		}
		s.met.transitions.WithLabelValues(string(st)).Inc()
		s.out.add(eventFrom(r, len(r.Status.History)-1), len(r.Status.History)-1)
	}
	if wasPending && !r.pending() {
		s.pending--
		s.met.pending.Set(float64(s.pending))
	}
	if _, ok := s.dirty[r.Status.ID]; !ok {
		s.dirty[r.Status.ID] = false // written by the next checkpoint (≤ flushEvery), with its events
	}
	return true
}

// eventFrom is the status event of r's transition number idx. Events
// are stored as (command id, idx) and rebuilt with it from the record.
func eventFrom(r *record, idx int) Event {
	tr := r.Status.History[idx]
	ev := Event{ID: r.Status.ID, State: tr.State, At: tr.At, Device: r.Status.Device, Topic: r.Status.Topic,
		Source: r.Status.Source, CorrelationID: r.Status.CorrelationID, Reason: tr.Reason}
	if tr.State == Responded {
		ev.Response = r.Status.Response
	}
	return ev
}

// transition moves command id to state. from, when set, is the client
// the step happened in: it must be the command's device, if it has one.
func (s *Service) transition(id, from string, to State, reason string, response []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.live[id]
	if r == nil {
		if s.db == nil || (to != Responded) {
			return false
		}
		// A reply to a delivered command, no longer in memory.
		rec, ok, err := s.db.get(id)
		if err != nil || !ok {
			return false
		}
		r = &rec
		if r.Status.State.Final() {
			return false
		}
		s.live[id] = r
	}
	if from != "" && r.Cmd.Device != "" && from != r.Cmd.Device {
		return false
	}
	return s.applyLocked(r, to, reason, response, time.Now())
}

// Track implements broker.Tracker. It runs under the broker's session
// lock: it only updates memory.
func (s *Service) Track(ev broker.TrackEvent) {
	var to State
	switch ev.Kind {
	case broker.TrackQueued:
		to = Queued
	case broker.TrackSent:
		to = Sent
	case broker.TrackDelivered:
		to = Delivered
	case broker.TrackExpired:
		to = Expired
	case broker.TrackFailed:
		to = Failed
	default:
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.live[ev.CommandID]
	if r == nil || (r.Cmd.Device != "" && ev.ClientID != r.Cmd.Device) {
		return
	}
	s.applyLocked(r, to, ev.Reason, nil, time.Now())
}

// sweepEvery is how often TTLs are checked.
const sweepEvery = 250 * time.Millisecond

// sentGrace is how long after its TTL a command written to a connection
// but not acknowledged is given up (the broker completes a delivery it
// started, also after the expiry, when the client comes back).
const sentGrace = time.Minute

// sweepLoop expires commands whose TTL ran out, retries publishing those
// the broker did not take, and purges statuses past their retention.
func (s *Service) sweepLoop(ctx context.Context) {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	lastPurge := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		var expire, retry []string
		s.mu.Lock()
		for id, r := range s.live {
			switch {
			case !r.pending():
			case r.Status.State == Sent && now.After(r.Expires.Add(sentGrace)):
				expire = append(expire, id)
			case r.Status.State != Sent && !now.Before(r.Expires):
				expire = append(expire, id)
			case r.Status.State == Accepted && !r.publishing && now.Sub(r.Status.UpdatedAt) > time.Second &&
				!r.fresh && r.gen <= s.done.Load():
				// Not taken by the broker. One not logged yet is its
				// Submit's to route (after a failed write, too).
				retry = append(retry, id)
			}
		}
		s.mu.Unlock()
		for _, id := range expire {
			s.transition(id, "", Expired, "TTL ran out before the device acknowledged it", nil)
		}
		if ref := s.b.Load(); ref != nil {
			for _, id := range retry {
				_, _ = s.publish(ctx, ref.b, id, false)
			}
		}
		if now.Sub(lastPurge) >= time.Minute {
			lastPurge = now
			s.purge(now)
		}
	}
}

// purge deletes statuses past their retention.
func (s *Service) purge(now time.Time) {
	s.mu.Lock()
	inMemory := make(map[string]bool, len(s.live))
	for id := range s.live {
		inMemory[id] = true
	}
	s.mu.Unlock()
	for {
		n, err := s.db.purge(now.Add(-s.cfg.Retention), func(id string) bool { return inMemory[id] }, 1000)
		if err != nil {
			s.log.Error("purging command statuses", "err", err)
			return
		}
		s.met.purged.Add(float64(n))
		if n < 1000 {
			return
		}
	}
}
