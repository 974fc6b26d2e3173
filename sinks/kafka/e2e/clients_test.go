package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/twmb/franz-go/pkg/kgo"
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

// pending is a QoS 1 publish awaiting its PUBACK.
type pending struct {
	seq int
	tok mqtt.Token
}

// streamer publishes {"seq":N,...} at QoS 1 on one connection until
// stopped, keeping up to window publishes in flight, and records which
// sequence numbers the broker acknowledged.
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
		payload := fmt.Appendf(nil, `{"seq":%d,"temp":%d.5}`, seq, 20+seq%10)
		queue = append(queue, pending{seq, s.c.Publish(s.topic, 1, false, payload)})
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

// readAll consumes topics (regular expressions) from the start until at
// least want records arrived, then keeps reading until nothing new came
// for quiet, to catch duplicates and strays. It fails after timeout.
func readAll(t testing.TB, addr string, want int, quiet, timeout time.Duration, topics ...string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ConsumeRegex(),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond),
		kgo.MetadataMinAge(100*time.Millisecond),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	deadline := time.Now().Add(timeout)
	lastNew := time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachError(func(topic string, p int32, err error) {
			if err != context.DeadlineExceeded {
				t.Logf("fetching %s/%d: %v", topic, p, err)
			}
		})
		if recs := fs.Records(); len(recs) > 0 {
			out = append(out, recs...)
			lastNew = time.Now()
		}
		if len(out) >= want && time.Since(lastNew) >= quiet {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("read %d of %d records from %v within %v", len(out), want, topics, timeout)
		}
	}
}
