package broker

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Drop reasons, the values of the reason label of
// sluice_broker_messages_dropped_total.
const (
	dropBufferFull = iota // QoS 0: the subscriber's write buffer is full
	dropQueueFull         // QoS 1/2: the session queue is full
	dropOffline           // QoS 0 for an offline session
	dropExpired           // message expiry elapsed before delivery
	dropTooLarge          // larger than the client's Maximum Packet Size
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{"buffer_full", "queue_full", "offline", "expired", "too_large"}

// stats holds the broker's counters. The hot path only does atomic adds;
// Prometheus reads them through collector, Server.Stats through snapshot.
type stats struct {
	connections atomic.Int64
	sessions    atomic.Int64
	pendingAcks atomic.Int64
	received    [3]atomic.Uint64 // by QoS
	sent        atomic.Uint64
	rejected    atomic.Uint64
	dropped     [numDropReasons]atomic.Uint64
	bytesIn     atomic.Uint64
	bytesOut    atomic.Uint64
	denied      [numDenials]atomic.Uint64
	refused     [numRefusals]atomic.Uint64
	throttled   atomic.Uint64
	slowKicked  atomic.Uint64
}

// Refusals by the authenticator, the values of the action label of
// sluice_broker_denied_total.
const (
	deniedConnect   = iota // CONNECT refused (credentials, will topic)
	deniedPublish          // PUBLISH not authorised: not routed
	deniedSubscribe        // one topic filter of a SUBSCRIBE
	deniedRevoked          // a subscription removed after an ACL change
	numDenials
)

var denialNames = [numDenials]string{"connect", "publish", "subscribe", "revoked_subscription"}

// Stats is a snapshot of the broker's counters.
type Stats struct {
	// Connections is the number of open client connections (CONNECT seen).
	Connections int64
	// Sessions is the number of sessions, online or not.
	Sessions int64
	// Subscriptions is the number of subscriptions.
	Subscriptions int
	// Retained is the number of retained messages.
	Retained int
	// PendingAcks is the number of messages handed to the consumer and not
	// yet acked.
	PendingAcks int64
	// Received counts accepted PUBLISH packets by QoS.
	Received [3]uint64
	// Sent counts PUBLISH packets queued to clients.
	Sent uint64
	// Rejected counts messages the consumer rejected (or RejectWait expired).
	Rejected uint64
	// Dropped counts messages not delivered to a subscriber, by reason.
	Dropped map[string]uint64
	// BytesIn and BytesOut count bytes read from and written to clients.
	BytesIn, BytesOut uint64
	// Denied counts refusals by Options.Auth by action: connect, publish
	// (messages not routed) and subscribe (topic filters).
	Denied map[string]uint64
	// Refused counts connections closed at accept by a limit, by reason.
	Refused map[string]uint64
	// Throttled counts waits of publishers held to publish_rate.
	Throttled uint64
	// SlowConsumers counts clients disconnected by slow_consumer_timeout.
	SlowConsumers uint64
}

// Stats returns a snapshot of the broker's counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Connections:   s.stats.connections.Load(),
		Sessions:      s.stats.sessions.Load(),
		Subscriptions: s.subs.Count(),
		Retained:      s.retained.Len(),
		PendingAcks:   s.stats.pendingAcks.Load(),
		Sent:          s.stats.sent.Load(),
		Rejected:      s.stats.rejected.Load(),
		Dropped:       make(map[string]uint64, numDropReasons),
		BytesIn:       s.stats.bytesIn.Load(),
		BytesOut:      s.stats.bytesOut.Load(),
	}
	for i := range st.Received {
		st.Received[i] = s.stats.received[i].Load()
	}
	for i, n := range dropReasonNames {
		st.Dropped[n] = s.stats.dropped[i].Load()
	}
	st.Refused = make(map[string]uint64, numRefusals)
	for i, n := range refusalNames {
		st.Refused[n] = s.stats.refused[i].Load()
	}
	st.Throttled = s.stats.throttled.Load()
	st.SlowConsumers = s.stats.slowKicked.Load()
	st.Denied = make(map[string]uint64, numDenials)
	for i, n := range denialNames {
		st.Denied[n] = s.stats.denied[i].Load()
	}
	return st
}

// collector exports stats to Prometheus.
type collector struct{ s *Server }

