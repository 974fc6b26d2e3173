package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/broker/topic"
)

// Tracked delivery (downstream commands, broker/command). A message with
// Message.CommandID set is reported to Options.Tracker at every step of
// its way to each session: queued, written to the connection, acknowledged
// (PUBACK / PUBCOMP), expired or dropped. Untracked messages pay one
// string-length check at those points. The command id travels with the
// message in session queues and the SessionStore; it is never sent on the
// wire.

// TrackKind is a step of a tracked message's delivery to one session.
type TrackKind uint8

// The steps reported to a Tracker.
const (
	// TrackQueued: the message waits in the session's queue (the client
	// is offline or its inflight window is full).
	TrackQueued TrackKind = iota + 1
	// TrackSent: the message was written to the client's connection.
	TrackSent
	// TrackDelivered: the client acknowledged it (PUBACK for QoS 1,
	// PUBCOMP for QoS 2).
	TrackDelivered
	// TrackExpired: it was dropped because its message expiry passed.
	TrackExpired
	// TrackFailed: it was dropped for another reason (TrackEvent.Reason).
	TrackFailed
)

// String names the step.
func (k TrackKind) String() string {
	switch k {
	case TrackQueued:
		return "queued"
	case TrackSent:
		return "sent"
	case TrackDelivered:
		return "delivered"
	case TrackExpired:
		return "expired"
	case TrackFailed:
		return "failed"
	}
	return fmt.Sprintf("TrackKind(%d)", uint8(k))
}

// TrackEvent is one step of a tracked message's delivery.
type TrackEvent struct {
	ClientID  string // the session the step happened in
	CommandID string
	Kind      TrackKind
	Reason    string // why, for TrackFailed
}

// Tracker observes tracked messages (Options.Tracker). Track is called
// with session locks held, from connection and timer goroutines: it must
// not block and must not call back into the Server. Steps of one session
// arrive in order; TrackSent may be reported again when a message is
// resent after a reconnect.
type Tracker interface {
	Track(ev TrackEvent)
}

// track reports a step of m in ss, if m is tracked.
func (s *Server) track(ss *session, m *Message, k TrackKind, reason string) {
	if m == nil || m.CommandID == "" || s.tracker == nil {
		return
	}
	s.tracker.Track(TrackEvent{ClientID: ss.id, CommandID: m.CommandID, Kind: k, Reason: reason})
}

// holdsLocked reports whether ss has a message of command id queued or
// inflight. ss.mu must be held.
func (ss *session) holdsLocked(id string) bool {
	for i := range ss.inflight {
		if m := ss.inflight[i].msg; m != nil && m.CommandID == id {
			return true
		}
	}
	for i := ss.qhead; i < len(ss.queue); i++ {
		if ss.queue[i].msg.CommandID == id {
			return true
		}
	}
	return false
}

// trackEndLocked reports every tracked message still held by an ending
// session as failed. ss.mu must be held.
func (s *Server) trackEndLocked(ss *session) {
	if s.tracker == nil {
		return
	}
	for i := range ss.inflight {
		s.track(ss, ss.inflight[i].msg, TrackFailed, "session ended before the client acknowledged it")
	}
	for i := ss.qhead; i < len(ss.queue); i++ {
		s.track(ss, ss.queue[i].msg, TrackFailed, "session ended before the message was sent")
	}
}

// releasedMsg is what a QoS 2 delivery keeps after PUBREC: nothing for an
// untracked message, the command id for a tracked one (so PUBCOMP can be
// reported, also after a restart).
func releasedMsg(m *Message) *Message {
	if m == nil || m.CommandID == "" {
		return nil
	}
	return &Message{CommandID: m.CommandID}
}

// ackReasonText describes a negative PUBREC from a client.
func ackReasonText(code byte) string {
	return fmt.Sprintf("refused by the client: reason code 0x%02X", code)
}

