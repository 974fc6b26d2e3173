package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/packet"
)

func TestRetained(t *testing.T) {
	s, addr := startServer(t, nil, Options{})
	pub := dialRaw(t, addr, packet.Version5)
	pub.connect(&packet.Connect{ClientID: []byte("pub"), CleanStart: true})
	pub.send(&packet.Publish{Topic: []byte("r/1"), QoS: 1, PacketID: 1, Retain: true, Payload: []byte("one")})
	pub.expectAck(packet.PUBACK, 1, 0)
	pub.send(&packet.Publish{Topic: []byte("r/2"), Retain: true, Payload: []byte("two")})
	pub.send(&packet.Publish{Topic: []byte("r/2"), Retain: true}) // clears
	pub.send(&packet.Publish{Topic: []byte("r/3"), Retain: true, Payload: []byte("three")})
	waitFor(t, func() bool { return s.Stats().Retained == 2 })

	sub := dialRaw(t, addr, packet.Version5)
	sub.connect(&packet.Connect{ClientID: []byte("sub"), CleanStart: true})
	subscribe(t, sub, packet.Subscription{Filter: []byte("r/+"), QoS: 1})
	got := map[string]packet.Publish{}
	for i := 0; i < 2; i++ {
		p := readPublish(t, sub)
		got[string(p.Topic)] = p
		if p.QoS == 1 {
			sub.send(&packet.Ack{Kind: packet.PUBACK, PacketID: p.PacketID})
		}
	}
	if !got["r/1"].Retain || string(got["r/1"].Payload) != "one" || got["r/1"].QoS != 1 || !got["r/3"].Retain || got["r/3"].QoS != 0 {
		t.Fatalf("retained deliveries = %+v", got)
	}
	sub.expectNothing(50 * time.Millisecond)

	// Retain handling: 1 sends only for a new subscription, 2 never.
	sub.send(&packet.Subscribe{PacketID: 2, Subs: []packet.Subscription{{Filter: []byte("r/+"), QoS: 0, RetainHandling: 1}}})
	if _, ok := sub.read(time.Second).(*packet.Suback); !ok {
		t.Fatal("no SUBACK")
	}
	sub.expectNothing(50 * time.Millisecond)
	sub.send(&packet.Subscribe{PacketID: 3, Subs: []packet.Subscription{{Filter: []byte("r/#"), RetainHandling: 2}}})
	sub.read(time.Second)
	sub.expectNothing(50 * time.Millisecond)

	// Live delivery of a retained message: RETAIN cleared unless
	// retain-as-published.
	rap := dialRaw(t, addr, packet.Version5)
	rap.connect(&packet.Connect{ClientID: []byte("rap"), CleanStart: true})
	subscribe(t, rap, packet.Subscription{Filter: []byte("live"), RetainAsPublished: true})
	plain := dialRaw(t, addr, packet.Version311)
	plain.connect(&packet.Connect{ClientID: []byte("plain"), CleanStart: true})
	subscribe(t, plain, packet.Subscription{Filter: []byte("live")})
	pub.send(&packet.Publish{Topic: []byte("live"), Retain: true, Payload: []byte("x")})
	if p := readPublish(t, rap); !p.Retain {
		t.Error("retain-as-published subscriber got RETAIN 0")
	}
	if p := readPublish(t, plain); p.Retain {
		t.Error("plain subscriber got RETAIN 1 on live delivery")
	}
}

