package broker

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/broker/auth"
	"github.com/sluicehq/sluice/broker/packet"
)

// expiryNever is the session expiry interval meaning "never expires".
const expiryNever = 0xFFFFFFFF

// session is the server side of an MQTT session: it outlives connections
// when the session expiry interval allows. Subscriptions live in the
// server's topic.Tree keyed by client id, not here.
type session struct {
	id    string
	conn  atomic.Pointer[conn] // attached connection; stored under mu
	dirty atomic.Bool          // changed since the last store flush

	mu            sync.Mutex // guards everything below
	ended         bool
	gen           uint64 // bumped on attach and detach; timers check it
	expiry        uint32 // seconds, expiryNever = never
	connectExpiry uint32 // as requested on CONNECT

	inflight    []delivery // outbound QoS 1/2 sent and not completed, in send order
	queue       []delivery // outbound QoS 1/2 waiting for the window
	qhead       int
	queuedBytes int
	// Queue persistence (store.go): qTail is the sequence number the next
	// queued message gets (the queue holds qTail-qlen() .. qTail-1);
	// qSaved is qTail at the last snapshot; qFull asks the next snapshot
	// to rewrite the whole queue (after a failed save).
	qTail, qSaved uint64
	qFull         bool
	lastPID       uint16
	seq           uint64

	inQoS2   map[uint16]bool // inbound QoS 2 ids not yet released; true = PUBREC sent
	relWait  int             // inQoS2 entries with PUBREC sent
	relWaitN atomic.Int32    // relWait, readable without mu

	will      *Message      // delayed will waiting for willTimer
	willIdent auth.Identity // whose will: checked against the ACL when it fires
	// ident is the identity of the last attached connection (unknown for
	// a session restored from the store until it resumes): ACL re-checks
	// of an offline session's subscriptions use it.
	ident     auth.Identity
	willTimer *time.Timer
	expTimer  *time.Timer
	offlineAt time.Time // when the client left; zero while connected
}

// delivery is one outbound QoS 1/2 message for a session.
type delivery struct {
	msg   *Message
	seq   uint64 // order in which packet ids were assigned
	subID uint32
	pid   uint16
	qos   byte
	flags byte
}

// delivery flags.
const (
	dRetain byte = 1 << iota // RETAIN set on the outgoing PUBLISH
	dRel                     // PUBREC received, PUBREL sent
)

// sessionTable maps client ids to sessions, sharded to keep lock hold
// times short under many concurrent lookups.
type sessionTable struct {
	seed   maphash.Seed
	shards [64]sessionShard
}

type sessionShard struct {
	mu sync.RWMutex
	m  map[string]*session
	_  [32]byte // keep shards on separate cache lines
}

func (t *sessionTable) init() {
	t.seed = maphash.MakeSeed()
	for i := range t.shards {
		t.shards[i].m = make(map[string]*session)
	}
}

func (t *sessionTable) shard(id string) *sessionShard {
	return &t.shards[maphash.String(t.seed, id)%uint64(len(t.shards))]
}

func (t *sessionTable) get(id string) *session {
	sh := t.shard(id)
	sh.mu.RLock()
	ss := sh.m[id]
	sh.mu.RUnlock()
	return ss
}

// each calls fn for every session.
func (t *sessionTable) each(fn func(*session)) {
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.RLock()
		list := make([]*session, 0, len(sh.m))
		for _, ss := range sh.m {
			list = append(list, ss)
		}
		sh.mu.RUnlock()
		for _, ss := range list {
			fn(ss)
		}
	}
}

// capExpiry applies Config.MaxSessionExpiry to a requested interval.
func (s *Server) capExpiry(v uint32) uint32 {
	if s.cfg.MaxSessionExpiry > 0 {
		if limit := uint32(s.cfg.MaxSessionExpiry / time.Second); v > limit {
			return limit
		}
	}
	return v
}

