package broker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/packet"
)

// heldConsumer records every delivery and lets the test ack them.
type heldConsumer struct {
	mu   sync.Mutex
	msgs []*Message
	acks []func(error)
	ch   chan struct{}
}

func newHeld() *heldConsumer { return &heldConsumer{ch: make(chan struct{}, 1024)} }

func (h *heldConsumer) Deliver(_ context.Context, m *Message, ack func(error)) {
	h.mu.Lock()
	h.msgs = append(h.msgs, m)
	h.acks = append(h.acks, ack)
	h.mu.Unlock()
	h.ch <- struct{}{}
}

// wait blocks until n messages have been delivered.
func (h *heldConsumer) wait(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for h.count() < n {
		select {
		case <-h.ch:
		case <-deadline:
			t.Fatalf("consumer got %d messages, want %d", h.count(), n)
		}
	}
}

func (h *heldConsumer) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.msgs)
}

func (h *heldConsumer) ack(i int, err error) {
	h.mu.Lock()
	f := h.acks[i]
	h.mu.Unlock()
	f(err)
}

func (h *heldConsumer) msg(i int) *Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.msgs[i]
}

func TestOrderedAcksOutOfOrderCompletion(t *testing.T) {
	for _, qos := range []byte{1, 2} {
		for _, version := range []byte{packet.Version311, packet.Version5} {
			t.Run(fmt.Sprintf("qos%d/v%d", qos, version), func(t *testing.T) {
				h := newHeld()
				_, addr := startServer(t, nil, Options{Consumer: h})
				c := dialRaw(t, addr, version)
				c.connect(&packet.Connect{ClientID: []byte("p"), CleanStart: true})
				for i := uint16(1); i <= 5; i++ {
					c.publish("t", qos, i, "m")
				}
				h.wait(t, 5)
				kind := packet.PUBACK
				if qos == 2 {
					kind = packet.PUBREC
				}
				// Completion order 3, 1, 2, 5, 4; acks must leave in arrival order.
				steps := []struct {
					ack  int
					want []uint16
				}{{2, nil}, {0, []uint16{1}}, {1, []uint16{2, 3}}, {4, nil}, {3, []uint16{4, 5}}}
				for _, st := range steps {
					h.ack(st.ack, nil)
					for _, id := range st.want {
						c.expectAck(kind, id, 0)
					}
					c.expectNothing(50 * time.Millisecond)
				}
			})
		}
	}
}

func TestConsumerSeesArrivalOrderAndMetadata(t *testing.T) {
	h := newHeld()
	_, addr := startServer(t, nil, Options{Consumer: h})
	c := dialRaw(t, addr, packet.Version5)
	c.connect(&packet.Connect{ClientID: []byte("meta"), CleanStart: true, UsernameFlag: true, Username: []byte("alice")})
	p := &packet.Publish{Topic: []byte("a/b"), QoS: 1, PacketID: 9, Payload: []byte("hello"), Retain: true}
	p.Props.Set(packet.PropPayloadFormat)
	p.Props.PayloadFormat = 1
	p.Props.Set(packet.PropMessageExpiry)
	p.Props.MessageExpiry = 60
	p.Props.ContentType = []byte("text/plain")
	p.Props.ResponseTopic = []byte("reply/here")
	p.Props.CorrelationData = []byte{1, 2, 3}
	p.Props.User = []packet.UserProperty{{Name: []byte("k"), Value: []byte("v")}}
	c.send(p)
	c.publish("a/c", 0, 0, "second")
	h.wait(t, 2)
	m := h.msg(0)
	want := Message{Topic: "a/b", Payload: []byte("hello"), QoS: 1, Retain: true, ClientID: "meta", Username: "alice",
		Version: 5, PayloadFormat: 1, MessageExpiry: 60, ContentType: "text/plain", ResponseTopic: "reply/here"}
	if m.Topic != want.Topic || string(m.Payload) != "hello" || m.QoS != 1 || !m.Retain || m.ClientID != "meta" ||
		m.Username != "alice" || m.Version != 5 || m.PayloadFormat != 1 || m.MessageExpiry != 60 ||
		m.ContentType != want.ContentType || m.ResponseTopic != want.ResponseTopic || string(m.CorrelationData) != "\x01\x02\x03" ||
		len(m.UserProperties) != 1 || m.UserProperties[0] != (UserProperty{"k", "v"}) || m.ReceivedAt.IsZero() {
		t.Errorf("message = %+v", m)
	}
	if got := h.msg(1); got.Topic != "a/c" || string(got.Payload) != "second" {
		t.Errorf("second message = %+v", got)
	}
}

