package broker

import (
	"sync"
	"time"
	"unsafe"

	"github.com/sluicehq/sluice/broker/packet"
)

// outState is a connection's outbound side: encoded packets waiting to be
// written. A writer goroutine runs only while buf is non-empty; it swaps
// buf out and writes it in one syscall, so packets queued while a write is
// in progress go out together in the next one.
type outState struct {
	buf        []byte        // encoded packets not yet handed to the writer
	spare      []byte        // the writer's previous buffer, reused
	writing    bool          // a writer goroutine is running
	ready      bool          // CONNACK is queued: PUBLISH may follow
	closed     bool          // no more packets are accepted
	closeAfter bool          // the writer closes the socket once buf is written
	dead       bool          // writing failed or was abandoned: discard buf
	finished   bool          // the writer closed the socket: no writer starts again
	writeStart int64         // when the write in progress began (unix ns), 0: none
	room       chan struct{} // closed when the writer takes buf (see sendEncoded)
	aliases    map[string]uint16
}

// Buffer pooling: idle connections hold no write buffer.
const (
	initialBufSize = 4 << 10
	maxPooledBuf   = 64 << 10
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, initialBufSize); return &b }}

func getBuf() []byte { return (*bufPool.Get().(*[]byte))[:0] }

func putBuf(b []byte) {
	if cap(b) == 0 || cap(b) > maxPooledBuf {
		return
	}
	b = b[:0]
	bufPool.Put(&b)
}

// startWriterLocked starts the writer goroutine if there is work for it.
// c.outMu must be held.
func (c *conn) startWriterLocked() {
	if c.out.writing || c.out.finished || (len(c.out.buf) == 0 && !c.out.closeAfter) {
		return
	}
	c.out.writing = true
	c.wwg.Add(1)
	go c.writeLoop()
}

// writeLoop writes queued packets until there are none, then exits.
func (c *conn) writeLoop() {
	defer c.wwg.Done()
	var wbuf []byte
	for {
		c.outMu.Lock()
		if wbuf != nil {
			// Keep the written buffer for the next swap whatever its
			// size while data flows; it is pooled or dropped on exit.
			if c.out.spare == nil {
				c.out.spare = wbuf[:0]
			} else {
				putBuf(wbuf)
			}
			wbuf = nil
		}
		c.out.writeStart = 0
		if len(c.out.buf) == 0 || c.out.dead {
			c.out.wakeRoomLocked()
			c.out.writing = false
			closing := c.out.closeAfter
			c.out.finished = closing
			putBuf(c.out.buf)
			putBuf(c.out.spare)
			c.out.buf, c.out.spare = nil, nil
			c.outMu.Unlock()
			if closing {
				c.nc.Close()
			}
			return
		}
		wbuf, c.out.buf, c.out.spare = c.out.buf, c.out.spare, nil
		c.out.writeStart = time.Now().UnixNano()
		c.out.wakeRoomLocked()
		c.outMu.Unlock()

		c.nc.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
		n, err := c.nc.Write(wbuf)
		c.s.stats.bytesOut.Add(uint64(n))
		if err != nil {
			c.outMu.Lock()
			c.out.dead, c.out.closed, c.out.closeAfter = true, true, true
			c.outMu.Unlock()
			c.nc.Close()
			c.s.poller.wake(c) // a parked connection notices only this way
		}
	}
}

// appendLocked reserves room in the output buffer. c.outMu must be held
// and c.out.closed false.
func (c *conn) ensureBufLocked() {
	if c.out.buf == nil {
		c.out.buf = getBuf()
	}
}

// sendRaw queues already encoded bytes.
func (c *conn) sendRaw(b []byte) {
	c.outMu.Lock()
	if !c.out.closed {
		c.ensureBufLocked()
		c.out.buf = append(c.out.buf, b...)
		c.startWriterLocked()
	}
	c.outMu.Unlock()
}

// sendPacket encodes and queues any packet (used off the hot path).
func (c *conn) sendPacket(p packet.Packet) {
	c.outMu.Lock()
	if !c.out.closed {
		c.ensureBufLocked()
		if b, err := packet.Append(c.out.buf, p, c.version); err == nil {
			c.out.buf = b
		} else {
			c.s.log.Warn("encoding packet", "conn_id", c.id, "client_id", c.clientID, "type", p.Type(), "err", err)
		}
		c.startWriterLocked()
	}
	c.outMu.Unlock()
}