// attach binds c to the session of c.clientID, taking it over from a
// connection still holding it, and queues the CONNACK (through connack,
// called under the session lock so that nothing is sent before it). A
// resumed session's inflight messages are then resent.
func (s *Server) attach(c *conn, clean bool, expiry uint32, connack func(present bool)) {
	for {
		sh := s.sessions.shard(c.clientID)
		sh.mu.Lock()
		ss := sh.m[c.clientID]
		var will *Message
		if ss != nil {
			ss.mu.Lock()
			if old := ss.conn.Load(); old != nil {
				ss.mu.Unlock()
				sh.mu.Unlock()
				old.kick(packet.SessionTakenOver)
				old.done.Wait()
				continue
			}
			if clean {
				will = s.endSessionLocked(sh, ss)
				ss.mu.Unlock()
				ss = nil
			}
		}
		present := ss != nil
		if ss == nil {
			ss = &session{id: c.clientID}
			sh.m[c.clientID] = ss
			s.stats.sessions.Add(1)
			ss.mu.Lock()
		}
		ss.gen++
		ss.stopTimersLocked()
		ss.will = nil // a new connection cancels a delayed will [MQTT-3.1.3-9]
		ss.expiry, ss.connectExpiry = expiry, expiry
		c.sess = ss
		ss.ident = c.ident
		ss.offlineAt = time.Time{}
		ss.conn.Store(c)
		if present {
			s.revokeDenied(ss.id, c.ident) // made under an older ACL or by another user
		}
		connack(present)
		if present {
			ss.resumeLocked(s, c)
		}
		ss.mu.Unlock()
		sh.mu.Unlock()
		s.markDirty(ss)
		if will != nil {
			s.publishWill(will)
		}
		return
	}
}

// detach unbinds a closing connection from its session, publishes or
// schedules its will, and ends or schedules the end of the session.
func (s *Server) detach(c *conn) {
	ss := c.sess
	sh := s.sessions.shard(ss.id)
	var wills []*Message
	sh.mu.Lock()
	ss.mu.Lock()
	if ss.conn.Load() == c {
		ss.conn.Store(nil)
		ss.offlineAt = time.Now()
		ss.gen++
		will := c.will
		if ss.ended || ss.expiry == 0 {
			if !ss.ended {
				if w := s.endSessionLocked(sh, ss); w != nil {
					wills = append(wills, w)
				}
			}
			if will != nil && s.willAllowed(c.ident, will) {
				wills = append(wills, will)
			}
		} else {
			if will != nil {
				if c.willDelay == 0 {
					if s.willAllowed(c.ident, will) {
						wills = append(wills, will)
					}
				} else {
					ss.will, ss.willIdent = will, c.ident
					d := min(c.willDelay, ss.expiry)
					ss.willTimer = s.sessionTimer(ss, d, false)
				}
			}
			if ss.expiry != expiryNever {
				ss.expTimer = s.sessionTimer(ss, ss.expiry, true)
			}
		}
	}
	ss.mu.Unlock()
	sh.mu.Unlock()
	s.markDirty(ss)
	for _, w := range wills {
		s.publishWill(w)
	}
}

// sessionTimer schedules the session's expiry (end) or its delayed will
// after secs seconds. Both are void once the session is attached again.
func (s *Server) sessionTimer(ss *session, secs uint32, end bool) *time.Timer {
	gen := ss.gen
	return time.AfterFunc(time.Duration(secs)*time.Second, func() {
		if !s.startTimerFunc() {
			return
		}
		defer s.wg.Done()
		sh := s.sessions.shard(ss.id)
		sh.mu.Lock()
		ss.mu.Lock()
		var will *Message
		if ss.gen == gen && !ss.ended && ss.conn.Load() == nil {
			if end {
				will = s.endSessionLocked(sh, ss)
			} else {
				will, ss.will = ss.will, nil
				if will != nil && !s.willAllowed(ss.willIdent, will) {
					will = nil
				}
			}
		}
		ss.mu.Unlock()
		sh.mu.Unlock()
		if will != nil {
			s.publishWill(will)
		}
	})
}

// endSessionLocked deletes a session and its subscriptions. It returns
// the session's pending delayed will, which the caller publishes after
// unlocking. sh.mu and ss.mu must be held.
func (s *Server) endSessionLocked(sh *sessionShard, ss *session) *Message {
	ss.ended = true
	s.markEnded(ss)
	if sh.m[ss.id] == ss {
		delete(sh.m, ss.id)
		s.stats.sessions.Add(-1)
	}
	s.subs.RemoveClient(ss.id)
	ss.stopTimersLocked()
	s.trackEndLocked(ss)
	ss.inflight, ss.queue, ss.qhead, ss.queuedBytes = nil, nil, 0, 0
	ss.inQoS2 = nil
	will := ss.will
	ss.will = nil
	if will != nil && !s.willAllowed(ss.willIdent, will) {
		return nil
	}
	return will
}

