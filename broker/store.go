package broker

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/sluicehq/sluice/broker/topic"
)

// SessionStore persists what the broker must not lose across a restart:
// sessions (expiry, subscriptions, inbound QoS 2 ids, outbound inflight
// and queued messages) and retained messages. The broker works in memory
// and hands the store batches of changed state every storeFlushEvery and
// at shutdown (whole sessions, not per-message operations), so one Save
// can be one transaction. A nil store (the default) keeps state in memory
// only, at no cost on the message path.
type SessionStore interface {
	// Load returns the stored state. Serve calls it once, before it
	// accepts connections.
	Load(ctx context.Context) (StoredState, error)
	// Save persists a batch: deletions first, then the sessions and
	// retained messages given, each replacing its stored version.
	Save(ctx context.Context, b StoreBatch) error
}

// StoredState is everything a SessionStore holds.
type StoredState struct {
	Sessions []StoredSession
	Retained []*Message
}

// StoreBatch is the state changed since the previous Save.
type StoreBatch struct {
	DeletedSessions []string
	DeletedRetained []string // topics
	Sessions        []StoredSession
	Retained        []*Message
}

// Empty reports whether the batch holds no change.
func (b *StoreBatch) Empty() bool {
	return len(b.DeletedSessions)+len(b.DeletedRetained)+len(b.Sessions)+len(b.Retained) == 0
}

// StoredSession is one session's persistent state.
type StoredSession struct {
	ClientID string
	// Expiry is the session expiry interval in seconds (0xFFFFFFFF:
	// never). After a restart it counts from the restart.
	Expiry        uint32
	Subscriptions []topic.Sub
	// Outbound holds the inflight QoS 1/2 messages for the client
	// (PacketID set), in send order. Always complete.
	Outbound []StoredDelivery
	// Queued holds messages waiting to be sent, oldest first, each with
	// its Seq. Unless QueueFull, a batch carries only the messages queued
	// since the session's previous save: the store keeps those it has
	// with Seq >= QueueHead and appends these. Load returns the whole
	// queue.
	Queued []StoredDelivery
	// QueueHead is the Seq of the oldest message still queued (messages
	// below it were sent or dropped).
	QueueHead uint64
	// QueueFull says Queued is the whole queue: the store replaces what
	// it has.
	QueueFull bool
	// InboundQoS2 lists the packet ids of QoS 2 messages accepted from the
	// client (PUBREC sent) and not yet released by PUBREL.
	InboundQoS2 []uint16
	// OfflineSince is when the client disconnected; zero if it was
	// connected when saved (its expiry then counts from the restart).
	OfflineSince time.Time
}

// StoredDelivery is one outbound QoS 1/2 message of a session.
type StoredDelivery struct {
	Message  *Message // nil once Released
	QoS      byte
	Retain   bool
	SubID    uint32
	PacketID uint16 // 0: queued, not sent yet
	Released bool   // QoS 2: PUBREC received and PUBREL sent
	Seq      uint64 // queued messages: position in the session's queue
}

// storeFlushEvery is how often changed state is handed to the store.
const storeFlushEvery = 250 * time.Millisecond

// storeState tracks what changed since the last flush. Only used when a
// SessionStore is configured.
type storeState struct {
	mu      sync.Mutex
	dirty   map[string]*session
	deleted map[string]struct{}
	retain  map[string]struct{}
	started uint64             // flushes started
	waiters map[*conn]struct{} // connections with acks waiting (durable.go)
	kick    chan struct{}      // flush now: an ack waits (capacity 1)
	done    uint64             // last flush that succeeded
	flushed chan struct{}      // closed when a flush succeeds (track.go)
}

// markDirty records that ss changed. The per-session flag keeps the
// shared lock off the path of a session that is already dirty.
func (s *Server) markDirty(ss *session) {
	if s.store == nil || ss.dirty.Swap(true) {
		return
	}
	st := &s.storeSt
	st.mu.Lock()
	st.dirty[ss.id] = ss
	st.mu.Unlock()
}