// sendAck queues PUBACK, PUBREC, PUBREL or PUBCOMP. In v5 a non-success
// code is sent, with reason as reason string unless the client asked for
// no problem information.
func (c *conn) sendAck(kind packet.Type, pid uint16, code packet.ReasonCode, reason string) {
	hdr := byte(kind) << 4
	if kind == packet.PUBREL {
		hdr |= 0x02
	}
	if c.version != packet.Version5 || code == packet.Success {
		c.sendRaw([]byte{hdr, 2, byte(pid >> 8), byte(pid)})
		return
	}
	if reason == "" || c.noProblem {
		c.sendRaw([]byte{hdr, 3, byte(pid >> 8), byte(pid), byte(code)})
		return
	}
	a := &packet.Ack{Kind: kind, PacketID: pid, ReasonCode: code}
	a.Props.ReasonString = []byte(reason)
	c.sendPacket(a)
}

// sendDisconnect queues a v5 DISCONNECT with code.
func (c *conn) sendDisconnect(code packet.ReasonCode) {
	if c.version == packet.Version5 {
		c.sendRaw([]byte{byte(packet.DISCONNECT) << 4, 1, byte(code)})
	}
}

// pubScratch is a reusable PUBLISH being encoded.
type pubScratch struct {
	p      packet.Publish
	user   []packet.UserProperty
	subIDs [1]uint32
}

var pubPool = sync.Pool{New: func() any { return new(pubScratch) }}

// fill sets ps to m as delivered with qos and retain to a client of the
// given version. expiry is the remaining message expiry (0: none).
func (ps *pubScratch) fill(m *Message, qos byte, retain bool, version byte, expiry uint32) *packet.Publish {
	p := &ps.p
	p.Props.Reset()
	p.Dup = false
	p.QoS = qos
	p.Retain = retain
	p.Topic = sbytes(m.Topic)
	p.PacketID = 0
	p.Payload = m.Payload
	if version != packet.Version5 {
		return p
	}
	pr := &p.Props
	if m.PayloadFormat != 0 {
		pr.Set(packet.PropPayloadFormat)
		pr.PayloadFormat = m.PayloadFormat
	}
	if m.MessageExpiry > 0 {
		pr.Set(packet.PropMessageExpiry)
		pr.MessageExpiry = expiry
	}
	pr.ContentType = sbytes(m.ContentType)
	pr.ResponseTopic = sbytes(m.ResponseTopic)
	pr.CorrelationData = m.CorrelationData
	if len(m.UserProperties) > 0 {
		ps.user = ps.user[:0]
		for _, u := range m.UserProperties {
			ps.user = append(ps.user, packet.UserProperty{Name: sbytes(u.Name), Value: sbytes(u.Value)})
		}
		pr.User = ps.user
	}
	return p
}

// sbytes views a string as bytes without copying; nil for "". The result
// is only read (by the encoder).
func sbytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// remainingExpiry returns the message expiry left at now and whether the
// message is still alive. Messages without expiry never expire.
func remainingExpiry(m *Message, now time.Time) (uint32, bool) {
	if m.MessageExpiry == 0 {
		return 0, true
	}
	elapsed := now.Sub(m.ReceivedAt) / time.Second
	if elapsed >= time.Duration(m.MessageExpiry) {
		return 0, false
	}
	return m.MessageExpiry - uint32(elapsed), true
}

// sendEncoded queues a QoS 0 PUBLISH encoded once for many subscribers.
func (c *conn) sendEncoded(b []byte, rc *routeCtx) {
	st := &c.s.stats
	if c.maxOut != 0 && uint32(len(b)) > c.maxOut {
		st.drop(dropTooLarge)
		return
	}
	c.outMu.Lock()
	for {
		switch {
		case c.out.closed || !c.out.ready:
			st.drop(dropOffline)
		case len(c.out.buf) > 0 && len(c.out.buf)+len(b) > c.s.cfg.MaxBufferedBytes:
			if rc.wait {
				if c.waitRoomLocked(&rc.waitUntil) {
					continue
				}
			} else if rc.pacer != nil && c.liveLocked() {
				rc.pacer.paceOn.Store(c)
			}
			st.drop(dropBufferFull)
			slow := c.noteFull()
			c.outMu.Unlock()
			if slow {
				c.kickSlow()
			}
			return
		default:
			c.ensureBufLocked()
			c.out.buf = append(c.out.buf, b...)
			st.sent.Add(1)
			c.noteRoom()
			c.startWriterLocked()
		}
		c.outMu.Unlock()
		return
	}
}

// stallAfter is how long a write may be in progress before its subscriber
// counts as stalled: routing then drops for it at once instead of waiting.
const stallAfter = 100 * time.Millisecond

