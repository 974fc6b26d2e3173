package broker

import (
	"net"
	"sync"
	"time"

	"github.com/sluicehq/sluice/broker/listener"
	"github.com/sluicehq/sluice/broker/packet"
)

// Connection limits, checked in the accept loop before a connection gets
// a goroutine: a refused socket is closed at once (no CONNACK: nothing
// has been read yet), logged at debug and counted in
// sluice_broker_connections_refused_total{reason}.
const (
	refusedTotal = iota // max_connections
	refusedPerAddr
	refusedRate
	numRefusals
)

var refusalNames = [numRefusals]string{"max_connections", "max_connections_per_address", "connection_rate"}

// connLimits tracks open connections per address and the accept rate.
type connLimits struct {
	mu     sync.Mutex
	open   int
	byAddr map[string]int
	bucket tokenBucket
}

// tokenBucket is a simple rate limiter; not safe for concurrent use.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

// take reports whether a token is available at now for rate per second
// and burst, and takes it.
func (b *tokenBucket) take(now time.Time, rate float64, burst int) bool {
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else {
		b.tokens = min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// wait returns how long to wait until a token is available (0: take it
// now, and it is taken).
func (b *tokenBucket) wait(now time.Time, rate float64, burst int) time.Duration {
	if b.take(now, rate, burst) {
		return 0
	}
	d := time.Duration((1 - b.tokens) / rate * float64(time.Second))
	return max(d, time.Millisecond)
}

// addrKey is the host part of a connection's (PROXY-aware) address.
func addrKey(nc net.Conn) string {
	a := listener.Info(nc).RemoteAddr
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// admit applies the connection limits to a new socket; it returns the
// address key to release later, or ok false when refused.
func (s *Server) admit(nc net.Conn) (key string, ok bool) {
	cfg := &s.cfg
	if !s.limited() {
		return "", true
	}
	key = addrKey(nc)
	l := &s.limits
	l.mu.Lock()
	defer l.mu.Unlock()
	reason := -1
	switch {
	case cfg.MaxConnections > 0 && l.open >= cfg.MaxConnections:
		reason = refusedTotal
	case cfg.MaxConnectionsPerAddress > 0 && l.byAddr[key] >= cfg.MaxConnectionsPerAddress:
		reason = refusedPerAddr
	case cfg.ConnectionRate > 0 && !l.bucket.take(time.Now(), cfg.ConnectionRate, max(1, cfg.ConnectionBurst)):
		reason = refusedRate
	}
	if reason >= 0 {
		s.stats.refused[reason].Add(1)
		s.log.Debug("connection refused", "remote_addr", key, "reason", refusalNames[reason])
		return "", false
	}
	l.open++
	if l.byAddr == nil {
		l.byAddr = make(map[string]int)
	}
	l.byAddr[key]++
	return key, true
}

// limited reports whether any connection limit is configured.
func (s *Server) limited() bool {
	return s.cfg.MaxConnections > 0 || s.cfg.MaxConnectionsPerAddress > 0 || s.cfg.ConnectionRate > 0
}

// release forgets a connection admitted by admit.
func (s *Server) release(c *conn) {
	if !s.limited() {
		return
	}
	l := &s.limits
	l.mu.Lock()
	l.open--
	if l.byAddr[c.addrKey]--; l.byAddr[c.addrKey] <= 0 {
		delete(l.byAddr, c.addrKey)
	}
	l.mu.Unlock()
}

// topicAllowed checks a topic name or filter against max_topic_length and
// max_topic_levels.
func (s *Server) topicAllowed(t []byte) bool {
	if n := s.cfg.MaxTopicLength; n > 0 && len(t) > n {
		return false
	}
	if n := s.cfg.MaxTopicLevels; n > 0 {
		levels := 1
		for _, b := range t {
			if b == '/' {
				levels++
			}
		}
		if levels > n {
			return false
		}
	}
	return true
}

// pacePublish holds the reader, when the client publishes faster than
// publish_rate, until it may go on: the client is slowed by TCP flow
// control, not disconnected.
func (c *conn) pacePublish() error {
	rate := c.s.cfg.PublishRate
	if rate == 0 {
		return nil
	}
	for {
		d := c.pubBucket.wait(time.Now(), rate, max(1, c.s.cfg.PublishBurst))
		if d == 0 {
			return nil
		}
		c.s.stats.throttled.Add(1)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-c.s.drainCh:
			t.Stop()
			return errDraining
		}
		if c.kicked.Load() {
			t.Stop()
			return errKicked
		}
	}
}

// noteFull records that connected client c could not take a message (its
// write buffer or session queue is full). It reports whether that has
// lasted slow_consumer_timeout without any message getting through: the
// caller then kicks c (after releasing c.outMu).
func (c *conn) noteFull() bool {
	d := c.s.cfg.SlowConsumerTimeout
	if d == 0 {
		return false
	}
	now := time.Now().UnixNano()
	since := c.fullSince.Load()
	if since == 0 {
		c.fullSince.CompareAndSwap(0, now)
		return false
	}
	return now-since >= int64(d) && !c.kicked.Load()
}

// noteRoom records that a message got through to c.
func (c *conn) noteRoom() {
	if c.fullSince.Load() != 0 {
		c.fullSince.Store(0)
	}
}

// kickSlow disconnects a client that stopped reading (v5: DISCONNECT 0x97
// Quota Exceeded); other clients never wait for it.
func (c *conn) kickSlow() {
	if c.kicked.Load() {
		return
	}
	c.s.stats.slowKicked.Add(1)
	c.s.log.Info("disconnecting slow consumer", "conn_id", c.id, "client_id", c.clientID, "remote_addr", c.remoteAddr(),
		"full_for", c.s.cfg.SlowConsumerTimeout)
	c.kick(packet.QuotaExceeded)
	// Its writer is blocked on a full socket: close it now rather than
	// after write_timeout (the DISCONNECT cannot get through anyway).
	c.nc.Close()
}

// subscriptionQuota returns how many more subscriptions c may add (-1:
// unlimited).
func (c *conn) subscriptionQuota() int {
	n := c.s.cfg.MaxSubscriptionsPerClient
	if n == 0 {
		return -1
	}
	return max(0, n-len(c.s.subs.ClientSubs(c.clientID)))
}

// quotaCode is the SUBACK code for a filter beyond the subscription quota.
func quotaCode(v5 bool) packet.ReasonCode { return failCode(v5, packet.QuotaExceeded) }