func TestWills(t *testing.T) {
	_, addr := startServer(t, nil, Options{})
	watcher := dialRaw(t, addr, packet.Version5)
	watcher.connect(&packet.Connect{ClientID: []byte("watcher"), CleanStart: true})
	subscribe(t, watcher, packet.Subscription{Filter: []byte("will/#")})

	connectWithWill := func(id string, v byte, delay uint32, expiry uint32) *rawClient {
		c := dialRaw(t, addr, v)
		cp := &packet.Connect{ClientID: []byte(id), CleanStart: true, WillFlag: true,
			WillTopic: []byte("will/" + id), WillPayload: []byte("gone " + id), Props: withExpiry(expiry)}
		if delay > 0 {
			cp.WillProps.Set(packet.PropWillDelayInterval)
			cp.WillProps.WillDelayInterval = delay
		}
		c.connect(cp)
		return c
	}
	t.Run("abnormal close", func(t *testing.T) {
		c := connectWithWill("a", packet.Version311, 0, 0)
		c.nc.Close()
		if p := readPublish(t, watcher); string(p.Payload) != "gone a" {
			t.Fatalf("will = %q", p.Payload)
		}
	})
	t.Run("normal disconnect cancels", func(t *testing.T) {
		c := connectWithWill("b", packet.Version5, 0, 0)
		c.send(&packet.Disconnect{})
		c.expectClosed(-1)
		watcher.expectNothing(100 * time.Millisecond)
	})
	t.Run("disconnect with will", func(t *testing.T) {
		c := connectWithWill("c", packet.Version5, 0, 0)
		c.send(&packet.Disconnect{ReasonCode: packet.DisconnectWithWill})
		if p := readPublish(t, watcher); string(p.Payload) != "gone c" {
			t.Fatalf("will = %q", p.Payload)
		}
	})
	t.Run("delay", func(t *testing.T) {
		c := connectWithWill("d", packet.Version5, 1, 60)
		start := time.Now()
		c.nc.Close()
		if p := readPublish(t, watcher); string(p.Payload) != "gone d" {
			t.Fatalf("will = %q", p.Payload)
		}
		if d := time.Since(start); d < 900*time.Millisecond {
			t.Errorf("delayed will after %v", d)
		}
	})
	t.Run("delay cancelled by reconnect", func(t *testing.T) {
		c := connectWithWill("e", packet.Version5, 1, 60)
		c.nc.Close()
		time.Sleep(100 * time.Millisecond)
		c2 := dialRaw(t, addr, packet.Version5)
		c2.connect(&packet.Connect{ClientID: []byte("e"), Props: withExpiry(60)})
		watcher.expectNothing(1300 * time.Millisecond)
	})
	t.Run("session end before delay", func(t *testing.T) {
		c := connectWithWill("f", packet.Version5, 30, 0)
		c.nc.Close() // expiry 0: the session ends now, so does the delay
		if p := readPublish(t, watcher); string(p.Payload) != "gone f" {
			t.Fatalf("will = %q", p.Payload)
		}
	})
}

func TestSubscriptionOptions(t *testing.T) {
	_, addr := startServer(t, nil, Options{})
	c := dialRaw(t, addr, packet.Version5)
	c.connect(&packet.Connect{ClientID: []byte("self"), CleanStart: true})
	c.send(&packet.Subscribe{PacketID: 1, Props: packet.Properties{SubscriptionIDs: []uint32{42}},
		Subs: []packet.Subscription{{Filter: []byte("own"), NoLocal: true}, {Filter: []byte("id/#")}}})
	sa, ok := c.read(time.Second).(*packet.Suback)
	if !ok || len(sa.Codes) != 2 {
		t.Fatalf("suback = %+v", sa)
	}
	c.publish("own", 0, 0, "loop")
	c.publish("id/x", 0, 0, "with id")
	p := readPublish(t, c)
	if string(p.Payload) != "with id" || len(p.Props.SubscriptionIDs) != 1 || p.Props.SubscriptionIDs[0] != 42 {
		t.Fatalf("got %+v", p)
	}
	c.expectNothing(50 * time.Millisecond)

	t.Run("invalid filters", func(t *testing.T) {
		sa := subscribe(t, c, packet.Subscription{Filter: []byte("a/#/b")}, packet.Subscription{Filter: []byte("$share/g")},
			packet.Subscription{Filter: []byte("ok"), QoS: 2})
		want := []packet.ReasonCode{packet.TopicFilterInvalid, packet.TopicFilterInvalid, packet.GrantedQoS2}
		if fmt.Sprint(sa.Codes) != fmt.Sprint(want) {
			t.Fatalf("codes = %v, want %v", sa.Codes, want)
		}
	})
	t.Run("dollar topics", func(t *testing.T) {
		subscribe(t, c, packet.Subscription{Filter: []byte("#")})
		c.publish("$SYS/x", 0, 0, "sys")
		c.publish("plain", 0, 0, "plain")
		if p := readPublish(t, c); string(p.Topic) != "plain" {
			t.Fatalf("# matched %q", p.Topic)
		}
	})
	t.Run("unsubscribe", func(t *testing.T) {
		c.send(&packet.Unsubscribe{PacketID: 9, Filters: [][]byte{[]byte("#"), []byte("nope")}})
		ua, ok := c.read(time.Second).(*packet.Unsuback)
		if !ok || len(ua.Codes) != 2 || ua.Codes[0] != 0 || ua.Codes[1] != packet.NoSubscriptionExisted {
			t.Fatalf("unsuback = %+v", ua)
		}
	})
}

