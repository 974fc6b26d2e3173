package broker

import (
	"errors"
	"time"
	"unsafe"

	"github.com/sluicehq/sluice/broker/packet"
	"github.com/sluicehq/sluice/broker/topic"
)

// This file is the ingest seam: PUBLISH packets from clients are handed to
// the Consumer in arrival order, and their acks go back to the client in
// the same order however the consumer completes them [MQTT-4.6.0-2/3].

// inbound states.
const (
	statePending uint8 = iota
	stateAccepted
	stateRejected
	stateDenied // not authorised: acked (v5: 0x87), never routed
)

// inbound is one PUBLISH handed to the consumer: the Message plus what is
// needed to acknowledge it. It is allocated once per message.
type inbound struct {
	msg    Message
	c      *conn
	pid    uint16
	state  uint8 // guarded by c.inMu
	code   packet.ReasonCode
	reason string
}

// inQueue is a connection's FIFO of inbound messages not yet completed, in
// arrival order. Its length is bounded by Config.ReceiveMaximum: the
// reader stops reading the socket while it is full (see waitQuota).
type inQueue struct {
	ring     []*inbound // grown on demand, never preallocated
	head, n  int
	qos      int  // entries with QoS > 0
	flushing bool // a goroutine is completing the head of the queue
	// delivering is the message the reader is handing to
	// Consumer.Deliver. Its ack only marks the slot when it comes before
	// Deliver returns (typically synchronously): the reader then flushes
	// on its own goroutine, where routing may wait for a subscriber (see
	// route).
	delivering *inbound
	wake       chan struct{}
	timer      *time.Timer // RejectWait
	timerSet   bool
}

func (q *inQueue) at(i int) *inbound { return q.ring[(q.head+i)%len(q.ring)] }

func (q *inQueue) push(in *inbound) {
	if q.n == len(q.ring) {
		ring := make([]*inbound, max(8, 2*len(q.ring)))
		for i := 0; i < q.n; i++ {
			ring[i] = q.at(i)
		}
		q.ring, q.head = ring, 0
	}
	q.ring[(q.head+q.n)%len(q.ring)] = in
	q.n++
	if in.msg.QoS > 0 {
		q.qos++
	}
}

func (q *inQueue) pop() *inbound {
	in := q.ring[q.head]
	q.ring[q.head] = nil
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	if in.msg.QoS > 0 {
		q.qos--
	}
	return in
}

// waitCh returns a channel closed at the next state change.
func (q *inQueue) waitCh() chan struct{} {
	if q.wake == nil {
		q.wake = make(chan struct{})
	}
	return q.wake
}

// wakeLocked wakes a goroutine blocked on waitCh.
func (q *inQueue) wakeLocked() {
	if q.wake != nil {
		close(q.wake)
		q.wake = nil
	}
}

// waitQuota blocks while rm messages await the consumer: this is how
// backpressure reaches the publisher (its socket is not read).
func (c *conn) waitQuota(rm int) error {
	if c.s.consumer == nil {
		return nil
	}
	c.inMu.Lock()
	for c.in != nil && c.in.n >= rm {
		// Checked under inMu: interrupt sets the flags before it takes
		// inMu to wake us, so either we see them or it closes ch.
		if err := c.stopping(); err != nil {
			c.inMu.Unlock()
			return err
		}
		ch := c.in.waitCh()
		c.inMu.Unlock()
		<-ch
		c.inMu.Lock()
	}
	c.inMu.Unlock()
	return nil
}

