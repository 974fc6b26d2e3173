package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/listener"
	"github.com/sluicehq/sluice/broker/packet"
)

// runServer starts a broker with the store and returns a stop function.
func runServer(t *testing.T, store SessionStore) (addr string, stop func()) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listeners = []ListenerConfig{{Config: listener.Config{Name: "test", Address: "127.0.0.1:0"}, AllowAnonymous: true}}
	cfg.ShutdownTimeout = time.Second
	s, err := New(cfg, Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	return s.Addrs()["test"].String(), func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}
}

func TestStoreSurvivesRestart(t *testing.T) {
	store := NewMemoryStore()
	addr, stop := runServer(t, store)

	sub := dialRaw(t, addr, packet.Version311)
	sub.connect(&packet.Connect{ClientID: []byte("durable"), CleanStart: true})
	sub.nc.Close()
	sub = dialRaw(t, addr, packet.Version311)
	sub.connect(&packet.Connect{ClientID: []byte("durable")})
	subscribe(t, sub, packet.Subscription{Filter: []byte("d/#"), QoS: 1})
	pub := dialRaw(t, addr, packet.Version5)
	pub.connect(&packet.Connect{ClientID: []byte("pub"), CleanStart: true, Props: withExpiry(600)})
	pub.send(&packet.Publish{Topic: []byte("d/inflight"), QoS: 1, PacketID: 1, Payload: []byte("unacked")})
	pub.expectAck(packet.PUBACK, 1, 0)
	first := readPublish(t, sub) // delivered, never acked
	sub.nc.Close()
	for i := 0; i < 3; i++ {
		pub.send(&packet.Publish{Topic: []byte("d/queued"), QoS: 1, PacketID: uint16(2 + i), Payload: []byte(fmt.Sprint("q", i))})
		pub.expectAck(packet.PUBACK, uint16(2+i), 0)
	}
	pub.send(&packet.Publish{Topic: []byte("d/retained"), Retain: true, Payload: []byte("kept")})
	// An inbound QoS 2 exchange left open across the restart.
	pub.send(&packet.Publish{Topic: []byte("x"), QoS: 2, PacketID: 9, Payload: []byte("once")})
	pub.expectAck(packet.PUBREC, 9, 0)
	pub.nc.Close()
	time.Sleep(100 * time.Millisecond)
	stop()

	if s, ok := store.Session("durable"); !ok || len(s.Outbound)+len(s.Queued) != 4 || len(s.Subscriptions) != 1 {
		t.Fatalf("stored session = %+v (present %v)", s, ok)
	}

	addr, stop = runServer(t, store)
	defer stop()
	sub = dialRaw(t, addr, packet.Version311)
	if ca := sub.connect(&packet.Connect{ClientID: []byte("durable")}); !ca.SessionPresent {
		t.Fatal("session not present after restart")
	}
	p := readPublish(t, sub)
	if !p.Dup || p.PacketID != first.PacketID || string(p.Payload) != "unacked" {
		t.Fatalf("resent = %+v", p)
	}
	sub.send(&packet.Ack{Kind: packet.PUBACK, PacketID: p.PacketID})
	for i := 0; i < 3; i++ {
		p := readPublish(t, sub)
		if string(p.Payload) != fmt.Sprint("q", i) {
			t.Fatalf("queued %d = %q", i, p.Payload)
		}
		sub.send(&packet.Ack{Kind: packet.PUBACK, PacketID: p.PacketID})
	}
	subscribe(t, sub, packet.Subscription{Filter: []byte("d/retained")})
	if p := readPublish(t, sub); string(p.Payload) != "kept" || !p.Retain {
		t.Fatalf("retained = %+v", p)
	}
	pub = dialRaw(t, addr, packet.Version5)
	pub.connect(&packet.Connect{ClientID: []byte("pub"), Props: withExpiry(600)})
	pub.send(&packet.Publish{Topic: []byte("x"), QoS: 2, PacketID: 9, Dup: true, Payload: []byte("once")})
	pub.expectAck(packet.PUBREC, 9, 0) // known id: not delivered again
	pub.send(&packet.Ack{Kind: packet.PUBREL, PacketID: 9})
	pub.expectAck(packet.PUBCOMP, 9, 0)
}

func TestStoreForgetsEndedSessions(t *testing.T) {
	store := NewMemoryStore()
	addr, stop := runServer(t, store)
	c := dialRaw(t, addr, packet.Version5)
	c.connect(&packet.Connect{ClientID: []byte("brief"), CleanStart: true, Props: withExpiry(60)})
	subscribe(t, c, packet.Subscription{Filter: []byte("a")})
	time.Sleep(2 * storeFlushEvery)
	if _, ok := store.Session("brief"); !ok {
		t.Fatal("session not saved")
	}
	c.nc.Close()
	c = dialRaw(t, addr, packet.Version5)
	c.connect(&packet.Connect{ClientID: []byte("brief"), CleanStart: true}) // expiry 0: ends at close
	c.send(&packet.Disconnect{})
	c.expectClosed(-1)
	time.Sleep(100 * time.Millisecond)
	stop()
	if s, ok := store.Session("brief"); ok {
		t.Fatalf("ended session still stored: %+v", s)
	}
}

// TestSessionExpiryAcrossRestart checks that the time a session spent
// offline before a restart counts toward its expiry, and that the restore
// deletes a session that expired while the broker was down.
func TestSessionExpiryAcrossRestart(t *testing.T) {
	tests := []struct {
		name        string
		downFor     time.Duration
		wantPresent bool
	}{
		{"still valid", 0, true},
		{"expired while down", 2500 * time.Millisecond, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := NewMemoryStore()
			addr, stop := runServer(t, store)
			c := dialRaw(t, addr, packet.Version5)
			c.connect(&packet.Connect{ClientID: []byte("exp"), CleanStart: true, Props: withExpiry(2)})
			c.send(&packet.Disconnect{})
			c.expectClosed(-1)
			stop()
			time.Sleep(tc.downFor)
			addr, stop = runServer(t, store)
			defer stop()
			c = dialRaw(t, addr, packet.Version5)
			ca := c.connect(&packet.Connect{ClientID: []byte("exp"), Props: withExpiry(2)})
			if ca.SessionPresent != tc.wantPresent {
				t.Fatalf("session present %v, want %v", ca.SessionPresent, tc.wantPresent)
			}
		})
	}
}
