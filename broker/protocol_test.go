package broker

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/listener"
	"github.com/sluicehq/sluice/broker/packet"
)

func withExpiry(secs uint32) packet.Properties {
	return packet.Properties{Present: packet.PropSessionExpiry, SessionExpiry: secs}
}

func subscribe(t *testing.T, c *rawClient, subs ...packet.Subscription) *packet.Suback {
	t.Helper()
	c.send(&packet.Subscribe{PacketID: 1, Subs: subs})
	p := c.read(time.Second)
	sa, ok := p.(*packet.Suback)
	if !ok {
		t.Fatalf("got %T, want SUBACK", p)
	}
	cp := *sa
	cp.Codes = append([]packet.ReasonCode(nil), sa.Codes...)
	return &cp
}

// readPublish reads the next packet and checks it is a PUBLISH; the result
// is copied.
func readPublish(t *testing.T, c *rawClient) packet.Publish {
	t.Helper()
	p := c.read(2 * time.Second)
	pb, ok := p.(*packet.Publish)
	if !ok {
		t.Fatalf("got %T %+v, want PUBLISH", p, p)
	}
	cp := *pb
	cp.Topic = append([]byte(nil), pb.Topic...)
	cp.Payload = append([]byte(nil), pb.Payload...)
	cp.Props.SubscriptionIDs = append([]uint32(nil), pb.Props.SubscriptionIDs...)
	return cp
}

func TestConnectEdgeCases(t *testing.T) {
	_, addr := startServer(t, func(c *Config) { c.MaxPacketSize = 1024 }, Options{})
	t.Run("packet before CONNECT", func(t *testing.T) {
		c := dialRaw(t, addr, packet.Version311)
		c.send(&packet.Pingreq{})
		c.expectClosed(-1)
	})
	t.Run("second CONNECT", func(t *testing.T) {
		c := dialRaw(t, addr, packet.Version5)
		c.connect(&packet.Connect{ClientID: []byte("twice"), CleanStart: true})
		c.send(&packet.Connect{ProtocolName: []byte("MQTT"), Version: 5, ClientID: []byte("twice"), CleanStart: true})
		c.expectClosed(int(packet.ProtocolError))
	})
	t.Run("unsupported version", func(t *testing.T) {
		c := dialRaw(t, addr, packet.Version311)
		c.nc.Write([]byte{0x10, 10, 0, 4, 'M', 'Q', 'T', 'T', 9, 2, 0, 30, 0, 0})
		p := c.read(time.Second)
		if ca, ok := p.(*packet.Connack); !ok || ca.ReasonCode != packet.V3UnacceptableProtocolVersion {
			t.Fatalf("got %+v", p)
		}
		c.expectClosed(-1)
	})
	t.Run("v3 empty id without clean session", func(t *testing.T) {
		c := dialRaw(t, addr, packet.Version311)
		if ca := c.connect(&packet.Connect{CleanStart: false}); ca.ReasonCode != packet.V3IdentifierRejected {
			t.Fatalf("code = %v", ca.ReasonCode)
		}
	})
	t.Run("v5 assigned client id", func(t *testing.T) {
		c := dialRaw(t, addr, packet.Version5)
		ca := c.connect(&packet.Connect{CleanStart: true})
		if ca.ReasonCode != 0 || len(ca.Props.AssignedClientID) == 0 {
			t.Fatalf("connack = %+v", ca)
		}
		if !ca.Props.Has(packet.PropMaximumPacketSize) || ca.Props.MaximumPacketSize != 1024 {
			t.Errorf("maximum packet size = %d", ca.Props.MaximumPacketSize)
		}
	})
	t.Run("packet too large", func(t *testing.T) {
		c := dialRaw(t, addr, packet.Version5)
		c.connect(&packet.Connect{ClientID: []byte("big"), CleanStart: true})
		c.publish("t", 0, 0, strings.Repeat("x", 2000))
		c.expectClosed(int(packet.PacketTooLarge))
	})
	t.Run("malformed", func(t *testing.T) {
		c := dialRaw(t, addr, packet.Version5)
		c.connect(&packet.Connect{ClientID: []byte("bad"), CleanStart: true})
		c.nc.Write([]byte{0x36, 2, 0, 1}) // QoS 3
		c.expectClosed(int(packet.MalformedPacket))
	})
	t.Run("invalid topic", func(t *testing.T) {
		c := dialRaw(t, addr, packet.Version5)
		c.connect(&packet.Connect{ClientID: []byte("wild"), CleanStart: true})
		c.publish("a/+", 0, 0, "x")
		c.expectClosed(int(packet.TopicNameInvalid))
	})
}