// handlePublish processes a PUBLISH from the client.
func (c *conn) handlePublish(p *packet.Publish) error {
	if err := c.pacePublish(); err != nil {
		return err
	}
	v5 := c.version == packet.Version5
	if v5 && len(p.Props.SubscriptionIDs) > 0 {
		return protoErr(packet.ProtocolError, "subscription identifier in PUBLISH from a client")
	}
	var aliasTopic string
	var alias uint16
	if v5 && p.Props.Has(packet.PropTopicAlias) {
		alias = p.Props.TopicAlias
		if alias == 0 || alias > c.s.cfg.TopicAliasMaximum {
			return protoErr(packet.TopicAliasInvalid, "topic alias out of range")
		}
		if len(p.Topic) == 0 {
			if int(alias) > len(c.inAliases) || c.inAliases[alias-1] == "" {
				return protoErr(packet.ProtocolError, "unknown topic alias")
			}
			aliasTopic = c.inAliases[alias-1]
		}
	}
	if aliasTopic == "" && !topic.ValidName(p.Topic) {
		return protoErr(packet.TopicNameInvalid, "invalid topic name in PUBLISH")
	}
	ss := c.sess
	switch p.QoS {
	case 2:
		ss.mu.Lock()
		if recSent, dup := ss.inQoS2[p.PacketID]; dup {
			// Already received and not yet released: not delivered twice.
			ss.mu.Unlock()
			if recSent {
				c.sendAck(packet.PUBREC, p.PacketID, 0, "")
			}
			return nil
		}
		if v5 && c.quotaUsed()+ss.relWait >= int(c.s.cfg.ReceiveMaximum) {
			ss.mu.Unlock()
			return protoErr(packet.ReceiveMaximumExceeded, "receive maximum exceeded")
		}
		if ss.inQoS2 == nil {
			ss.inQoS2 = make(map[uint16]bool)
		}
		ss.inQoS2[p.PacketID] = false
		ss.mu.Unlock()
	case 1:
		if v5 && c.quotaUsed()+int(ss.relWaitN.Load()) >= int(c.s.cfg.ReceiveMaximum) {
			return protoErr(packet.ReceiveMaximumExceeded, "receive maximum exceeded")
		}
	}
	in := newInbound(c, p, aliasTopic)
	if alias != 0 && aliasTopic == "" {
		if c.inAliases == nil {
			c.inAliases = make([]string, c.s.cfg.TopicAliasMaximum)
		}
		c.inAliases[alias-1] = in.msg.Topic
	}
	deny := packet.ReasonCode(0)
	switch {
	case !c.s.topicAllowed(sbytes(in.msg.Topic)):
		deny = packet.TopicNameInvalid
	case c.s.auth != nil && !c.s.auth.CanPublish(c.ident, in.msg.Topic):
		deny = packet.NotAuthorized
	}
	if deny != 0 {
		// Not handed to the consumer, not routed, not retained; acked in
		// arrival order with the others.
		c.s.stats.denied[deniedPublish].Add(1)
		in.state = stateDenied
		in.code = deny
		if c.s.consumer == nil {
			c.complete(in, true)
			return nil
		}
		c.inMu.Lock()
		if c.in == nil {
			c.in = new(inQueue)
		}
		c.in.push(in)
		c.flushLocked(true)
		return nil
	}
	c.s.stats.received[p.QoS].Add(1)
	if c.s.consumer == nil {
		in.state = stateAccepted
		c.complete(in, true)
		return nil
	}
	c.inMu.Lock()
	if c.in == nil {
		c.in = new(inQueue)
	}
	c.in.push(in)
	if rw := c.s.cfg.RejectWait; rw > 0 && !c.in.timerSet {
		c.armRejectTimerLocked(in.msg.ReceivedAt.Add(rw))
	}
	c.in.delivering = in
	c.inMu.Unlock()
	c.s.stats.pendingAcks.Add(1)
	c.s.consumer.Deliver(c.s.baseCtx, &in.msg, in.ack)
	c.inMu.Lock()
	c.in.delivering = nil
	c.flushLocked(true)
	return nil
}

// quotaUsed returns the QoS 1/2 messages of this connection awaiting the
// consumer or the in-order flush of their ack.
func (c *conn) quotaUsed() int {
	if c.s.consumer == nil {
		return 0
	}
	c.inMu.Lock()
	defer c.inMu.Unlock()
	if c.in == nil {
		return 0
	}
	return c.in.qos
}