// CommandPending reports whether the session of clientID holds a message
// of command id (queued or sent and not yet acknowledged).
func (s *Server) CommandPending(clientID, id string) bool {
	ss := s.sessions.get(clientID)
	if ss == nil {
		return false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return !ss.ended && ss.holdsLocked(id)
}

// PublishCommand publishes a tracked message (m.CommandID must be set) as
// Publish does, and returns the client ids of the sessions whose
// subscriptions it matched. A session that already holds a message with
// the same CommandID (queued or inflight, e.g. restored from the store)
// counts as matched but gets no second copy. With a SessionStore it
// returns only once a store flush that began after the message was
// handed to the sessions has succeeded, so it survives a restart; ctx
// bounds that wait.
func (s *Server) PublishCommand(ctx context.Context, m *Message) ([]string, error) {
	switch {
	case m == nil:
		return nil, errors.New("publishing command: nil message")
	case m.CommandID == "":
		return nil, errors.New("publishing command: no command id")
	case m.Retain:
		return nil, errors.New("publishing command: a command cannot be retained")
	case !topic.ValidName([]byte(m.Topic)):
		return nil, fmt.Errorf("publishing command: invalid topic name %q", m.Topic)
	case m.QoS > 2:
		return nil, fmt.Errorf("publishing command: invalid QoS %d", m.QoS)
	}
	cp := *m
	if cp.ReceivedAt.IsZero() {
		cp.ReceivedAt = time.Now()
	}
	matched := s.routeCommand(&cp)
	if len(matched) == 0 || s.store == nil {
		return matched, nil
	}
	if err := s.waitStoreFlush(ctx); err != nil {
		return matched, fmt.Errorf("publishing command: waiting for the session store: %w", err)
	}
	return matched, nil
}

// routeCommand routes a tracked message like route (waiting for room of
// live QoS 0 subscribers) and collects the matched sessions.
func (s *Server) routeCommand(m *Message) []string {
	expiry, alive := remainingExpiry(m, time.Now())
	if !alive {
		s.stats.drop(dropExpired)
		return nil
	}
	rc := routePool.Get().(*routeCtx)
	rc.m, rc.expiry, rc.wait, rc.pacer, rc.waitUntil, rc.durable = m, expiry, true, nil, 0, false
	rc.subs = s.subs.Match(sbytes(m.Topic), rc.subs[:0])
	var matched []string
	for subs := rc.subs; len(subs) > 0; {
		n := topic.NextGroup(subs)
		sub := subs[0]
		if sub.Group != "" {
			sub, _ = s.picker.Pick(sub.Group, sub.Filter, subs[:n], s.online)
		}
		subs = subs[n:]
		if s.sessions.get(sub.ClientID) == nil {
			continue
		}
		matched = append(matched, sub.ClientID)
		s.deliverTo(rc, &sub)
	}
	rc.m = nil
	clear(rc.subs)
	rc.encOK = [2][2]bool{}
	routePool.Put(rc)
	return matched
}

// deliverTrackedQoS0 sends a tracked message at QoS 0 (the subscription's
// QoS) to ss: it is never queued, so it is sent or it fails.
func (s *Server) deliverTrackedQoS0(ss *session, rc *routeCtx, subID uint32, retain bool) {
	m := rc.m
	c := ss.conn.Load()
	if c == nil {
		s.stats.drop(dropOffline)
		s.trackLocking(ss, m, TrackFailed, "client offline (QoS 0 is not queued)")
		return
	}
	if c.sendPublish(m, 0, 0, retain, false, subID, rc.expiry) {
		s.trackLocking(ss, m, TrackSent, "")
	} else {
		s.trackLocking(ss, m, TrackFailed, "not written to the client (buffer full or too large)")
	}
}

// trackLocking reports a step under ss.mu (so that the session's steps
// stay ordered).
func (s *Server) trackLocking(ss *session, m *Message, k TrackKind, reason string) {
	ss.mu.Lock()
	s.track(ss, m, k, reason)
	ss.mu.Unlock()
}

// waitStoreFlush kicks the store flusher and waits until a flush that
// began after the call has succeeded.
func (s *Server) waitStoreFlush(ctx context.Context) error {
	st := &s.storeSt
	st.mu.Lock()
	need := st.started + 1
	st.mu.Unlock()
	for {
		select {
		case st.kick <- struct{}{}:
		default:
		}
		st.mu.Lock()
		if st.done >= need {
			st.mu.Unlock()
			return nil
		}
		if st.flushed == nil {
			st.flushed = make(chan struct{})
		}
		ch := st.flushed
		st.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.hardCh:
			return errors.New("broker shut down")
		}
	}
}

// noteFlushed records a successful flush and wakes waitStoreFlush.
func (s *Server) noteFlushed(flush uint64) {
	st := &s.storeSt
	st.mu.Lock()
	st.done = max(st.done, flush)
	if st.flushed != nil {
		close(st.flushed)
		st.flushed = nil
	}
	st.mu.Unlock()
}

// trackAckLocked reports the client's acknowledgement of inflight[i]
// before it is removed. ss.mu must be held.
func (s *Server) trackAckLocked(ss *session, i int, code byte) {
	d := &ss.inflight[i]
	if d.msg == nil || d.msg.CommandID == "" {
		return
	}
	if code >= 0x80 {
		s.track(ss, d.msg, TrackFailed, ackReasonText(code))
		return
	}
	s.track(ss, d.msg, TrackDelivered, "")
}
