package broker

import (
	"time"

	"github.com/sluicehq/sluice/broker/packet"
)

// Durable acks. With a SessionStore, a QoS 1/2 message that changed
// durable state (queued for an offline session, or retained) is
// acknowledged only once a store flush that started after the change has
// succeeded: kill -9 right after the PUBACK does not lose it. Acks wait in
// a per-connection FIFO (later acks of the connection queue behind, so
// they stay in arrival order); the store flusher is kicked at once and
// releases every ack registered before its flush began, so concurrent
// publishers share one commit (group commit, never one sync per message).

// durAck is an ack waiting for the store.
type durAck struct {
	kind packet.Type
	pid  uint16
	need uint64 // store flush that must complete; 0: none of its own
}

// completeDurable routes an accepted QoS 1/2 message first, then
// acknowledges it, at once or after the store flush it needs.
func (c *conn) completeDurable(in *inbound, reader bool) {
	m := &in.msg
	ss := c.sess
	kind := packet.PUBACK
	if m.QoS == 2 {
		kind = packet.PUBREC
		ss.mu.Lock()
		if recSent, ok := ss.inQoS2[in.pid]; ok && !recSent {
			ss.inQoS2[in.pid] = true
			ss.relWait++
			ss.relWaitN.Store(int32(ss.relWait))
		}
		ss.mu.Unlock()
		c.s.markDirty(ss)
	}
	var durable bool
	if reader {
		durable = c.s.deliverAccepted(m, c.clientID, true, nil)
	} else {
		durable = c.s.deliverAccepted(m, c.clientID, false, c)
	}
	c.ackAfterStore(kind, in.pid, durable)
}

// ackAfterStore sends an ack now, or queues it behind the store flush it
// needs (durable) or behind earlier waiting acks.
func (c *conn) ackAfterStore(kind packet.Type, pid uint16, durable bool) {
	c.durMu.Lock()
	defer c.durMu.Unlock()
	if !durable && len(c.durAcks) == 0 {
		c.sendAck(kind, pid, 0, "")
		return
	}
	var need uint64
	if durable {
		need = c.s.awaitFlush(c)
	}
	c.durAcks = append(c.durAcks, durAck{kind: kind, pid: pid, need: need})
}

// awaitFlush registers c as waiting for the next store flush and kicks
// the flusher; it returns the number of that flush. c.durMu is held.
func (s *Server) awaitFlush(c *conn) uint64 {
	st := &s.storeSt
	st.mu.Lock()
	need := st.started + 1
	st.waiters[c] = struct{}{}
	st.mu.Unlock()
	select {
	case st.kick <- struct{}{}:
	default:
	}
	return need
}

// releaseAcks sends the waiting acks of every connection that flush done
// made safe.
func (s *Server) releaseAcks(done uint64) {
	st := &s.storeSt
	st.mu.Lock()
	conns := make([]*conn, 0, len(st.waiters))
	for c := range st.waiters {
		conns = append(conns, c)
	}
	st.mu.Unlock()
	for _, c := range conns {
		c.durMu.Lock()
		i := 0
		for ; i < len(c.durAcks) && c.durAcks[i].need <= done; i++ {
			c.sendAck(c.durAcks[i].kind, c.durAcks[i].pid, 0, "")
		}
		c.durAcks = append(c.durAcks[:0], c.durAcks[i:]...)
		if len(c.durAcks) == 0 {
			st.mu.Lock()
			delete(st.waiters, c)
			st.mu.Unlock()
		}
		c.durMu.Unlock()
	}
}

// drainDurableAcks waits, during shutdown, until the acks waiting for the
// store have been sent (the flusher still runs) or the shutdown deadline
// passes, so clients are not left to resend what was already stored.
func (c *conn) drainDurableAcks() {
	for {
		c.durMu.Lock()
		n := len(c.durAcks)
		c.durMu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-c.s.hardCh:
			return
		}
	}
}