// ack is the callback handed to Consumer.Deliver.
func (in *inbound) ack(err error) {
	c := in.c
	c.inMu.Lock()
	if in.state != statePending {
		// A second call, or RejectWait already rejected it.
		c.inMu.Unlock()
		return
	}
	if err == nil {
		in.state = stateAccepted
	} else {
		in.state = stateRejected
		in.code = packet.UnspecifiedError
		var re *RejectError
		if errors.As(err, &re) {
			if re.Code >= 0x80 {
				in.code = packet.ReasonCode(re.Code)
			}
			in.reason = re.Reason
		}
	}
	c.s.stats.pendingAcks.Add(-1)
	if c.in.delivering == in {
		c.inMu.Unlock() // the reader flushes when Deliver returns
		return
	}
	c.flushLocked(false)
}

// flushLocked completes the acked prefix of the queue in order. Only one
// goroutine flushes at a time, so completions (acks sent, messages routed)
// happen in arrival order. reader tells whether the caller is the reader
// goroutine. It is called with c.inMu held and releases it.
func (c *conn) flushLocked(reader bool) {
	if c.in.flushing {
		c.inMu.Unlock()
		return
	}
	c.in.flushing = true
	for c.in.n > 0 && c.in.at(0).state != statePending {
		in := c.in.pop()
		c.inMu.Unlock()
		c.complete(in, reader)
		c.inMu.Lock()
	}
	c.in.flushing = false
	c.in.wakeLocked()
	c.inMu.Unlock()
}

// complete acknowledges one message to the client and, when accepted,
// routes it. On the reader goroutine routing may wait for a subscriber's
// room; elsewhere (a consumer's goroutine) it must not, and the reader is
// asked to pace itself instead.
func (c *conn) complete(in *inbound, reader bool) {
	m := &in.msg
	ss := c.sess
	// 3.1.1 has no negative ack for a denied message: ack it and drop it
	// [MQTT-3.3.5-2]; v5 gets 0x87 like a rejection.
	denied := in.state == stateDenied
	if in.state == stateAccepted && m.QoS > 0 && c.s.store != nil {
		c.completeDurable(in, reader)
		return
	}
	if in.state == stateAccepted || (denied && c.version != packet.Version5) {
		switch m.QoS {
		case 1:
			c.sendAck(packet.PUBACK, in.pid, 0, "")
		case 2:
			ss.mu.Lock()
			if recSent, ok := ss.inQoS2[in.pid]; ok && !recSent {
				ss.inQoS2[in.pid] = true
				ss.relWait++
				ss.relWaitN.Store(int32(ss.relWait))
			}
			ss.mu.Unlock()
			c.s.markDirty(ss)
			c.sendAck(packet.PUBREC, in.pid, 0, "")
		}
		if denied {
			return
		}
		if reader {
			c.s.deliverAccepted(m, c.clientID, true, nil)
		} else {
			c.s.deliverAccepted(m, c.clientID, false, c)
		}
		return
	}
	if !denied {
		c.s.stats.rejected.Add(1)
	}
	switch {
	case m.QoS == 0:
	case c.version == packet.Version5:
		kind := packet.PUBACK
		if m.QoS == 2 {
			kind = packet.PUBREC
			ss.mu.Lock()
			delete(ss.inQoS2, in.pid)
			ss.mu.Unlock()
		}
		c.sendAck(kind, in.pid, in.code, in.reason)
	default:
		// 3.1.1 has no negative ack: withhold it and close, so the client
		// sends the message again later.
		if m.QoS == 2 {
			ss.mu.Lock()
			delete(ss.inQoS2, in.pid)
			ss.mu.Unlock()
		}
		c.kick(0)
	}
}

// armRejectTimerLocked schedules the RejectWait check at deadline.
func (c *conn) armRejectTimerLocked(deadline time.Time) {
	d := time.Until(deadline)
	if c.in.timer == nil {
		c.in.timer = time.AfterFunc(d, c.rejectExpired)
	} else {
		c.in.timer.Reset(d)
	}
	c.in.timerSet = true
}