func TestRouteOnlyAfterAccept(t *testing.T) {
	h := newHeld()
	_, addr := startServer(t, nil, Options{Consumer: h})
	sub := dialRaw(t, addr, packet.Version5)
	sub.connect(&packet.Connect{ClientID: []byte("sub"), CleanStart: true})
	sub.send(&packet.Subscribe{PacketID: 1, Subs: []packet.Subscription{{Filter: []byte("#"), QoS: 1}}})
	if _, ok := sub.read(time.Second).(*packet.Suback); !ok {
		t.Fatal("no SUBACK")
	}
	pub := dialRaw(t, addr, packet.Version5)
	pub.connect(&packet.Connect{ClientID: []byte("pub"), CleanStart: true})
	pub.publish("x", 1, 1, "one")
	pub.publish("y", 0, 0, "two")
	h.wait(t, 2)
	sub.expectNothing(100 * time.Millisecond)
	h.ack(1, nil) // the QoS 0 message waits behind the QoS 1 one
	sub.expectNothing(100 * time.Millisecond)
	h.ack(0, nil)
	for _, want := range []string{"one", "two"} {
		p, ok := sub.read(time.Second).(*packet.Publish)
		if !ok || string(p.Payload) != want {
			t.Fatalf("got %+v, want %q", p, want)
		}
	}
}

func TestBackpressureStopsReading(t *testing.T) {
	h := newHeld()
	_, addr := startServer(t, func(c *Config) { c.ReceiveMaximum = 2 }, Options{Consumer: h})
	c := dialRaw(t, addr, packet.Version311)
	c.connect(&packet.Connect{ClientID: []byte("bp"), CleanStart: true})
	// Flood QoS 0: the broker must stop reading after 2 undelivered
	// messages, so the socket buffers fill and our writes block.
	payload := strings.Repeat("x", 64<<10)
	b, _ := packet.Append(nil, &packet.Publish{Topic: []byte("t"), Payload: []byte(payload)}, packet.Version311)
	blocked := false
	for i := 0; i < 2000; i++ {
		c.nc.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := c.nc.Write(b); err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("write: %v", err)
			}
			blocked = true
			break
		}
	}
	if !blocked {
		t.Fatal("broker kept reading while the consumer held every message")
	}
	h.wait(t, 2)
	time.Sleep(50 * time.Millisecond)
	if n := h.count(); n != 2 {
		t.Fatalf("consumer got %d messages while full, want 2", n)
	}
	h.ack(0, nil)
	h.wait(t, 3) // one slot freed: one more message read
	time.Sleep(50 * time.Millisecond)
	if n := h.count(); n != 3 {
		t.Fatalf("consumer got %d messages after one ack, want 3", n)
	}
}

func TestBackpressureV5QoS1(t *testing.T) {
	h := newHeld()
	_, addr := startServer(t, func(c *Config) { c.ReceiveMaximum = 3 }, Options{Consumer: h})
	c := dialRaw(t, addr, packet.Version5)
	ca := c.connect(&packet.Connect{ClientID: []byte("bp5"), CleanStart: true})
	if !ca.Props.Has(packet.PropReceiveMaximum) || ca.Props.ReceiveMaximum != 3 {
		t.Fatalf("CONNACK receive maximum = %v", ca.Props.ReceiveMaximum)
	}
	for i := uint16(1); i <= 4; i++ { // one more than allowed
		c.publish("t", 1, i, "m")
	}
	h.wait(t, 3)
	time.Sleep(50 * time.Millisecond)
	if n := h.count(); n != 3 {
		t.Fatalf("consumer got %d, want 3 while the window is full", n)
	}
	h.ack(0, nil)
	c.expectAck(packet.PUBACK, 1, 0)
	h.wait(t, 4)
}

func TestReceiveMaximumExceededQoS2(t *testing.T) {
	_, addr := startServer(t, func(c *Config) { c.ReceiveMaximum = 2 }, Options{})
	c := dialRaw(t, addr, packet.Version5)
	c.connect(&packet.Connect{ClientID: []byte("rm"), CleanStart: true})
	c.publish("t", 2, 1, "a")
	c.expectAck(packet.PUBREC, 1, 0)
	c.publish("t", 2, 2, "b")
	c.expectAck(packet.PUBREC, 2, 0)
	c.publish("t", 2, 3, "c") // two still await PUBREL
	c.expectClosed(int(packet.ReceiveMaximumExceeded))
}

