package broker

import (
	"sync"
	"time"

	"github.com/sluicehq/sluice/broker/packet"
	"github.com/sluicehq/sluice/broker/topic"
)

// routeCtx is the scratch state of routing one message: the matched
// subscriptions and the message's QoS 0 encodings, made once per protocol
// shape and copied to every subscriber that can take them as they are.
type routeCtx struct {
	subs   []topic.Sub
	ps     pubScratch
	enc    [2][2][]byte // [v5][retain]
	encOK  [2][2]bool
	m      *Message
	expiry uint32
	wait   bool // QoS 0: wait for room in a live subscriber's buffer
	// waitUntil bounds all waiting for one message (unix ns, 0: not yet).
	waitUntil int64
	pacer     *conn // !wait: the publisher to pace instead (may be nil)
	durable   bool  // queued for an offline session: ack after the store
}

var routePool = sync.Pool{New: func() any { return new(routeCtx) }}

// encoded returns m encoded as a QoS 0 PUBLISH for version and retain.
func (rc *routeCtx) encoded(version byte, retain bool) []byte {
	vi, ri := 0, 0
	if version == packet.Version5 {
		vi = 1
	}
	if retain {
		ri = 1
	}
	if !rc.encOK[vi][ri] {
		p := rc.ps.fill(rc.m, 0, retain, version, rc.expiry)
		b, err := packet.Append(rc.enc[vi][ri][:0], p, version)
		if err != nil {
			b = b[:0]
		}
		rc.enc[vi][ri], rc.encOK[vi][ri] = b, true
	}
	return rc.enc[vi][ri]
}

// route delivers m to every matching subscription. from is the publishing
// client id, for the No Local option. When a QoS 0 message meets the full
// buffer of a subscriber that is reading, route waits for room if wait is
// set; otherwise it drops the message and asks pacer's reader to wait
// before it reads on. It reports whether m was queued for an offline
// session while a store is configured.
func (s *Server) route(m *Message, from string, wait bool, pacer *conn) bool {
	expiry, alive := remainingExpiry(m, time.Now())
	if !alive {
		s.stats.drop(dropExpired)
		return false
	}
	rc := routePool.Get().(*routeCtx)
	rc.m, rc.expiry, rc.wait, rc.pacer, rc.waitUntil, rc.durable = m, expiry, wait, pacer, 0, false
	rc.subs = s.subs.Match(sbytes(m.Topic), rc.subs[:0])
	for subs := rc.subs; len(subs) > 0; {
		n := topic.NextGroup(subs)
		sub := subs[0]
		if sub.Group != "" {
			sub, _ = s.picker.Pick(sub.Group, sub.Filter, subs[:n], s.online)
		}
		subs = subs[n:]
		if sub.NoLocal && sub.ClientID == from {
			continue
		}
		s.deliverTo(rc, &sub)
	}
	durable := rc.durable
	rc.m, rc.pacer = nil, nil
	clear(rc.subs)
	rc.encOK = [2][2]bool{}
	for i := range rc.enc {
		for j := range rc.enc[i] {
			if cap(rc.enc[i][j]) > maxPooledBuf {
				rc.enc[i][j] = nil
			}
		}
	}
	if cap(rc.subs) > 4096 {
		rc.subs = nil
	}
	routePool.Put(rc)
	return durable
}

// deliverTo sends the message being routed to one subscription.
func (s *Server) deliverTo(rc *routeCtx, sub *topic.Sub) {
	ss := s.sessions.get(sub.ClientID)
	if ss == nil {
		return
	}
	m := rc.m
	qos := min(m.QoS, sub.QoS)
	retain := m.Retain && sub.RetainAsPublished
	if qos > 0 {
		if ss.enqueue(s, m, qos, retain, sub.ID) {
			rc.durable = true
		}
		return
	}
	if m.CommandID != "" {
		s.deliverTrackedQoS0(ss, rc, sub.ID, retain)
		return
	}
	c := ss.conn.Load()
	if c == nil {
		s.stats.drop(dropOffline)
		return
	}
	if (sub.ID != 0 && c.version == packet.Version5) || c.aliasMax > 0 {
		c.sendPublish(m, 0, 0, retain, false, sub.ID, rc.expiry)
		return
	}
	c.sendEncoded(rc.encoded(c.version, retain), rc)
}

// sendRetained delivers the retained messages matching a new subscription
// to the subscribing session, with RETAIN set [MQTT-3.3.1-8].
func (s *Server) sendRetained(c *conn, sub *topic.Sub) {
	var msgs []*Message
	s.retained.Match(sub.Filter, func(_ string, m *Message) bool {
		msgs = append(msgs, m)
		return true
	})
	now := time.Now()
	for _, m := range msgs {
		expiry, alive := remainingExpiry(m, now)
		if !alive {
			if cur, ok := s.retained.Get(m.Topic); ok && cur == m {
				s.retained.Delete(m.Topic)
				s.markRetained(m.Topic)
			}
			s.stats.drop(dropExpired)
			continue
		}
		qos := min(m.QoS, sub.QoS)
		if qos > 0 {
			c.sess.enqueue(s, m, qos, true, sub.ID)
		} else {
			c.sendPublish(m, 0, 0, true, false, sub.ID, expiry)
		}
	}
}
