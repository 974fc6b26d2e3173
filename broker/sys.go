package broker

import (
	"strconv"
	"time"
)

// sysTopics publishes the broker's $SYS topics (retained, QoS 0) every
// cfg.SysInterval until stop is closed. They bypass the consumer and the
// ACL (server messages); subscribing to $SYS/# still needs an ACL rule
// when rules exist, since '#' does not match '$' topics [MQTT-4.7.2-1].
func (s *Server) runSys(stop <-chan struct{}) {
	defer s.wg.Done()
	s.publishSys()
	t := time.NewTicker(s.cfg.SysInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.publishSys()
		case <-stop:
			return
		}
	}
}

// publishSys publishes one round of $SYS values.
func (s *Server) publishSys() {
	st := s.Stats()
	var recv uint64
	for _, n := range st.Received {
		recv += n
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	values := [...][2]string{
		{"$SYS/broker/version", s.version},
		{"$SYS/broker/uptime", strconv.FormatInt(int64(time.Since(s.started)/time.Second), 10)},
		{"$SYS/broker/clients/connected", strconv.FormatInt(st.Connections, 10)},
		{"$SYS/broker/clients/total", strconv.FormatInt(st.Sessions, 10)},
		{"$SYS/broker/messages/received", u(recv)},
		{"$SYS/broker/messages/sent", u(st.Sent)},
		{"$SYS/broker/bytes/received", u(st.BytesIn)},
		{"$SYS/broker/bytes/sent", u(st.BytesOut)},
		{"$SYS/broker/subscriptions/count", strconv.Itoa(st.Subscriptions)},
		{"$SYS/broker/retained messages/count", strconv.Itoa(st.Retained)},
	}
	now := time.Now()
	for _, v := range values {
		s.deliverAccepted(&Message{Topic: v[0], Payload: []byte(v[1]), Retain: true, ReceivedAt: now}, "", false, nil)
	}
}