// markEnded records that ss was deleted.
func (s *Server) markEnded(ss *session) {
	if s.store == nil {
		return
	}
	st := &s.storeSt
	st.mu.Lock()
	if st.dirty[ss.id] == ss {
		delete(st.dirty, ss.id)
	}
	st.deleted[ss.id] = struct{}{}
	st.mu.Unlock()
}

// markRetained records that the retained message of a topic changed.
func (s *Server) markRetained(topicName string) {
	if s.store == nil {
		return
	}
	st := &s.storeSt
	st.mu.Lock()
	st.retain[topicName] = struct{}{}
	st.mu.Unlock()
}

// flushStore hands the changes since the last flush to the store.
func (s *Server) flushStore(ctx context.Context) error {
	st := &s.storeSt
	st.mu.Lock()
	dirty, deleted, retain := st.dirty, st.deleted, st.retain
	st.dirty, st.deleted, st.retain = make(map[string]*session), make(map[string]struct{}), make(map[string]struct{})
	st.started++
	flush := st.started
	st.mu.Unlock()
	if err := s.saveChanges(ctx, dirty, deleted, retain); err != nil {
		// Keep the changes for the next attempt; waiting acks stay.
		st.mu.Lock()
		for id, ss := range dirty {
			ss.mu.Lock()
			ss.qFull = true // the appended messages were not written
			ss.mu.Unlock()
			if _, ok := st.dirty[id]; !ok && !ss.ended {
				ss.dirty.Store(true)
				st.dirty[id] = ss
			}
		}
		for id := range deleted {
			if _, ok := st.dirty[id]; !ok {
				st.deleted[id] = struct{}{}
			}
		}
		for t := range retain {
			st.retain[t] = struct{}{}
		}
		st.mu.Unlock()
		return err
	}
	s.releaseAcks(flush)
	s.noteFlushed(flush)
	return nil
}

// saveChanges snapshots the changed sessions and retained topics and
// hands them to the store as one batch.
func (s *Server) saveChanges(ctx context.Context, dirty map[string]*session, deleted, retain map[string]struct{}) error {
	var b StoreBatch
	for id := range deleted {
		b.DeletedSessions = append(b.DeletedSessions, id)
	}
	for _, ss := range dirty {
		ss.dirty.Store(false) // before the snapshot: later changes mark it again
		if stored, ok := s.snapshot(ss); ok {
			b.Sessions = append(b.Sessions, stored)
		}
	}
	for t := range retain {
		if m, ok := s.retained.Get(t); ok {
			b.Retained = append(b.Retained, m)
		} else {
			b.DeletedRetained = append(b.DeletedRetained, t)
		}
	}
	if b.Empty() {
		return nil
	}
	sort.Strings(b.DeletedSessions)
	return s.store.Save(ctx, b)
}

// snapshot copies a session's persistent state; false if it has ended.
func (s *Server) snapshot(ss *session) (StoredSession, bool) {
	ss.mu.Lock()
	if ss.ended {
		ss.mu.Unlock()
		return StoredSession{}, false
	}
	out := StoredSession{ClientID: ss.id, Expiry: ss.expiry, OfflineSince: ss.offlineAt}
	for _, d := range ss.inflight {
		out.Outbound = append(out.Outbound, storedDelivery(d))
	}
	head := ss.qTail - uint64(ss.qlen())
	out.QueueHead, out.QueueFull = head, ss.qFull
	from := max(head, ss.qSaved)
	if ss.qFull {
		from = head
	}
	for i := ss.qhead + int(from-head); i < len(ss.queue); i++ {
		sd := storedDelivery(ss.queue[i])
		sd.PacketID = 0
		sd.Seq = head + uint64(i-ss.qhead)
		out.Queued = append(out.Queued, sd)
	}
	ss.qSaved, ss.qFull = ss.qTail, false
	for id, recSent := range ss.inQoS2 {
		if recSent {
			out.InboundQoS2 = append(out.InboundQoS2, id)
		}
	}
	ss.mu.Unlock()
	sort.Slice(out.InboundQoS2, func(i, j int) bool { return out.InboundQoS2[i] < out.InboundQoS2[j] })
	out.Subscriptions = s.subs.ClientSubs(ss.id)
	return out, true
}