func TestRejectV5(t *testing.T) {
	for _, qos := range []byte{1, 2} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			h := newHeld()
			_, addr := startServer(t, nil, Options{Consumer: h})
			sub := dialRaw(t, addr, packet.Version5)
			sub.connect(&packet.Connect{ClientID: []byte("sub"), CleanStart: true})
			sub.send(&packet.Subscribe{PacketID: 1, Subs: []packet.Subscription{{Filter: []byte("#"), QoS: 2}}})
			sub.read(time.Second)
			c := dialRaw(t, addr, packet.Version5)
			c.connect(&packet.Connect{ClientID: []byte("p"), CleanStart: true})
			c.publish("t", qos, 1, "no")
			h.wait(t, 1)
			h.ack(0, &RejectError{Code: 0x97, Reason: "pipeline full"})
			kind := packet.PUBACK
			if qos == 2 {
				kind = packet.PUBREC
			}
			p := c.read(time.Second)
			a, ok := p.(*packet.Ack)
			if !ok || a.Kind != kind || a.PacketID != 1 || a.ReasonCode != packet.QuotaExceeded || string(a.Props.ReasonString) != "pipeline full" {
				t.Fatalf("got %+v, want %v 0x97 with reason", p, kind)
			}
			sub.expectNothing(100 * time.Millisecond)
			// The id is free again: the same id is a new message.
			c.publish("t", qos, 1, "yes")
			h.wait(t, 2)
			h.ack(1, nil)
			c.expectAck(kind, 1, 0)
			if pb, ok := sub.read(time.Second).(*packet.Publish); !ok || string(pb.Payload) != "yes" {
				t.Fatalf("subscriber got %+v", pb)
			}
		})
	}
}

func TestRejectV311Disconnects(t *testing.T) {
	h := newHeld()
	s, addr := startServer(t, nil, Options{Consumer: h})
	c := dialRaw(t, addr, packet.Version311)
	c.connect(&packet.Connect{ClientID: []byte("p"), CleanStart: true})
	c.publish("t", 1, 1, "no")
	c.publish("t", 1, 2, "later")
	h.wait(t, 2)
	h.ack(1, nil)
	h.ack(0, &RejectError{Code: 0x97})
	c.expectClosed(-1) // no PUBACK for either: the rejected one blocks the second
	if st := s.Stats(); st.Rejected != 1 {
		t.Errorf("rejected = %d, want 1", st.Rejected)
	}
}

func TestRejectWait(t *testing.T) {
	h := newHeld()
	_, addr := startServer(t, func(c *Config) { c.RejectWait = 150 * time.Millisecond }, Options{Consumer: h})
	t.Run("v5", func(t *testing.T) {
		c := dialRaw(t, addr, packet.Version5)
		c.connect(&packet.Connect{ClientID: []byte("rw5"), CleanStart: true})
		start := time.Now()
		c.publish("t", 1, 1, "m")
		c.publish("t", 1, 2, "m")
		c.expectAck(packet.PUBACK, 1, packet.QuotaExceeded)
		c.expectAck(packet.PUBACK, 2, packet.QuotaExceeded)
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("rejected after %v, before reject_wait", d)
		}
		h.ack(0, nil) // late acks are ignored
		h.ack(1, nil)
		c.expectNothing(50 * time.Millisecond)
	})
	t.Run("v311", func(t *testing.T) {
		c := dialRaw(t, addr, packet.Version311)
		c.connect(&packet.Connect{ClientID: []byte("rw3"), CleanStart: true})
		c.publish("t", 1, 1, "m")
		c.expectClosed(-1)
	})
	t.Run("accepted in time", func(t *testing.T) {
		c := dialRaw(t, addr, packet.Version5)
		c.connect(&packet.Connect{ClientID: []byte("rw-ok"), CleanStart: true})
		n := h.count()
		c.publish("t", 1, 7, "m")
		h.wait(t, n+1)
		h.ack(n, nil)
		c.expectAck(packet.PUBACK, 7, 0)
		time.Sleep(200 * time.Millisecond)
		c.expectNothing(10 * time.Millisecond)
	})
}

