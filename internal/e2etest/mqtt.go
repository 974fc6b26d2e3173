package e2etest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// ConnectV3 connects an MQTT 3.1.1 client (paho.mqtt.golang) with a clean
// session and no automatic reconnect, disconnected when the test ends.
func ConnectV3(t testing.TB, addr, clientID string) mqtt.Client {
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

// pending is a QoS 1 publish awaiting its PUBACK.
type pending struct {
	seq int
	tok mqtt.Token
}

// Streamer publishes Payload(seq) at QoS 1 on one connection until
// stopped or its limit, keeping up to Window publishes in flight, and
// records which sequence numbers the broker acknowledged.
type Streamer struct {
	Client  mqtt.Client
	Topic   string
	Payload func(seq int) []byte
	Window  int           // publishes in flight; at least 1
	Pause   time.Duration // between publishes; 0 for none
	Limit   int           // publishes at most this many; 0 for no limit

	mu     sync.Mutex
	acked  []int
	failed int
	err    error
}

// Run publishes until stop is closed (nil: never) or Limit is reached,
// then waits for the open acks.
func (s *Streamer) Run(stop <-chan struct{}) {
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
		done := s.Limit > 0 && seq == s.Limit
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
		queue = append(queue, pending{seq, s.Client.Publish(s.Topic, 1, false, s.Payload(seq))})
		if len(queue) >= s.Window {
			settle(queue[0])
			queue = queue[1:]
		}
		if s.Pause > 0 {
			time.Sleep(s.Pause)
		}
	}
}

// AckedCount is how many publishes the broker has acknowledged so far.
func (s *Streamer) AckedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

// Result returns the acknowledged sequence numbers, the number of
// publishes not acknowledged, and the first failure.
func (s *Streamer) Result() ([]int, int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.acked...), s.failed, s.err
}

// Publishers runs streamers, each on its own goroutine, until Stop.
type Publishers struct {
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

// RunPublishers starts Run of every streamer on its own goroutine. Stop,
// also called when the test ends, ends them and waits for them.
func RunPublishers(t testing.TB, streamers []*Streamer) *Publishers {
	p := &Publishers{stop: make(chan struct{})}
	for _, s := range streamers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			s.Run(p.stop)
		}()
	}
	t.Cleanup(p.Stop)
	return p
}

// Stop ends the publishers and waits until each has settled its open
// publishes. It is safe to call more than once.
func (p *Publishers) Stop() {
	p.once.Do(func() { close(p.stop) })
	p.wg.Wait()
}