func storedDelivery(d delivery) StoredDelivery {
	return StoredDelivery{Message: d.msg, QoS: d.qos, Retain: d.flags&dRetain != 0, SubID: d.subID,
		PacketID: d.pid, Released: d.flags&dRel != 0}
}

// restore loads the store's state into the (still empty) server.
func (s *Server) restore(ctx context.Context) error {
	state, err := s.store.Load(ctx)
	if err != nil {
		return err
	}
	for _, m := range state.Retained {
		if m != nil && len(m.Payload) > 0 {
			s.retained.Set(m.Topic, m)
		}
	}
	now := time.Now()
	for _, st := range state.Sessions {
		remaining := st.Expiry
		if st.Expiry != expiryNever && !st.OfflineSince.IsZero() {
			gone := now.Sub(st.OfflineSince)
			if gone >= time.Duration(st.Expiry)*time.Second {
				// Expired while the broker was down.
				s.storeSt.deleted[st.ClientID] = struct{}{}
				continue
			}
			remaining = st.Expiry - uint32(gone/time.Second)
		}
		ss := &session{id: st.ClientID, expiry: st.Expiry, connectExpiry: st.Expiry, offlineAt: st.OfflineSince}
		if ss.offlineAt.IsZero() {
			ss.offlineAt = now
		}
		for _, sd := range append(st.Outbound, st.Queued...) {
			d := delivery{msg: sd.Message, qos: sd.QoS, subID: sd.SubID, pid: sd.PacketID}
			if sd.Retain {
				d.flags |= dRetain
			}
			switch {
			case sd.Released:
				d.flags |= dRel
			case sd.Message == nil:
				continue
			}
			if sd.PacketID == 0 {
				ss.queue = append(ss.queue, d)
				ss.queuedBytes += len(sd.Message.Payload)
				ss.qTail = sd.Seq + 1
				continue
			}
			ss.seq++
			d.seq = ss.seq
			ss.lastPID = sd.PacketID
			ss.inflight = append(ss.inflight, d)
		}
		ss.qSaved = ss.qTail
		if ss.qTail < uint64(len(ss.queue)) { // no sequence numbers: rewrite
			ss.qTail, ss.qSaved, ss.qFull = uint64(len(ss.queue)), uint64(len(ss.queue)), true
		}
		if len(st.InboundQoS2) > 0 {
			ss.inQoS2 = make(map[uint16]bool, len(st.InboundQoS2))
			for _, id := range st.InboundQoS2 {
				ss.inQoS2[id] = true
			}
			ss.relWait = len(st.InboundQoS2)
			ss.relWaitN.Store(int32(ss.relWait))
		}
		for _, sub := range st.Subscriptions {
			sub.ClientID = st.ClientID
			s.subs.Add(sub)
		}
		sh := s.sessions.shard(ss.id)
		sh.mu.Lock()
		sh.m[ss.id] = ss
		ss.mu.Lock()
		if ss.expiry != expiryNever {
			ss.expTimer = s.sessionTimer(ss, remaining, true)
		}
		ss.mu.Unlock()
		sh.mu.Unlock()
		s.stats.sessions.Add(1)
	}
	return nil
}

// runStore flushes changes periodically until stop is closed, then once
// more.
func (s *Server) runStore(stop <-chan struct{}) {
	defer s.wg.Done()
	t := time.NewTicker(storeFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := s.flushStore(s.baseCtx); err != nil {
				s.log.Error("saving broker state", "err", err)
			}
		case <-s.storeSt.kick:
			// Acks wait: flush now. Acks registered during this flush
			// share the next one.
			if err := s.flushStore(s.baseCtx); err != nil {
				s.log.Error("saving broker state", "err", err)
			}
		case <-stop:
			if err := s.flushStore(context.WithoutCancel(s.baseCtx)); err != nil {
				s.log.Error("saving broker state at shutdown", "err", err)
			}
			return
		}
	}
}
