package conformance

import (
	"bytes"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/packet"
	"github.com/sluicehq/sluice/internal/mqtttest"
)

// Flow control and limits: receive maximum, topic aliases, maximum packet
// size, authentication and server-initiated DISCONNECT.
func TestFlow(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tg *target) {
		tg.run(t, "MQTT-3.3.4-7 §3.3.4 (5.0) exceeding the server's receive maximum gets DISCONNECT 0x93", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{ReceiveMaximum: 3})
			c := mqtttest.Dial(t, s.addr, packet.Version5)
			a := c.Connect(&packet.Connect{ClientID: []byte(uniq("c")), CleanStart: true, KeepAlive: 30})
			if a.Props.ReceiveMaximum != 3 {
				t.Fatalf("CONNACK receive maximum %d, want 3", a.Props.ReceiveMaximum)
			}
			// QoS 2 without PUBREL stays unacknowledged (no PUBCOMP).
			for id := uint16(1); id <= 3; id++ {
				rawPub(c, "rm/x", 2, id, "x")
				expectAck(t, c, packet.PUBREC, id)
			}
			rawPub(c, "rm/x", 2, 4, "x")
			expectDisconnect(t, c, packet.ReceiveMaximumExceeded)
		})

		tg.run(t, "MQTT-3.3.4-9 MQTT-4.9.0-2 MQTT-3.3.4-10 MQTT-4.9.0-3 (5.0) the server honours the client's receive maximum", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := mqtttest.Dial(t, s.addr, packet.Version5)
			cp := &packet.Connect{ClientID: []byte(uniq("c")), CleanStart: true, KeepAlive: 30}
			cp.Props.ReceiveMaximum = 2
			cp.Props.Set(packet.PropReceiveMaximum)
			c.Connect(cp)
			rawSub(t, c, 1, "rx/x", 1)
			pub := newV3(t, s, uniq("pub"), nil)
			for i := 0; i < 5; i++ {
				pub.pub(t, "rx/x", 1, false, itoa(i))
			}
			first := readPublishes(t, c, quiet)
			if len(first) != 2 {
				t.Fatalf("received %d unacknowledged QoS 1 messages, want the receive maximum 2", len(first))
			}
			// Quota exhausted: other packets are still answered.
			c.Send(&packet.Pingreq{})
			mqtttest.ExpectType[*packet.Pingresp](c, wait)
			c.Send(&packet.Subscribe{PacketID: 2, Subs: []packet.Subscription{{Filter: []byte("rx/other"), QoS: 1}}})
			mqtttest.ExpectType[*packet.Suback](c, wait)
			got := len(first)
			for _, p := range first {
				c.Send(ack(packet.PUBACK, p.PacketID))
			}
			for got < 5 {
				more := readPublishes(t, c, quiet)
				if len(more) == 0 || len(more) > 2 {
					t.Fatalf("after acknowledging, got %d more (total %d of 5); the window is 2", len(more), got)
				}
				for _, p := range more {
					c.Send(ack(packet.PUBACK, p.PacketID))
				}
				got += len(more)
			}
		})

		tg.run(t, "MQTT-3.3.2-12 (5.0) the server accepts topic aliases up to its maximum and re-mapping", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{TopicAliasMaximum: 4})
			sub := dialRaw(t, s, packet.Version5, uniq("sub"))
			rawSub(t, sub, 1, "ta/+", 0)
			c := mqtttest.Dial(t, s.addr, packet.Version5)
			a := c.Connect(&packet.Connect{ClientID: []byte(uniq("c")), CleanStart: true, KeepAlive: 30})
			if a.Props.TopicAliasMaximum != 4 {
				t.Fatalf("CONNACK topic alias maximum %d, want 4", a.Props.TopicAliasMaximum)
			}
			send := func(topic string, alias uint16, payload string) {
				p := &packet.Publish{Topic: []byte(topic), Payload: []byte(payload)}
				p.Props.TopicAlias = alias
				p.Props.Set(packet.PropTopicAlias)
				c.Send(p)
			}
			send("ta/x", 4, "set")
			send("", 4, "use")
			send("ta/y", 4, "remap")
			send("", 4, "use-y")
			send("ta/z", 1, "other")
			send("", 4, "still-y")
			for _, w := range [][2]string{{"ta/x", "set"}, {"ta/x", "use"}, {"ta/y", "remap"}, {"ta/y", "use-y"}, {"ta/z", "other"}, {"ta/y", "still-y"}} {
				expectPublish(t, sub, w[0], w[1])
			}
		})

		aliasErrors := []struct {
			name  string
			alias uint16
			topic string
			codes []packet.ReasonCode
		}{
			{"MQTT-3.2.2-17 (5.0) a topic alias above the maximum gets DISCONNECT 0x94", 5, "ta/x", []packet.ReasonCode{packet.TopicAliasInvalid}},
			{"MQTT-3.3.2-8 (5.0) topic alias 0 gets DISCONNECT 0x94", 0, "ta/x", []packet.ReasonCode{packet.TopicAliasInvalid, packet.ProtocolError}},
			{"§3.3.2.3.4 (5.0) an empty topic with an unknown alias gets DISCONNECT 0x82", 2, "", []packet.ReasonCode{packet.ProtocolError}},
		}
		for _, ae := range aliasErrors {
			tg.run(t, ae.name, func(t *testing.T, tg *target) {
				s := tg.start(t, opts{TopicAliasMaximum: 4})
				c := dialRaw(t, s, packet.Version5, uniq("c"))
				p := &packet.Publish{Topic: []byte(ae.topic), Payload: []byte("x")}
				p.Props.TopicAlias = ae.alias
				p.Props.Set(packet.PropTopicAlias)
				c.Send(p)
				expectDisconnect(t, c, ae.codes...)
			})
		}

		tg.run(t, "MQTT-3.3.2-7 (5.0) topic aliases do not carry over to a new connection", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{TopicAliasMaximum: 4})
			id := uniq("c")
			c, _ := rawSession(t, s, packet.Version5, id, false)
			p := &packet.Publish{Topic: []byte("tc/x"), Payload: []byte("x")}
			p.Props.TopicAlias = 1
			p.Props.Set(packet.PropTopicAlias)
			c.Send(p)
			rawDisconnect(t, c)
			c, _ = rawSession(t, s, packet.Version5, id, false)
			p.Topic = nil
			c.Send(p)
			expectDisconnect(t, c, packet.ProtocolError, packet.TopicAliasInvalid)
		})

		tg.run(t, "MQTT-3.1.2-27 (5.0) no topic aliases are sent to a client that allows none", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			sub := dialRaw(t, s, packet.Version5, uniq("sub"))
			rawSub(t, sub, 1, "na/#", 0)
			pub := newV3(t, s, uniq("pub"), nil)
			for i := 0; i < 5; i++ {
				pub.pub(t, "na/long/topic/name", 0, false, itoa(i))
			}
			for i := 0; i < 5; i++ {
				p := expectPublish(t, sub, "na/long/topic/name", itoa(i))
				if p.Props.Has(packet.PropTopicAlias) {
					t.Fatalf("PUBLISH carries topic alias %d although the client's maximum is 0", p.Props.TopicAlias)
				}
			}
		})

		tg.run(t, "MQTT-3.1.2-26 MQTT-3.3.2-11 (5.0) outbound topic aliases stay within the client's maximum and resolve", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			sub := mqtttest.Dial(t, s.addr, packet.Version5)
			cp := &packet.Connect{ClientID: []byte(uniq("sub")), CleanStart: true, KeepAlive: 30}
			cp.Props.TopicAliasMaximum = 2
			cp.Props.Set(packet.PropTopicAliasMaximum)
			sub.Connect(cp)
			rawSub(t, sub, 1, "oa/#", 0)
			pub := newV3(t, s, uniq("pub"), nil)
			topics := []string{"oa/a", "oa/b", "oa/c", "oa/a", "oa/a", "oa/b", "oa/c", "oa/c"}
			for i, topic := range topics {
				pub.pub(t, topic, 0, false, itoa(i))
			}
			aliases := map[uint16]string{}
			used := 0
			for i, want := range topics {
				p := mqtttest.ExpectType[*packet.Publish](sub, wait)
				topic := string(p.Topic)
				if p.Props.Has(packet.PropTopicAlias) {
					used++
					a := p.Props.TopicAlias
					if a == 0 || a > 2 {
						t.Fatalf("message %d uses topic alias %d, outside 1..2", i, a)
					}
					if topic == "" {
						topic = aliases[a]
						if topic == "" {
							t.Fatalf("message %d uses alias %d before defining it", i, a)
						}
					} else {
						aliases[a] = topic
					}
				}
				if topic != want || string(p.Payload) != itoa(i) {
					t.Fatalf("message %d resolved to topic %q payload %q, want %q %q", i, topic, p.Payload, want, itoa(i))
				}
			}
			t.Logf("broker used topic aliases on %d of %d messages", used, len(topics))
		})

		tg.run(t, "MQTT-3.2.2-15 (5.0) a packet over the server's maximum packet size gets DISCONNECT 0x95", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{MaxPacketSize: 1024})
			c := dialRaw(t, s, packet.Version5, uniq("c"))
			rawPub(c, "big/x", 0, 0, string(bytes.Repeat([]byte("x"), 2000)))
			expectDisconnect(t, c, packet.PacketTooLarge)
		})

		tg.run(t, "MQTT-4.8.0-1 (3.1.1) a packet over the server's maximum packet size closes the connection", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{MaxPacketSize: 1024})
			c := dialRaw(t, s, packet.Version311, uniq("c"))
			rawPub(c, "big/x", 0, 0, string(bytes.Repeat([]byte("x"), 2000)))
			expectRefused(t, c)
		})

		tg.run(t, "MQTT-3.2.2-15 (5.0) an oversized remaining length is refused before its body arrives", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{MaxPacketSize: 1024})
			c := dialRaw(t, s, packet.Version5, uniq("c"))
			// Header announcing a 100 MB PUBLISH, then silence.
			c.SendRaw(append([]byte{0x30}, vbi(100<<20)...))
			expectRefused(t, c, packet.PacketTooLarge)
		})

		tg.run(t, "MQTT-3.1.2-24 MQTT-3.1.2-25 (5.0) messages over the client's maximum packet size are skipped", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			sub := mqtttest.Dial(t, s.addr, packet.Version5)
			cp := &packet.Connect{ClientID: []byte(uniq("sub")), CleanStart: true, KeepAlive: 30}
			cp.Props.MaximumPacketSize = 100
			cp.Props.Set(packet.PropMaximumPacketSize)
			sub.Connect(cp)
			rawSub(t, sub, 1, "mp/x", 1)
			pub := newV3(t, s, uniq("pub"), nil)
			pub.pub(t, "mp/x", 1, false, string(bytes.Repeat([]byte("x"), 200)))
			pub.pub(t, "mp/x", 1, false, "small")
			p := expectPublish(t, sub, "mp/x", "small")
			sub.Send(ack(packet.PUBACK, p.PacketID))
			sub.ExpectNothing(quiet)
		})

		tg.run(t, "MQTT-4.12.0-1 (5.0) an unsupported authentication method gets CONNACK 0x8C or 0x87 and close", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := mqtttest.Dial(t, s.addr, packet.Version5)
			cp := &packet.Connect{ProtocolName: []byte("MQTT"), Version: 5, ClientID: []byte(uniq("c")), CleanStart: true, KeepAlive: 30}
			cp.Props.AuthMethod = []byte("X-UNKNOWN-SASL")
			c.Send(cp)
			a := mqtttest.ExpectType[*packet.Connack](c, wait)
			if a.ReasonCode != packet.BadAuthenticationMethod && a.ReasonCode != packet.NotAuthorized {
				t.Fatalf("CONNACK reason 0x%02x, want 0x8c or 0x87", byte(a.ReasonCode))
			}
			if a.SessionPresent {
				t.Error("refusing CONNACK has session present 1 (MQTT-3.2.2-6)")
			}
			c.ExpectClosed(wait)
		})

		tg.run(t, "MQTT-3.1.4-6 (5.0) packets after a refused CONNECT are not processed", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			w := newV3(t, s, uniq("w"), nil)
			w.sub(t, "after/#", 0)
			c := mqtttest.Dial(t, s.addr, packet.Version5)
			cp := &packet.Connect{ProtocolName: []byte("MQTT"), Version: 5, ClientID: []byte(uniq("c")), CleanStart: true, KeepAlive: 30}
			cp.Props.AuthMethod = []byte("X-UNKNOWN-SASL")
			b, _ := packet.Append(nil, cp, 5)
			b, _ = packet.Append(b, &packet.Publish{Topic: []byte("after/refused"), Payload: []byte("x")}, 5)
			c.SendRaw(b)
			c.ExpectClosed(wait)
			w.in.none(t, quiet)
		})

		tg.run(t, "MQTT-4.12.0-7 (5.0) AUTH without an authentication method closes the connection", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := dialRaw(t, s, packet.Version5, uniq("c"))
			c.SendRaw(frame(0xF0, []byte{0x19, 0})) // AUTH re-authenticate, no properties
			expectRefused(t, c, packet.ProtocolError)
		})

		tg.run(t, "MQTT-3.14.0-1 §4.13 (5.0) server shutdown sends DISCONNECT 0x8B", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := dialRaw(t, s, packet.Version5, uniq("c"))
			done := make(chan struct{})
			go func() {
				defer close(done)
				time.Sleep(50 * time.Millisecond)
				s.shutdown(t)
			}()
			expectDisconnect(t, c, packet.ServerShuttingDown)
			<-done
		})
	})
}