func TestQoS2Dedup(t *testing.T) {
	h := newHeld()
	_, addr := startServer(t, nil, Options{Consumer: h})
	c := dialRaw(t, addr, packet.Version5)
	c.connect(&packet.Connect{ClientID: []byte("q2"), CleanStart: true, Props: packet.Properties{Present: packet.PropSessionExpiry, SessionExpiry: 60}})
	c.publish("t", 2, 7, "m")
	h.wait(t, 1)
	// A duplicate before acceptance is not delivered again.
	c.send(&packet.Publish{Topic: []byte("t"), QoS: 2, PacketID: 7, Dup: true, Payload: []byte("m")})
	c.expectNothing(50 * time.Millisecond)
	h.ack(0, nil)
	c.expectAck(packet.PUBREC, 7, 0)
	// A duplicate after PUBREC gets PUBREC again, no delivery.
	c.send(&packet.Publish{Topic: []byte("t"), QoS: 2, PacketID: 7, Dup: true, Payload: []byte("m")})
	c.expectAck(packet.PUBREC, 7, 0)
	// Across a reconnect too (session kept).
	c.nc.Close()
	c = dialRaw(t, addr, packet.Version5)
	ca := c.connect(&packet.Connect{ClientID: []byte("q2"), CleanStart: false, Props: packet.Properties{Present: packet.PropSessionExpiry, SessionExpiry: 60}})
	if !ca.SessionPresent {
		t.Fatal("session not present")
	}
	c.send(&packet.Publish{Topic: []byte("t"), QoS: 2, PacketID: 7, Dup: true, Payload: []byte("m")})
	c.expectAck(packet.PUBREC, 7, 0)
	c.send(&packet.Ack{Kind: packet.PUBREL, PacketID: 7})
	c.expectAck(packet.PUBCOMP, 7, 0)
	if n := h.count(); n != 1 {
		t.Fatalf("delivered %d times, want 1", n)
	}
	// After PUBREL the id starts a new message.
	c.publish("t", 2, 7, "again")
	h.wait(t, 2)
	// PUBREL for an unknown id.
	c.send(&packet.Ack{Kind: packet.PUBREL, PacketID: 99})
	c.expectAck(packet.PUBCOMP, 99, packet.PacketIdentifierNotFound)
}

// Consumer acks after the publisher is gone must not panic or leak.
func TestAckAfterDisconnect(t *testing.T) {
	h := newHeld()
	s, addr := startServer(t, nil, Options{Consumer: h})
	c := dialRaw(t, addr, packet.Version5)
	c.connect(&packet.Connect{ClientID: []byte("gone"), CleanStart: true})
	c.publish("t", 1, 1, "m")
	h.wait(t, 1)
	c.nc.Close()
	waitFor(t, func() bool { return s.Stats().Connections == 0 })
	h.ack(0, nil)
	if n := s.Stats().PendingAcks; n != 0 {
		t.Errorf("pending acks = %d", n)
	}
}

// waitFor polls cond for up to 5s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met")
}

// blockingConsumer blocks in Deliver until release is closed and never
// acks on its own.
type blockingConsumer struct {
	release chan struct{}
	acks    chan func(error)
}

func (b *blockingConsumer) Deliver(_ context.Context, _ *Message, ack func(error)) {
	b.acks <- ack
	<-b.release
}

// RejectWait also rejects while the reader is stuck in a blocking Deliver,
// and a synchronous ack inside Deliver still goes out in order.
func TestRejectWaitWhileDeliverBlocks(t *testing.T) {
	bc := &blockingConsumer{release: make(chan struct{}), acks: make(chan func(error), 10)}
	_, addr := startServer(t, func(c *Config) { c.RejectWait = 100 * time.Millisecond }, Options{Consumer: bc})
	c := dialRaw(t, addr, packet.Version5)
	c.connect(&packet.Connect{ClientID: []byte("blocked"), CleanStart: true})
	c.publish("t", 1, 1, "m")
	c.expectAck(packet.PUBACK, 1, packet.QuotaExceeded)
	close(bc.release)
	(<-bc.acks)(nil) // too late: ignored
	c.expectNothing(50 * time.Millisecond)
}

// syncConsumer acks inside Deliver.
type syncConsumer struct{ n atomic.Int64 }

func (s *syncConsumer) Deliver(_ context.Context, _ *Message, ack func(error)) {
	s.n.Add(1)
	ack(nil)
}

func TestSynchronousAck(t *testing.T) {
	sc := &syncConsumer{}
	_, addr := startServer(t, nil, Options{Consumer: sc})
	sub := dialRaw(t, addr, packet.Version311)
	sub.connect(&packet.Connect{ClientID: []byte("sub"), CleanStart: true})
	subscribe(t, sub, packet.Subscription{Filter: []byte("t")})
	c := dialRaw(t, addr, packet.Version311)
	c.connect(&packet.Connect{ClientID: []byte("sync"), CleanStart: true})
	for i := uint16(1); i <= 5; i++ {
		c.publish("t", 1, i, fmt.Sprint(i))
	}
	for i := uint16(1); i <= 5; i++ {
		c.expectAck(packet.PUBACK, i, 0)
		if p := readPublish(t, sub); string(p.Payload) != fmt.Sprint(i) {
			t.Fatalf("got %q, want %d", p.Payload, i)
		}
	}
}