// rejectExpired rejects, with 0x97 Quota exceeded, every message the
// consumer has not accepted within RejectWait.
func (c *conn) rejectExpired() {
	if !c.s.startTimerFunc() {
		return
	}
	defer c.s.wg.Done()
	rw := c.s.cfg.RejectWait
	c.inMu.Lock()
	c.in.timerSet = false
	now := time.Now()
	for i := 0; i < c.in.n; i++ {
		in := c.in.at(i)
		if in.state != statePending {
			continue
		}
		if dl := in.msg.ReceivedAt.Add(rw); dl.After(now) {
			c.armRejectTimerLocked(dl)
			break
		}
		in.state = stateRejected
		in.code = packet.QuotaExceeded
		in.reason = "not accepted within reject_wait"
		c.s.stats.pendingAcks.Add(-1)
	}
	c.flushLocked(false)
}

// handlePubrel completes an inbound QoS 2 exchange.
func (c *conn) handlePubrel(pid uint16) {
	ss := c.sess
	code := packet.PacketIdentifierNotFound
	ss.mu.Lock()
	if recSent, ok := ss.inQoS2[pid]; ok && recSent {
		delete(ss.inQoS2, pid)
		ss.relWait--
		ss.relWaitN.Store(int32(ss.relWait))
		code = packet.Success
	}
	ss.mu.Unlock()
	c.s.markDirty(ss)
	c.sendAck(packet.PUBCOMP, pid, code, "")
}

// newInbound copies a decoded PUBLISH (which aliases the read buffer) into
// an immutable Message with one allocation for all its bytes.
func newInbound(c *conn, p *packet.Publish, aliasTopic string) *inbound {
	pr := &p.Props
	v5 := c.version == packet.Version5
	n := len(p.Payload)
	if aliasTopic == "" {
		n += len(p.Topic)
	}
	if v5 {
		n += len(pr.ContentType) + len(pr.ResponseTopic) + len(pr.CorrelationData)
		for _, u := range pr.User {
			n += len(u.Name) + len(u.Value)
		}
	}
	in, a := allocInbound(n)
	in.c, in.pid = c, p.PacketID
	m := &in.msg
	m.Topic = aliasTopic
	if aliasTopic == "" {
		m.Topic = a.str(p.Topic)
	}
	m.Payload = a.bytes(p.Payload)
	m.QoS = p.QoS
	m.Retain = p.Retain
	m.ClientID = c.clientID
	m.Username = c.username
	m.Version = c.version
	m.ReceivedAt = time.Now()
	if v5 {
		if pr.Has(packet.PropPayloadFormat) {
			m.PayloadFormat = pr.PayloadFormat
		}
		if pr.Has(packet.PropMessageExpiry) {
			m.MessageExpiry = pr.MessageExpiry
		}
		m.ContentType = a.str(pr.ContentType)
		m.ResponseTopic = a.str(pr.ResponseTopic)
		m.CorrelationData = a.bytes(pr.CorrelationData)
		if len(pr.User) > 0 {
			m.UserProperties = make([]UserProperty, len(pr.User))
			for i, u := range pr.User {
				m.UserProperties[i] = UserProperty{Name: a.str(u.Name), Value: a.str(u.Value)}
			}
		}
	}
	return in
}

// Small messages are allocated with their bytes in one block: the inbound
// is the first field, so a pointer to it keeps the block alive.
type (
	inboundSmall struct {
		in  inbound
		buf [64]byte
	}
	inboundMedium struct {
		in  inbound
		buf [256]byte
	}
)

// allocInbound returns a zero inbound and an arena for n bytes, in one
// allocation when n is small.
func allocInbound(n int) (*inbound, arena) {
	switch {
	case n <= len(inboundSmall{}.buf):
		b := new(inboundSmall)
		return &b.in, arena{b: b.buf[:0:n]}
	case n <= len(inboundMedium{}.buf):
		b := new(inboundMedium)
		return &b.in, arena{b: b.buf[:0:n]}
	}
	return new(inbound), arena{b: make([]byte, 0, n)}
}

// arena hands out immutable copies carved from one allocation.
type arena struct{ b []byte }

func (a *arena) bytes(src []byte) []byte {
	if src == nil {
		return nil
	}
	start := len(a.b)
	a.b = append(a.b, src...)
	return a.b[start:len(a.b):len(a.b)]
}

func (a *arena) str(src []byte) string {
	if len(src) == 0 {
		return ""
	}
	b := a.bytes(src)
	return unsafe.String(unsafe.SliceData(b), len(b))
}