// waitRoomLocked waits for the writer to take the full buffer when the
// subscriber is reading: its writer is about to write, or its write in
// progress began less than stallAfter ago. The wait ends at *deadline
// (set to now + MaxPublisherWait on the first call). It reports whether
// it waited; c.outMu is released while waiting and held again on return.
func (c *conn) waitRoomLocked(deadline *int64) bool {
	wait := c.s.cfg.MaxPublisherWait
	if wait <= 0 || !c.liveLocked() {
		return false
	}
	now := time.Now().UnixNano()
	if *deadline == 0 {
		*deadline = now + int64(wait)
	}
	left := *deadline - now
	if left <= 0 {
		return false
	}
	if c.out.room == nil {
		c.out.room = make(chan struct{})
	}
	ch := c.out.room
	c.outMu.Unlock()
	t := time.NewTimer(time.Duration(left))
	select {
	case <-ch:
	case <-t.C:
	}
	t.Stop()
	c.outMu.Lock()
	return true
}

// liveLocked reports whether the connection's writer is about to write or
// its write in progress began less than stallAfter ago.
func (c *conn) liveLocked() bool {
	return c.out.writing && (c.out.writeStart == 0 || time.Now().UnixNano()-c.out.writeStart < int64(stallAfter))
}

// waitRoom waits (bounded by MaxPublisherWait) until c's write buffer has
// room again, if c is reading. Used by a publisher's reader to pace itself.
func (c *conn) waitRoom() {
	c.outMu.Lock()
	var deadline int64
	for len(c.out.buf) >= c.s.cfg.MaxBufferedBytes/2 && !c.out.closed && c.waitRoomLocked(&deadline) {
	}
	c.outMu.Unlock()
}

// wakeRoomLocked wakes routing goroutines waiting for room.
func (o *outState) wakeRoomLocked() {
	if o.room != nil {
		close(o.room)
		o.room = nil
	}
}

// sendPublish encodes and queues a PUBLISH for this connection alone: QoS
// 1/2 (a packet id of their own), a subscription identifier, or a topic
// alias make the bytes specific to it. It reports whether the packet was
// queued (false: too large for the client, or the buffer is full for QoS
// 0). A closed connection counts as queued for QoS > 0: the session
// resends on reconnect.
func (c *conn) sendPublish(m *Message, qos byte, pid uint16, retain, dup bool, subID uint32, expiry uint32) bool {
	ps := pubPool.Get().(*pubScratch)
	defer pubPool.Put(ps)
	p := ps.fill(m, qos, retain, c.version, expiry)
	p.Dup = dup
	p.PacketID = pid
	if subID != 0 && c.version == packet.Version5 {
		ps.subIDs[0] = subID
		p.Props.SubscriptionIDs = ps.subIDs[:]
	}
	st := &c.s.stats
	c.outMu.Lock()
	defer c.outMu.Unlock()
	if c.out.closed || !c.out.ready {
		if qos == 0 {
			st.drop(dropOffline)
			return false
		}
		return true
	}
	if qos == 0 && len(c.out.buf) > 0 && len(c.out.buf) >= c.s.cfg.MaxBufferedBytes {
		st.drop(dropBufferFull)
		if c.noteFull() {
			c.outMu.Unlock() // kick takes it; the deferred Unlock needs it held
			c.kickSlow()
			c.outMu.Lock()
		}
		return false
	}
	c.applyAliasLocked(p)
	c.ensureBufLocked()
	start := len(c.out.buf)
	b, err := packet.Append(c.out.buf, p, c.version)
	if err != nil || (c.maxOut != 0 && uint32(len(b)-start) > c.maxOut) {
		if err == nil && p.Props.Has(packet.PropTopicAlias) && len(p.Topic) > 0 {
			// The alias was not announced after all; forget it.
			delete(c.out.aliases, m.Topic)
		}
		c.out.buf = b[:start]
		st.drop(dropTooLarge)
		return false
	}
	c.out.buf = b
	st.sent.Add(1)
	c.noteRoom()
	c.startWriterLocked()
	return true
}

// applyAliasLocked replaces the topic by a topic alias when the client
// accepts aliases: the first PUBLISH of a topic announces alias and topic,
// later ones carry the alias alone. Aliases are never reassigned, so at
// most the client's Topic Alias Maximum are used.
func (c *conn) applyAliasLocked(p *packet.Publish) {
	if c.aliasMax == 0 {
		return
	}
	t := unsafe.String(unsafe.SliceData(p.Topic), len(p.Topic))
	if a, ok := c.out.aliases[t]; ok {
		p.Props.Set(packet.PropTopicAlias)
		p.Props.TopicAlias = a
		p.Topic = nil
		return
	}
	if len(c.out.aliases) >= int(c.aliasMax) {
		return
	}
	if c.out.aliases == nil {
		c.out.aliases = make(map[string]uint16)
	}
	a := uint16(len(c.out.aliases) + 1)
	c.out.aliases[t] = a
	p.Props.Set(packet.PropTopicAlias)
	p.Props.TopicAlias = a
}
