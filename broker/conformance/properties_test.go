package conformance

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/sluicehq/sluice/broker/packet"
	"github.com/sluicehq/sluice/internal/mqtttest"
)

// MQTT 5 application message properties, subscription identifiers and
// shared subscriptions.
func TestProperties(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tg *target) {
		tg.run(t, "MQTT-3.3.2-4 MQTT-3.3.2-15 MQTT-3.3.2-16 MQTT-3.3.2-17 MQTT-3.3.2-18 MQTT-3.3.2-20 (5.0) publish properties are forwarded unaltered", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			sub := newV5(t, s, &paho.Connect{ClientID: uniq("sub"), CleanStart: true})
			sub.sub(t, nil, paho.SubscribeOptions{Topic: "pp/#", QoS: 1})
			pub := newV5(t, s, &paho.Connect{ClientID: uniq("pub"), CleanStart: true})
			user := paho.UserProperties{{Key: "k", Value: "1"}, {Key: "a", Value: "2"}, {Key: "k", Value: "3"}, {Key: "ü", Value: ""}}
			for qos := byte(0); qos <= 2; qos++ {
				pub.pub(t, &paho.Publish{Topic: "pp/x", QoS: qos, Payload: []byte(`{"v":1}`), Properties: &paho.PublishProperties{
					PayloadFormat: b8(1), ContentType: "application/json", ResponseTopic: "pp/reply/" + itoa(int(qos)),
					CorrelationData: []byte{0, 0xFF, byte(qos)}, User: user,
				}})
				m := sub.in.next(t)
				p := m.Props
				if p == nil {
					t.Fatalf("QoS %d: message arrived without properties", qos)
				}
				if p.PayloadFormat == nil || *p.PayloadFormat != 1 {
					t.Errorf("QoS %d: payload format indicator %v, want 1", qos, p.PayloadFormat)
				}
				if p.ContentType != "application/json" || p.ResponseTopic != "pp/reply/"+itoa(int(qos)) || string(p.CorrelationData) != string([]byte{0, 0xFF, qos}) {
					t.Errorf("QoS %d: content type %q response topic %q correlation % x", qos, p.ContentType, p.ResponseTopic, p.CorrelationData)
				}
				if !slices.Equal(p.User, user) {
					t.Errorf("QoS %d: user properties %v, want %v in order", qos, p.User, user)
				}
			}
		})

		tg.run(t, "MQTT-3.3.2-17 (5.0) mosquitto_pub user properties and content type reach a paho subscriber", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			sub := newV5(t, s, &paho.Connect{ClientID: uniq("sub"), CleanStart: true})
			sub.sub(t, nil, paho.SubscribeOptions{Topic: "mp/x", QoS: 2})
			mosquittoPub(t, s, "-V", "mqttv5", "-q", "2", "-t", "mp/x", "-m", "hello",
				"-D", "publish", "user-property", "site", "north",
				"-D", "publish", "content-type", "text/plain")
			m := sub.in.next(t)
			if m.Payload != "hello" || m.QoS != 2 || m.Props == nil || m.Props.ContentType != "text/plain" ||
				!slices.Equal(m.Props.User, paho.UserProperties{{Key: "site", Value: "north"}}) {
				t.Fatalf("got %+v props %+v", m, m.Props)
			}
		})

		tg.run(t, "MQTT-3.3.2-6 (5.0) the forwarded message expiry is reduced by the time the message waited", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			id := uniq("sub")
			c, _ := rawSession(t, s, packet.Version5, id, false)
			rawSub(t, c, 1, "mx/x", 1)
			rawDisconnect(t, c)
			pub := newV5(t, s, &paho.Connect{ClientID: uniq("pub"), CleanStart: true})
			pub.pub(t, &paho.Publish{Topic: "mx/x", QoS: 1, Payload: []byte("x"), Properties: &paho.PublishProperties{MessageExpiry: u32(60)}})
			sleep(1100 * time.Millisecond)
			c, _ = rawSession(t, s, packet.Version5, id, false)
			p := expectPublish(t, c, "mx/x", "x")
			if !p.Props.Has(packet.PropMessageExpiry) || p.Props.MessageExpiry >= 60 || p.Props.MessageExpiry < 57 {
				t.Fatalf("message expiry %d (present=%v) after waiting 1.1 s, want 57..59", p.Props.MessageExpiry, p.Props.Has(packet.PropMessageExpiry))
			}
		})

		tg.run(t, "MQTT-3.3.2-5 (5.0) a message that expires while queued is not delivered", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			id := uniq("sub")
			c, _ := rawSession(t, s, packet.Version5, id, false)
			rawSub(t, c, 1, "mq/x", 1)
			rawDisconnect(t, c)
			pub := newV5(t, s, &paho.Connect{ClientID: uniq("pub"), CleanStart: true})
			pub.pub(t, &paho.Publish{Topic: "mq/x", QoS: 1, Payload: []byte("short"), Properties: &paho.PublishProperties{MessageExpiry: u32(1)}})
			pub.pub(t, &paho.Publish{Topic: "mq/x", QoS: 1, Payload: []byte("keep")})
			sleep(2100 * time.Millisecond)
			c, _ = rawSession(t, s, packet.Version5, id, false)
			p := expectPublish(t, c, "mq/x", "keep")
			if p.Props.Has(packet.PropMessageExpiry) {
				t.Errorf("message published without expiry was forwarded with expiry %d", p.Props.MessageExpiry)
			}
			c.Send(ack(packet.PUBACK, p.PacketID))
			c.ExpectNothing(quiet)
		})

		tg.run(t, "MQTT-3.3.4-3 MQTT-3.3.4-4 MQTT-3.3.4-5 (5.0) subscription identifiers are sent with matching messages", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := dialRaw(t, s, packet.Version5, uniq("sub"))
			rawSubOpts(t, c, 1, packet.Subscription{Filter: []byte("si/+")}, &packet.Properties{SubscriptionIDs: []uint32{5}})
			rawSubOpts(t, c, 2, packet.Subscription{Filter: []byte("si/#")}, &packet.Properties{SubscriptionIDs: []uint32{300000}})
			rawSub(t, c, 3, "si/a/b", 0) // no identifier
			pub := newV3(t, s, uniq("pub"), nil)
			pub.pub(t, "si/a", 0, false, "a")
			var ids []uint32
			for _, p := range readPublishes(t, c, 2*quiet) {
				ids = append(ids, p.Props.SubscriptionIDs...)
			}
			slices.Sort(ids)
			if !slices.Equal(ids, []uint32{5, 300000}) {
				t.Fatalf("subscription identifiers %v across the copies, want 5 and 300000", ids)
			}
			pub.pub(t, "si/a/b", 0, false, "ab")
			var got []uint32
			for _, p := range readPublishes(t, c, 2*quiet) {
				got = append(got, p.Props.SubscriptionIDs...)
			}
			if !slices.Equal(got, []uint32{300000}) {
				t.Fatalf("si/a/b: subscription identifiers %v, want only 300000", got)
			}
		})

		tg.run(t, "MQTT-3.3.4-6 (5.0) a PUBLISH from a client carrying a subscription identifier closes the connection", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := dialRaw(t, s, packet.Version5, uniq("c"))
			// PUBLISH "a" QoS 0 with property 0x0B (subscription identifier) = 1.
			c.SendRaw(frame(0x30, str("a"), []byte{2, 0x0B, 1}, []byte("x")))
			expectRefused(t, c, packet.ProtocolError, packet.MalformedPacket)
		})

		tg.run(t, "§3.8.2.1.2 (5.0) subscription identifier 0 closes the connection", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := dialRaw(t, s, packet.Version5, uniq("c"))
			c.SendRaw(frame(0x82, u16b(1), []byte{2, 0x0B, 0}, str("a"), []byte{0}))
			expectRefused(t, c, packet.ProtocolError, packet.MalformedPacket)
		})

		tg.run(t, "MQTT-4.8.2-1 MQTT-4.8.2-2 (5.0) a shared subscription load-balances messages across its group", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			members := []*v5Client{
				newV5(t, s, &paho.Connect{ClientID: uniq("m"), CleanStart: true}),
				newV5(t, s, &paho.Connect{ClientID: uniq("m"), CleanStart: true}),
			}
			for _, m := range members {
				m.sub(t, nil, paho.SubscribeOptions{Topic: "$share/grp/sh/+", QoS: 1})
			}
			plain := newV5(t, s, &paho.Connect{ClientID: uniq("plain"), CleanStart: true})
			plain.sub(t, nil, paho.SubscribeOptions{Topic: "sh/+", QoS: 1})
			other := newV5(t, s, &paho.Connect{ClientID: uniq("other"), CleanStart: true})
			other.sub(t, nil, paho.SubscribeOptions{Topic: "$share/other/sh/#", QoS: 1})
			pub := newV5(t, s, &paho.Connect{ClientID: uniq("pub"), CleanStart: true})
			const n = 40
			for i := 0; i < n; i++ {
				pub.pub(t, &paho.Publish{Topic: "sh/x", QoS: 1, Payload: []byte(itoa(i))})
			}
			seen := map[string]int{}
			var counts []int
			for _, m := range members {
				got := m.in.collect(n, quiet*3)
				counts = append(counts, len(got))
				for _, g := range got {
					seen[g.Payload]++
				}
			}
			if len(seen) != n || counts[0]+counts[1] != n {
				t.Fatalf("group got %d distinct of %d messages (%v per member), want each exactly once", len(seen), n, counts)
			}
			for i, c := range counts {
				if c < n/4 {
					t.Errorf("member %d got %d of %d messages (%v): not load-balanced", i, c, n, counts)
				}
			}
			if got := len(plain.in.collect(n, wait)); got != n {
				t.Errorf("non-shared subscriber got %d of %d", got, n)
			}
			if got := len(other.in.collect(n, wait)); got != n {
				t.Errorf("second share group got %d of %d, want every message", got, n)
			}
		})

		tg.run(t, "MQTT-4.8.2-3 (5.0) a shared group keeps delivering after a member leaves", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			a := newV5(t, s, &paho.Connect{ClientID: uniq("a"), CleanStart: true})
			a.sub(t, nil, paho.SubscribeOptions{Topic: "$share/g/sl/x", QoS: 1})
			b := dialRaw(t, s, packet.Version5, uniq("b"))
			rawSub(t, b, 1, "$share/g/sl/x", 1)
			rawDisconnect(t, b)
			// The close can reach us just before the broker has dropped
			// b from the group; what it does with messages routed to a
			// session that is ending is not what this case checks.
			sleep(100 * time.Millisecond)
			pub := newV3(t, s, uniq("pub"), nil)
			for i := 0; i < 10; i++ {
				pub.pub(t, "sl/x", 1, false, itoa(i))
			}
			got := a.in.collect(10, wait)
			if len(got) != 10 {
				t.Fatalf("remaining member got %d of 10 messages", len(got))
			}
			for _, m := range got {
				if m.QoS != 1 {
					t.Fatalf("shared delivery at QoS %d, want the granted QoS 1", m.QoS)
				}
			}
		})

		for _, bad := range []string{"$share/g", "$share//x", "$share/a+b/x", "$share/a#/x"} {
			tg.run(t, "MQTT-4.8.2-1 MQTT-4.8.2-2 (5.0) invalid shared filter "+bad+" is refused", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				c := dialRaw(t, s, packet.Version5, uniq("c"))
				c.SendRaw(subscribeBytes(packet.Version5, 4, bad, 1))
				expectSubRefused(t, c, 4)
			})
		}

		tg.run(t, "MQTT-3.8.3-4 (5.0) no local on a shared subscription closes the connection", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := dialRaw(t, s, packet.Version5, uniq("c"))
			c.SendRaw(subscribeBytes(packet.Version5, 1, "$share/g/x", 0x04|1))
			expectRefused(t, c, packet.ProtocolError)
		})

		tg.run(t, "MQTT-3.3.2-14 (5.0) a response topic with wildcards closes the connection", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := dialRaw(t, s, packet.Version5, uniq("c"))
			p := &packet.Publish{Topic: []byte("a"), Payload: []byte("x")}
			p.Props.ResponseTopic = []byte("reply/#")
			c.Send(p)
			expectRefused(t, c)
		})

		tg.run(t, "MQTT-3.1.2-28 §3.2.2.3 (5.0) CONNACK advertises the configured limits and no response information", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{MaxPacketSize: 4096, ReceiveMaximum: 7, TopicAliasMaximum: 5})
			c := mqtttest.Dial(t, s.addr, packet.Version5)
			a := c.Connect(&packet.Connect{ClientID: []byte(uniq("c")), CleanStart: true, KeepAlive: 30})
			var problems []string
			if !a.Props.Has(packet.PropMaximumPacketSize) || a.Props.MaximumPacketSize != 4096 {
				problems = append(problems, fmt.Sprintf("maximum packet size %d (present=%v), want 4096", a.Props.MaximumPacketSize, a.Props.Has(packet.PropMaximumPacketSize)))
			}
			if !a.Props.Has(packet.PropReceiveMaximum) || a.Props.ReceiveMaximum != 7 {
				problems = append(problems, fmt.Sprintf("receive maximum %d (present=%v), want 7", a.Props.ReceiveMaximum, a.Props.Has(packet.PropReceiveMaximum)))
			}
			if !a.Props.Has(packet.PropTopicAliasMaximum) || a.Props.TopicAliasMaximum != 5 {
				problems = append(problems, fmt.Sprintf("topic alias maximum %d (present=%v), want 5", a.Props.TopicAliasMaximum, a.Props.Has(packet.PropTopicAliasMaximum)))
			}
			if a.Props.ResponseInfo != nil {
				problems = append(problems, "response information sent although not requested")
			}
			for _, p := range problems {
				t.Error("CONNACK " + p)
			}
		})
	})
}