func TestSharedSubscriptions(t *testing.T) {
	s, addr := startServer(t, nil, Options{})
	var members []*rawClient
	for i := 0; i < 3; i++ {
		c := dialRaw(t, addr, packet.Version5)
		c.connect(&packet.Connect{ClientID: []byte(fmt.Sprintf("m%d", i)), CleanStart: true})
		subscribe(t, c, packet.Subscription{Filter: []byte("$share/g/jobs/+")})
		members = append(members, c)
	}
	for i := 0; i < 30; i++ {
		if err := s.Publish(&Message{Topic: "jobs/x", Payload: []byte("j")}); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range members {
		for j := 0; j < 10; j++ {
			readPublish(t, c)
		}
		c.expectNothing(30 * time.Millisecond)
		_ = i
	}
	t.Run("no local on shared is a protocol error", func(t *testing.T) {
		c := dialRaw(t, addr, packet.Version5)
		c.connect(&packet.Connect{ClientID: []byte("nl"), CleanStart: true})
		c.send(&packet.Subscribe{PacketID: 1, Subs: []packet.Subscription{{Filter: []byte("$share/g/x"), NoLocal: true}}})
		c.expectClosed(int(packet.ProtocolError))
	})
}

func TestTopicAliases(t *testing.T) {
	_, addr := startServer(t, func(c *Config) { c.TopicAliasMaximum = 2 }, Options{})
	sub := dialRaw(t, addr, packet.Version5)
	sub.connect(&packet.Connect{ClientID: []byte("sub"), CleanStart: true,
		Props: packet.Properties{Present: packet.PropTopicAliasMaximum, TopicAliasMaximum: 1}})
	subscribe(t, sub, packet.Subscription{Filter: []byte("#")})

	pub := dialRaw(t, addr, packet.Version5)
	pub.connect(&packet.Connect{ClientID: []byte("pub"), CleanStart: true})
	aliased := func(topic string, alias uint16, payload string) {
		p := &packet.Publish{Topic: []byte(topic), Payload: []byte(payload)}
		p.Props.Set(packet.PropTopicAlias)
		p.Props.TopicAlias = alias
		pub.send(p)
	}
	aliased("a/b", 1, "1")
	aliased("", 1, "2")
	aliased("c", 2, "3")
	aliased("", 2, "4")
	want := []struct {
		topic string
		alias uint16
	}{{"a/b", 1}, {"", 1}, {"c", 0}, {"c", 0}} // the subscriber allows one alias
	for i, w := range want {
		p := readPublish(t, sub)
		if string(p.Topic) != w.topic || p.Props.TopicAlias != w.alias || string(p.Payload) != fmt.Sprint(i+1) {
			t.Fatalf("delivery %d: topic %q alias %d payload %q, want %+v", i, p.Topic, p.Props.TopicAlias, p.Payload, w)
		}
	}
	t.Run("alias over maximum", func(t *testing.T) {
		aliased("x", 3, "bad")
		pub.expectClosed(int(packet.TopicAliasInvalid))
	})
	t.Run("unknown alias", func(t *testing.T) {
		c := dialRaw(t, addr, packet.Version5)
		c.connect(&packet.Connect{ClientID: []byte("unk"), CleanStart: true})
		p := &packet.Publish{Payload: []byte("x")}
		p.Props.Set(packet.PropTopicAlias)
		p.Props.TopicAlias = 1
		c.send(p)
		c.expectClosed(int(packet.ProtocolError))
	})
}

func TestMessageExpiry(t *testing.T) {
	s, addr := startServer(t, nil, Options{})
	sub := dialRaw(t, addr, packet.Version5)
	sub.connect(&packet.Connect{ClientID: []byte("exp"), CleanStart: true, Props: withExpiry(60)})
	subscribe(t, sub, packet.Subscription{Filter: []byte("e/#"), QoS: 1})
	sub.nc.Close()
	waitFor(t, func() bool { return s.Stats().Connections == 0 })
	s.Publish(&Message{Topic: "e/short", QoS: 1, Payload: []byte("short"), MessageExpiry: 1})
	s.Publish(&Message{Topic: "e/long", QoS: 1, Payload: []byte("long"), MessageExpiry: 100})
	time.Sleep(1100 * time.Millisecond)
	sub = dialRaw(t, addr, packet.Version5)
	sub.connect(&packet.Connect{ClientID: []byte("exp"), Props: withExpiry(60)})
	p := readPublish(t, sub)
	if string(p.Payload) != "long" || !p.Props.Has(packet.PropMessageExpiry) || p.Props.MessageExpiry > 99 || p.Props.MessageExpiry < 97 {
		t.Fatalf("got %q expiry %d", p.Payload, p.Props.MessageExpiry)
	}
	sub.expectNothing(50 * time.Millisecond)
	if n := s.Stats().Dropped["expired"]; n != 1 {
		t.Errorf("expired drops = %d", n)
	}
}

func TestClientMaximumPacketSize(t *testing.T) {
	s, addr := startServer(t, nil, Options{})
	sub := dialRaw(t, addr, packet.Version5)
	sub.connect(&packet.Connect{ClientID: []byte("small"), CleanStart: true,
		Props: packet.Properties{Present: packet.PropMaximumPacketSize, MaximumPacketSize: 100}})
	subscribe(t, sub, packet.Subscription{Filter: []byte("#"), QoS: 1})
	s.Publish(&Message{Topic: "t", Payload: make([]byte, 200)})
	s.Publish(&Message{Topic: "t", QoS: 1, Payload: make([]byte, 200)})
	s.Publish(&Message{Topic: "t", Payload: []byte("fits")})
	if p := readPublish(t, sub); string(p.Payload) != "fits" {
		t.Fatalf("got %d bytes", len(p.Payload))
	}
	if n := s.Stats().Dropped["too_large"]; n != 2 {
		t.Errorf("too_large drops = %d, want 2", n)
	}
}

func TestRedeliveryOnReconnect(t *testing.T) {
	s, addr := startServer(t, func(c *Config) { c.MaxInflight = 2 }, Options{})
	sub := dialRaw(t, addr, packet.Version311)
	sub.connect(&packet.Connect{ClientID: []byte("r"), CleanStart: true})
	sub.nc.Close()
	sub = dialRaw(t, addr, packet.Version311)
	sub.connect(&packet.Connect{ClientID: []byte("r"), CleanStart: false})
	subscribe(t, sub, packet.Subscription{Filter: []byte("q"), QoS: 2})
	for i := 0; i < 4; i++ {
		s.Publish(&Message{Topic: "q", QoS: byte(1 + i%2), Payload: []byte(fmt.Sprint(i))})
	}
	p0, p1 := readPublish(t, sub), readPublish(t, sub)
	sub.expectNothing(50 * time.Millisecond) // window of 2
	sub.send(&packet.Ack{Kind: packet.PUBREC, PacketID: p1.PacketID})
	sub.expectAck(packet.PUBREL, p1.PacketID, 0)
	sub.nc.Close()
	waitFor(t, func() bool { return s.Stats().Connections == 0 })

	sub = dialRaw(t, addr, packet.Version311)
	if ca := sub.connect(&packet.Connect{ClientID: []byte("r"), CleanStart: false}); !ca.SessionPresent {
		t.Fatal("session not present")
	}
	r0 := readPublish(t, sub)
	if !r0.Dup || r0.PacketID != p0.PacketID || string(r0.Payload) != "0" {
		t.Fatalf("resent = %+v", r0)
	}
	sub.expectAck(packet.PUBREL, p1.PacketID, 0)
	sub.send(&packet.Ack{Kind: packet.PUBACK, PacketID: p0.PacketID})
	sub.send(&packet.Ack{Kind: packet.PUBCOMP, PacketID: p1.PacketID})
	for _, want := range []string{"2", "3"} {
		p := readPublish(t, sub)
		if string(p.Payload) != want || p.Dup {
			t.Fatalf("got %+v, want %s", p, want)
		}
	}
	// A clean session drops it all.
	sub.nc.Close()
	waitFor(t, func() bool { return s.Stats().Connections == 0 })
	sub = dialRaw(t, addr, packet.Version311)
	if ca := sub.connect(&packet.Connect{ClientID: []byte("r"), CleanStart: true}); ca.SessionPresent {
		t.Fatal("session present after clean session")
	}
	sub.expectNothing(50 * time.Millisecond)
}

func TestSessionExpiry(t *testing.T) {
	s, addr := startServer(t, nil, Options{})
	c := dialRaw(t, addr, packet.Version5)
	c.connect(&packet.Connect{ClientID: []byte("short"), CleanStart: true, Props: withExpiry(1)})
	subscribe(t, c, packet.Subscription{Filter: []byte("x")})
	c.nc.Close()
	waitFor(t, func() bool { return s.Stats().Connections == 0 })
	if st := s.Stats(); st.Sessions != 1 || st.Subscriptions != 1 {
		t.Fatalf("stats after disconnect = %+v", st)
	}
	waitFor(t, func() bool { st := s.Stats(); return st.Sessions == 0 && st.Subscriptions == 0 })

	t.Run("expiry raised on disconnect after 0 is a protocol error", func(t *testing.T) {
		c := dialRaw(t, addr, packet.Version5)
		c.connect(&packet.Connect{ClientID: []byte("zero"), CleanStart: true})
		c.send(&packet.Disconnect{Props: withExpiry(10)})
		c.expectClosed(int(packet.ProtocolError))
	})
}

func TestQueueLimits(t *testing.T) {
	s, addr := startServer(t, func(c *Config) { c.MaxQueuedMessages = 5 }, Options{})
	c := dialRaw(t, addr, packet.Version5)
	c.connect(&packet.Connect{ClientID: []byte("offline"), CleanStart: true, Props: withExpiry(60)})
	subscribe(t, c, packet.Subscription{Filter: []byte("q"), QoS: 1})
	c.nc.Close()
	waitFor(t, func() bool { return s.Stats().Connections == 0 })
	for i := 0; i < 8; i++ {
		s.Publish(&Message{Topic: "q", QoS: 1, Payload: []byte(fmt.Sprint(i))})
		s.Publish(&Message{Topic: "q", QoS: 0, Payload: []byte("qos0")})
	}
	st := s.Stats()
	if st.Dropped["queue_full"] != 3 || st.Dropped["offline"] != 8 {
		t.Fatalf("dropped = %v", st.Dropped)
	}
	c = dialRaw(t, addr, packet.Version5)
	c.connect(&packet.Connect{ClientID: []byte("offline"), Props: withExpiry(60)})
	for i := 0; i < 5; i++ {
		if p := readPublish(t, c); string(p.Payload) != fmt.Sprint(i) {
			t.Fatalf("got %q, want %d", p.Payload, i)
		}
	}
}

// The client's Receive Maximum limits the outbound QoS 1/2 window.
func TestClientReceiveMaximum(t *testing.T) {
	s, addr := startServer(t, nil, Options{})
	c := dialRaw(t, addr, packet.Version5)
	c.connect(&packet.Connect{ClientID: []byte("rm1"), CleanStart: true,
		Props: packet.Properties{Present: packet.PropReceiveMaximum, ReceiveMaximum: 1}})
	subscribe(t, c, packet.Subscription{Filter: []byte("w"), QoS: 1})
	for i := 0; i < 3; i++ {
		s.Publish(&Message{Topic: "w", QoS: 1, Payload: []byte(fmt.Sprint(i))})
	}
	for i := 0; i < 3; i++ {
		p := readPublish(t, c)
		if string(p.Payload) != fmt.Sprint(i) {
			t.Fatalf("got %q, want %d", p.Payload, i)
		}
		c.expectNothing(50 * time.Millisecond)
		c.send(&packet.Ack{Kind: packet.PUBACK, PacketID: p.PacketID})
	}
}