func TestAnonymousRefused(t *testing.T) {
	_, addr := startServer(t, func(c *Config) { c.Listeners[0].AllowAnonymous = false }, Options{})
	for _, v := range []byte{packet.Version311, packet.Version5} {
		c := dialRaw(t, addr, v)
		want := packet.BadUserNameOrPassword
		if v == packet.Version311 {
			want = packet.V3BadUsernameOrPassword
		}
		if ca := c.connect(&packet.Connect{ClientID: []byte("anon"), CleanStart: true}); ca.ReasonCode != want {
			t.Errorf("v%d: code = %v", v, ca.ReasonCode)
		}
		c2 := dialRaw(t, addr, v)
		if ca := c2.connect(&packet.Connect{ClientID: []byte("named"), CleanStart: true, UsernameFlag: true, Username: []byte("u")}); ca.ReasonCode != 0 {
			t.Errorf("v%d with username: code = %v", v, ca.ReasonCode)
		}
	}
}

func TestKeepAliveTimeout(t *testing.T) {
	_, addr := startServer(t, nil, Options{})
	c := dialRaw(t, addr, packet.Version5)
	c.connect(&packet.Connect{ClientID: []byte("ka"), CleanStart: true, KeepAlive: 1})
	start := time.Now()
	c.expectClosed(int(packet.KeepAliveTimeout))
	if d := time.Since(start); d < 1400*time.Millisecond || d > 3*time.Second {
		t.Errorf("closed after %v, want ~1.5s", d)
	}
}

func TestServerKeepAlive(t *testing.T) {
	_, addr := startServer(t, func(c *Config) { c.MaxKeepAlive = 10 * time.Second }, Options{})
	c := dialRaw(t, addr, packet.Version5)
	ca := c.connect(&packet.Connect{ClientID: []byte("ska"), CleanStart: true, KeepAlive: 0})
	if !ca.Props.Has(packet.PropServerKeepAlive) || ca.Props.ServerKeepAlive != 10 {
		t.Fatalf("server keep alive = %+v", ca.Props)
	}
}

func TestTakeover(t *testing.T) {
	s, addr := startServer(t, nil, Options{})
	old := dialRaw(t, addr, packet.Version5)
	old.connect(&packet.Connect{ClientID: []byte("dup"), CleanStart: true, Props: withExpiry(60)})
	subscribe(t, old, packet.Subscription{Filter: []byte("t"), QoS: 1})
	nw := dialRaw(t, addr, packet.Version5)
	ca := nw.connect(&packet.Connect{ClientID: []byte("dup"), CleanStart: false, Props: withExpiry(60)})
	if !ca.SessionPresent {
		t.Error("session not present after takeover")
	}
	old.expectClosed(int(packet.SessionTakenOver))
	if err := s.Publish(&Message{Topic: "t", QoS: 1, Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if p := readPublish(t, nw); string(p.Payload) != "x" {
		t.Fatalf("got %q", p.Payload)
	}
	// 3.1.1: closed without DISCONNECT.
	o3 := dialRaw(t, addr, packet.Version311)
	o3.connect(&packet.Connect{ClientID: []byte("dup3"), CleanStart: true})
	n3 := dialRaw(t, addr, packet.Version311)
	n3.connect(&packet.Connect{ClientID: []byte("dup3"), CleanStart: true})
	o3.expectClosed(-1)
}

func TestShutdownDisconnectsAndDrains(t *testing.T) {
	h := newHeld()
	cfg := DefaultConfig()
	cfg.Listeners = []ListenerConfig{{Config: listener.Config{Name: "test", Address: "127.0.0.1:0"}, AllowAnonymous: true}}
	cfg.ShutdownTimeout = 5 * time.Second
	s, err := New(cfg, Options{Consumer: h})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	addr := s.Addrs()["test"].String()
	c5 := dialRaw(t, addr, packet.Version5)
	c5.connect(&packet.Connect{ClientID: []byte("v5"), CleanStart: true})
	c3 := dialRaw(t, addr, packet.Version311)
	c3.connect(&packet.Connect{ClientID: []byte("v3"), CleanStart: true})
	c5.publish("t", 1, 1, "pending")
	h.wait(t, 1)
	cancel()
	time.Sleep(100 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("Serve returned with an ack pending")
	default:
	}
	h.ack(0, nil)
	c5.expectAck(packet.PUBACK, 1, 0) // the pending ack still goes out
	c5.expectClosed(int(packet.ServerShuttingDown))
	c3.expectClosed(-1)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("listener still accepting")
	}
}
