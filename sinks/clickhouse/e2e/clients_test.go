package e2e

import (
	"fmt"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// connectV3 connects an MQTT 3.1.1 client (paho.mqtt.golang) with a clean
// session and no automatic reconnect.
func connectV3(t testing.TB, addr, clientID string) mqtt.Client {
	t.Helper()
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(clientID).
		SetProtocolVersion(4).SetCleanSession(true).SetAutoReconnect(false).
		SetConnectTimeout(30 * time.Second).SetWriteTimeout(30 * time.Second).SetKeepAlive(60 * time.Second)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
		t.Fatalf("connecting %s: %v", clientID, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// payload is the JSON a publisher sends as message seq: the README rule
// reads temp, rpm and state from it. rpm carries seq, so the table shows
// which messages arrived; temp cycles through 20.5 .. 29.5, exact in a
// Float32.
func payload(seq int) []byte {
	return fmt.Appendf(nil, `{"rpm":%d,"state":"run","temp":%d.5}`, seq, 20+seq%10)
}

// pending is a QoS 1 publish awaiting its PUBACK.
type pending struct {
	seq int
	tok mqtt.Token
}

// streamer publishes payload(seq) at QoS 1 on one connection until
// stopped or its limit, keeping up to window publishes in flight, and
// records which sequence numbers the broker acknowledged.
type streamer struct {
	c      mqtt.Client
	topic  string
	window int
	pause  time.Duration // between publishes; 0 for none
	limit  int           // publishes at most this many; 0 for no limit

	mu     sync.Mutex
	acked  []int
	failed int
	err    error
}

// run publishes until stop is closed (nil: never) or limit is reached,
// then waits for the open acks.
func (s *streamer) run(stop <-chan struct{}) {
	var queue []pending
	settle := func(p pending) {
		ok := p.tok.WaitTimeout(2 * time.Minute)
		s.mu.Lock()
		defer s.mu.Unlock()
		if ok && p.tok.Error() == nil {
			s.acked = append(s.acked, p.seq)
			return
		}
		s.failed++
		if s.err == nil {
			s.err = fmt.Errorf("publish %d: acked %v, %v", p.seq, ok, p.tok.Error())
		}
	}
	for seq := 0; ; seq++ {
		done := s.limit > 0 && seq == s.limit
		select {
		case <-stop:
			done = true
		default:
		}
		if done {
			for _, p := range queue {
				settle(p)
			}
			return
		}
		queue = append(queue, pending{seq, s.c.Publish(s.topic, 1, false, payload(seq))})
		if len(queue) >= s.window {
			settle(queue[0])
			queue = queue[1:]
		}
		if s.pause > 0 {
			time.Sleep(s.pause)
		}
	}
}

// ackedCount is how many publishes the broker has acknowledged so far.
func (s *streamer) ackedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

// result returns the acknowledged sequence numbers, the number of
// publishes not acknowledged, and the first failure.
func (s *streamer) result() ([]int, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.acked...), s.failed, s.err
}
