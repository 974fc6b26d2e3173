package conformance

import (
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluicehq/sluice/broker/packet"
	"github.com/sluicehq/sluice/internal/mqtttest"
)

func TestSession(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tg *target) {
		persistent := func(o *mqtt.ClientOptions) { o.SetCleanSession(false) }

		tg.run(t, "MQTT-3.2.2-1 MQTT-3.2.2-2 MQTT-3.2.2-3 (3.1.1) session present reflects stored session state", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			id := uniq("sp")
			_, a := rawSession(t, s, packet.Version311, id, false)
			if a.SessionPresent {
				t.Fatal("first connect with clean session 0: session present 1, want 0")
			}
			_, a = rawSession(t, s, packet.Version311, id, false)
			if !a.SessionPresent {
				t.Fatal("reconnect with clean session 0: session present 0, want 1")
			}
			_, a = rawSession(t, s, packet.Version311, id, true)
			if a.SessionPresent {
				t.Fatal("connect with clean session 1: session present 1, want 0")
			}
		})

		tg.run(t, "MQTT-3.2.2-2 MQTT-3.2.2-3 (5.0) session present reflects stored session state", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			id := uniq("sp")
			_, a := rawSession(t, s, packet.Version5, id, false)
			if a.SessionPresent {
				t.Fatal("first connect with clean start 0: session present 1, want 0")
			}
			_, a = rawSession(t, s, packet.Version5, id, false)
			if !a.SessionPresent {
				t.Fatal("reconnect with clean start 0 and expiry 60: session present 0, want 1")
			}
			_, a = rawSession(t, s, packet.Version5, id, true)
			if a.SessionPresent {
				t.Fatal("connect with clean start 1: session present 1, want 0")
			}
		})

		tg.run(t, "MQTT-3.1.2-4 MQTT-3.1.2-5 (3.1.1) a persistent session keeps subscriptions and queues QoS 1 and 2", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			id := uniq("p")
			c := newV3(t, s, id, persistent)
			c.sub(t, "ps/+", 2)
			c.Disconnect(100)
			pub := newV3(t, s, uniq("pub"), nil)
			pub.pub(t, "ps/1", 1, false, "one")
			pub.pub(t, "ps/2", 2, false, "two")
			c = newV3(t, s, id, persistent)
			got := c.in.collect(2, wait)
			if len(got) != 2 || got[0].Payload != "one" || got[1].Payload != "two" {
				t.Fatalf("after reconnect got %+v, want one and two in order", got)
			}
		})

		tg.run(t, "MQTT-3.1.2-6 (3.1.1) clean session discards the previous session", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			id := uniq("p")
			c := newV3(t, s, id, persistent)
			c.sub(t, "cs/x", 1)
			c.Disconnect(100)
			c = newV3(t, s, id, nil) // clean session
			c.Disconnect(100)
			c = newV3(t, s, id, persistent)
			pub := newV3(t, s, uniq("pub"), nil)
			pub.pub(t, "cs/x", 1, false, "x")
			c.in.none(t, quiet)
		})

		tg.run(t, "MQTT-3.1.2-4 (5.0) clean start discards the previous session", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			id := uniq("p")
			c := newV5(t, s, &paho.Connect{ClientID: id, Properties: &paho.ConnectProperties{SessionExpiryInterval: u32(60)}})
			c.sub(t, nil, paho.SubscribeOptions{Topic: "cs5/x", QoS: 1})
			_ = c.Disconnect(&paho.Disconnect{})
			c = newV5(t, s, &paho.Connect{ClientID: id, CleanStart: true, Properties: &paho.ConnectProperties{SessionExpiryInterval: u32(60)}})
			if c.ack.SessionPresent {
				t.Fatal("clean start 1: session present 1")
			}
			pub := newV3(t, s, uniq("pub"), nil)
			pub.pub(t, "cs5/x", 1, false, "x")
			c.in.none(t, quiet)
		})

		tg.run(t, "MQTT-3.1.2-5 MQTT-3.1.2-23 (5.0) a session with expiry survives the disconnect and queues messages", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			id := uniq("p")
			c := newV5(t, s, &paho.Connect{ClientID: id, CleanStart: true, Properties: &paho.ConnectProperties{SessionExpiryInterval: u32(60)}})
			c.sub(t, nil, paho.SubscribeOptions{Topic: "se/x", QoS: 2})
			_ = c.Disconnect(&paho.Disconnect{})
			pub := newV5(t, s, &paho.Connect{ClientID: uniq("pub"), CleanStart: true})
			pub.pub(t, &paho.Publish{Topic: "se/x", QoS: 1, Payload: []byte("q1")})
			pub.pub(t, &paho.Publish{Topic: "se/x", QoS: 2, Payload: []byte("q2")})
			c = newV5(t, s, &paho.Connect{ClientID: id, Properties: &paho.ConnectProperties{SessionExpiryInterval: u32(60)}})
			if !c.ack.SessionPresent {
				t.Fatal("session present 0 for a session with expiry 60")
			}
			got := c.in.collect(2, wait)
			if len(got) != 2 || got[0].Payload != "q1" || got[1].Payload != "q2" {
				t.Fatalf("got %+v, want q1 and q2", got)
			}
		})

		tg.run(t, "MQTT-4.1.0-2 (5.0) the session is discarded once its expiry interval passes", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			id := uniq("p")
			c := newV5(t, s, &paho.Connect{ClientID: id, CleanStart: true, Properties: &paho.ConnectProperties{SessionExpiryInterval: u32(1)}})
			c.sub(t, nil, paho.SubscribeOptions{Topic: "ex/x", QoS: 1})
			_ = c.Disconnect(&paho.Disconnect{})
			sleep(2200 * time.Millisecond)
			_, a := rawSession(t, s, packet.Version5, id, false)
			if a.SessionPresent {
				t.Fatal("session with expiry 1 s still present after 2.2 s")
			}
		})

		tg.run(t, "§3.1.2.11.2 (5.0) without a session expiry interval the session ends with the connection", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			id := uniq("p")
			c := newV5(t, s, &paho.Connect{ClientID: id, CleanStart: true})
			c.sub(t, nil, paho.SubscribeOptions{Topic: "nx/x", QoS: 1})
			_ = c.Disconnect(&paho.Disconnect{})
			sleep(100 * time.Millisecond)
			if _, a := rawSession(t, s, packet.Version5, id, false); a.SessionPresent {
				t.Fatal("session present 1 although the previous connection had no session expiry")
			}
		})

		tg.run(t, "§3.14.2.2.2 (5.0) DISCONNECT can set the session expiry to 0", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			id := uniq("p")
			c, _ := rawSession(t, s, packet.Version5, id, false)
			d := &packet.Disconnect{}
			d.Props.Set(packet.PropSessionExpiry)
			c.Send(d)
			c.ExpectClosed(wait)
			if _, a := rawSession(t, s, packet.Version5, id, false); a.SessionPresent {
				t.Fatal("session present 1 after DISCONNECT set its expiry to 0")
			}
		})

		tg.run(t, "§3.14.2.2.2 (5.0) DISCONNECT with a session expiry after CONNECT had none is a protocol error", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := dialRaw(t, s, packet.Version5, uniq("p"))
			d := &packet.Disconnect{}
			d.Props.SessionExpiry = 30
			d.Props.Set(packet.PropSessionExpiry)
			c.Send(d)
			expectDisconnect(t, c, packet.ProtocolError)
		})

		tg.run(t, "MQTT-3.1.4-2 (3.1.1) a second connection with the same client id closes the first", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			id := uniq("dup")
			first := dialRaw(t, s, packet.Version311, id)
			second := dialRaw(t, s, packet.Version311, id)
			if got := first.ExpectClosed(wait); len(got) != 0 {
				t.Fatalf("first connection received %s before the close", mqtttest.DescribeAll(got))
			}
			second.Send(&packet.Pingreq{})
			mqtttest.ExpectType[*packet.Pingresp](second, wait)
		})

		tg.run(t, "MQTT-3.1.4-3 (5.0) session takeover sends DISCONNECT 0x8E to the existing connection", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			id := uniq("dup")
			first := dialRaw(t, s, packet.Version5, id)
			second := dialRaw(t, s, packet.Version5, id)
			expectDisconnect(t, first, packet.SessionTakenOver)
			second.Send(&packet.Pingreq{})
			mqtttest.ExpectType[*packet.Pingresp](second, wait)
		})

		tg.run(t, "MQTT-3.1.4-3 MQTT-3.1.2-5 (5.0) takeover with clean start 0 continues the session", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			id := uniq("dup")
			first, _ := rawSession(t, s, packet.Version5, id, false)
			rawSub(t, first, 1, "to/x", 1)
			second, a := rawSession(t, s, packet.Version5, id, false)
			if !a.SessionPresent {
				t.Fatal("takeover with clean start 0: session present 0")
			}
			first.ExpectClosed(wait)
			pub := newV3(t, s, uniq("pub"), nil)
			pub.pub(t, "to/x", 1, false, "x")
			p := expectPublish(t, second, "to/x", "x")
			second.Send(ack(packet.PUBACK, p.PacketID))
		})
	})
}