// willAllowed checks a will against the ACL again when it fires (the
// rules may have changed since CONNECT); a denied will is dropped, logged
// and counted.
func (s *Server) willAllowed(id auth.Identity, m *Message) bool {
	if s.auth == nil || s.auth.CanPublish(id, m.Topic) {
		return true
	}
	s.stats.denied[deniedPublish].Add(1)
	s.log.Info("will not published: topic not authorised", "client_id", id.ClientID, "topic", m.Topic)
	return false
}

func (ss *session) stopTimersLocked() {
	if ss.willTimer != nil {
		ss.willTimer.Stop()
		ss.willTimer = nil
	}
	if ss.expTimer != nil {
		ss.expTimer.Stop()
		ss.expTimer = nil
	}
}

// stopTimers stops the session's timers at server shutdown.
func (ss *session) stopTimers(*Server) {
	ss.mu.Lock()
	ss.stopTimersLocked()
	ss.mu.Unlock()
}

// publishWill hands a will message to the consumer like any PUBLISH and
// routes it once accepted.
func (s *Server) publishWill(m *Message) {
	m.ReceivedAt = time.Now()
	if s.consumer == nil {
		s.deliverAccepted(m, m.ClientID, true, nil)
		return
	}
	s.consumer.Deliver(s.baseCtx, m, func(err error) {
		if err == nil {
			s.deliverAccepted(m, m.ClientID, false, nil)
		} else {
			s.stats.rejected.Add(1)
		}
	})
}

func (ss *session) qlen() int { return len(ss.queue) - ss.qhead }