var (
	descConnections = prometheus.NewDesc("sluice_broker_connections", "Open client connections.", nil, nil)
	descSessions    = prometheus.NewDesc("sluice_broker_sessions", "Sessions, online or not.", nil, nil)
	descSubs        = prometheus.NewDesc("sluice_broker_subscriptions", "Subscriptions.", nil, nil)
	descRetained    = prometheus.NewDesc("sluice_broker_retained_messages", "Retained messages.", nil, nil)
	descPending     = prometheus.NewDesc("sluice_broker_pending_acks", "Messages handed to the consumer and not yet acked.", nil, nil)
	descReceived    = prometheus.NewDesc("sluice_broker_messages_received_total", "PUBLISH packets received from clients.", []string{"qos"}, nil)
	descSent        = prometheus.NewDesc("sluice_broker_messages_sent_total", "PUBLISH packets sent to clients.", nil, nil)
	descRejected    = prometheus.NewDesc("sluice_broker_messages_rejected_total", "Messages rejected by the consumer or RejectWait.", nil, nil)
	descDropped     = prometheus.NewDesc("sluice_broker_messages_dropped_total", "Messages not delivered to a subscriber.", []string{"reason"}, nil)
	descBytesIn     = prometheus.NewDesc("sluice_broker_bytes_received_total", "Bytes read from clients.", nil, nil)
	descBytesOut    = prometheus.NewDesc("sluice_broker_bytes_sent_total", "Bytes written to clients.", nil, nil)
	descRefused     = prometheus.NewDesc("sluice_broker_connections_refused_total", "Connections closed at accept by a limit.", []string{"reason"}, nil)
	descThrottled   = prometheus.NewDesc("sluice_broker_publish_throttled_total", "Waits of publishers held to publish_rate.", nil, nil)
	descSlow        = prometheus.NewDesc("sluice_broker_slow_consumers_disconnected_total", "Clients disconnected because their queue stayed full past slow_consumer_timeout.", nil, nil)
	descHandshakes  = prometheus.NewDesc("sluice_broker_listener_handshakes_total", "Connections by handshake result.", []string{"listener", "result"}, nil)
	descHandshaking = prometheus.NewDesc("sluice_broker_listener_handshaking", "Connections in their handshake now.", []string{"listener"}, nil)
	descAcceptQueue = prometheus.NewDesc("sluice_broker_listener_accept_queue", "Ready connections waiting to be accepted.", []string{"listener"}, nil)
	descCertReloads = prometheus.NewDesc("sluice_broker_listener_cert_reloads_total", "Certificate reloads by result.", []string{"listener", "result"}, nil)
	descDenied      = prometheus.NewDesc("sluice_broker_denied_total", "Requests refused by authentication, ACL or topic limits.", []string{"action"}, nil)
)

// Describe implements prometheus.Collector.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descConnections, descSessions, descSubs, descRetained, descPending,
		descReceived, descSent, descRejected, descDropped, descBytesIn, descBytesOut, descDenied, descRefused, descThrottled, descSlow,
		descHandshakes, descHandshaking, descAcceptQueue, descCertReloads} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Stats()
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descConnections, float64(st.Connections))
	gauge(descSessions, float64(st.Sessions))
	gauge(descSubs, float64(st.Subscriptions))
	gauge(descRetained, float64(st.Retained))
	gauge(descPending, float64(st.PendingAcks))
	for q, n := range st.Received {
		counter(descReceived, n, string(rune('0'+q)))
	}
	counter(descSent, st.Sent)
	counter(descRejected, st.Rejected)
	for _, name := range dropReasonNames {
		counter(descDropped, st.Dropped[name], name)
	}
	counter(descBytesIn, st.BytesIn)
	counter(descBytesOut, st.BytesOut)
	for _, name := range denialNames {
		counter(descDenied, st.Denied[name], name)
	}
	for _, name := range refusalNames {
		counter(descRefused, st.Refused[name], name)
	}
	counter(descThrottled, st.Throttled)
	counter(descSlow, st.SlowConsumers)
	c.s.mu.Lock()
	lis := append([]*boundListener(nil), c.s.listeners...)
	c.s.mu.Unlock()
	for _, l := range lis {
		ls, name := l.ln.Stats(), l.cfg.Name
		counter(descHandshakes, ls.Accepted, name, "accepted")
		counter(descHandshakes, ls.TimedOut, name, "timeout")
		counter(descHandshakes, ls.Aborted, name, "aborted")
		for stage, n := range ls.Failed {
			counter(descHandshakes, n, name, stage)
		}
		ch <- prometheus.MustNewConstMetric(descHandshaking, prometheus.GaugeValue, float64(ls.Handshaking), name)
		ch <- prometheus.MustNewConstMetric(descAcceptQueue, prometheus.GaugeValue, float64(ls.Queued), name)
		counter(descCertReloads, ls.CertReloads, name, "ok")
		counter(descCertReloads, ls.CertReloadErrors, name, "error")
	}
}

// drop counts one undelivered message.
func (s *stats) drop(reason int) { s.dropped[reason].Add(1) }

// ClientInfo describes one connected client.
type ClientInfo struct {
	ClientID   string
	Username   string
	Version    byte // protocol level: 3, 4 (3.1.1) or 5
	Listener   string
	RemoteAddr string
}

// Clients lists the connected clients (CONNECT accepted), in no
// particular order.
func (s *Server) Clients() []ClientInfo {
	var out []ClientInfo
	s.sessions.each(func(ss *session) {
		// The connection's CONNECT fields are set before it is published
		// in ss.conn, so reading them here is safe.
		if c := ss.conn.Load(); c != nil {
			out = append(out, ClientInfo{ClientID: c.clientID, Username: c.username, Version: c.version,
				Listener: c.lis.cfg.Name, RemoteAddr: c.nc.RemoteAddr().String()})
		}
	})
	return out
}