// enqueue delivers a QoS 1/2 message to the session: sent at once when
// the client is online and the inflight window has room, queued otherwise
// (bounded by MaxQueuedMessages and MaxQueuedBytes; beyond them dropped).
// It reports whether the message was queued for an offline session while
// a store is configured: the publisher's ack then waits for the store.
func (ss *session) enqueue(s *Server, m *Message, qos byte, retain bool, subID uint32) bool {
	d := delivery{msg: m, qos: qos, subID: subID}
	if retain {
		d.flags |= dRetain
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ended {
		s.track(ss, m, TrackFailed, "session ended")
		return false
	}
	if m.CommandID != "" && ss.holdsLocked(m.CommandID) {
		return false // a command re-driven after a restart: held already
	}
	s.markDirty(ss)
	c := ss.conn.Load()
	if c != nil && ss.qlen() == 0 && len(ss.inflight) < c.window {
		ss.sendLocked(s, c, d)
		return false
	}
	if ss.qlen() >= s.cfg.MaxQueuedMessages || ss.queuedBytes+len(m.Payload) > s.cfg.MaxQueuedBytes {
		s.stats.drop(dropQueueFull)
		s.track(ss, m, TrackFailed, "session queue full")
		if c != nil && c.noteFull() {
			c.kickSlow() // ss.mu before outMu: allowed
		}
		return false
	}
	if c != nil {
		c.noteRoom()
	}
	if ss.qhead > 0 && ss.qhead >= len(ss.queue)/2 {
		n := copy(ss.queue, ss.queue[ss.qhead:])
		clear(ss.queue[n:])
		ss.queue, ss.qhead = ss.queue[:n], 0
	}
	ss.queue = append(ss.queue, d)
	ss.queuedBytes += len(m.Payload)
	ss.qTail++
	s.track(ss, m, TrackQueued, "")
	return c == nil && s.store != nil
}

// sendLocked assigns a packet id and sends d, keeping it inflight.
func (ss *session) sendLocked(s *Server, c *conn, d delivery) {
	expiry, alive := remainingExpiry(d.msg, time.Now())
	if !alive {
		s.stats.drop(dropExpired)
		s.track(ss, d.msg, TrackExpired, "")
		return
	}
	d.pid = ss.nextPIDLocked()
	ss.seq++
	d.seq = ss.seq
	if c.sendPublish(d.msg, d.qos, d.pid, d.flags&dRetain != 0, false, d.subID, expiry) {
		ss.inflight = append(ss.inflight, d)
		s.track(ss, d.msg, TrackSent, "")
	} else {
		s.track(ss, d.msg, TrackFailed, "larger than the client's maximum packet size")
	}
}

// nextPIDLocked returns a packet id not used by an inflight message.
func (ss *session) nextPIDLocked() uint16 {
	for {
		ss.lastPID++
		if ss.lastPID == 0 {
			ss.lastPID = 1
		}
		// Ids are assigned in sequence, so fewer than 65535 assignments
		// since the oldest inflight message means none can collide.
		if len(ss.inflight) == 0 || ss.seq+1-ss.inflight[0].seq < 65535 {
			return ss.lastPID
		}
		if ss.findLocked(ss.lastPID) < 0 {
			return ss.lastPID
		}
	}
}

func (ss *session) findLocked(pid uint16) int {
	for i := range ss.inflight {
		if ss.inflight[i].pid == pid {
			return i
		}
	}
	return -1
}

func (ss *session) removeLocked(i int) {
	copy(ss.inflight[i:], ss.inflight[i+1:])
	ss.inflight[len(ss.inflight)-1] = delivery{}
	ss.inflight = ss.inflight[:len(ss.inflight)-1]
}

// pumpLocked moves queued messages into the inflight window.
func (ss *session) pumpLocked(s *Server, c *conn) {
	for ss.qlen() > 0 && len(ss.inflight) < c.window {
		d := ss.queue[ss.qhead]
		ss.queue[ss.qhead] = delivery{}
		ss.qhead++
		ss.queuedBytes -= len(d.msg.Payload)
		ss.sendLocked(s, c, d)
	}
	if ss.qlen() == 0 {
		ss.queue, ss.qhead = ss.queue[:0], 0
	}
}

// resumeLocked resends, on reconnect, every unacknowledged message (with
// DUP set) and every PUBREL, in their original order [MQTT-4.4.0-1], then
// fills the window from the queue.
func (ss *session) resumeLocked(s *Server, c *conn) {
	now := time.Now()
	for i := range ss.inflight {
		d := &ss.inflight[i]
		if d.flags&dRel != 0 {
			c.sendAck(packet.PUBREL, d.pid, 0, "")
			continue
		}
		expiry, alive := remainingExpiry(d.msg, now)
		if !alive {
			expiry = 1 // delivery had started; it is completed regardless
		}
		c.sendPublish(d.msg, d.qos, d.pid, d.flags&dRetain != 0, true, d.subID, expiry)
	}
	ss.pumpLocked(s, c)
}

// handleAck processes PUBACK, PUBREC, PUBREL and PUBCOMP from the client.
func (c *conn) handleAck(p *packet.Ack) error {
	if p.Kind == packet.PUBREL {
		c.handlePubrel(p.PacketID)
		return nil
	}
	ss := c.sess
	c.s.markDirty(ss)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	i := ss.findLocked(p.PacketID)
	switch p.Kind {
	case packet.PUBACK:
		if i >= 0 && ss.inflight[i].qos == 1 {
			c.s.trackAckLocked(ss, i, 0)
			ss.removeLocked(i)
		}
	case packet.PUBREC:
		switch {
		case i < 0 || ss.inflight[i].qos != 2:
			c.sendAck(packet.PUBREL, p.PacketID, packet.PacketIdentifierNotFound, "")
			return nil
		case p.ReasonCode >= 0x80:
			c.s.trackAckLocked(ss, i, byte(p.ReasonCode))
			ss.removeLocked(i) // the client refused it; the exchange ends
		default:
			ss.inflight[i].flags |= dRel
			ss.inflight[i].msg = releasedMsg(ss.inflight[i].msg) // only the ids matter from here on
			c.sendAck(packet.PUBREL, p.PacketID, 0, "")
			return nil
		}
	case packet.PUBCOMP:
		if i >= 0 && ss.inflight[i].flags&dRel != 0 {
			c.s.trackAckLocked(ss, i, 0)
			ss.removeLocked(i)
		}
	}
	ss.pumpLocked(c.s, c)
	return nil
}
