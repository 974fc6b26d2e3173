package conformance

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/packet"
	"github.com/sluicehq/sluice/internal/mqtttest"
)

// badPacket is an invalid packet sent after a successful CONNECT.
type badPacket struct {
	id311, id5 string // statement ids per version; "" skips that version
	name       string
	v311, v5   []byte // the packet for each version (v5 nil: same as v311)
	codes      []packet.ReasonCode
}

var (
	malformed = []packet.ReasonCode{packet.MalformedPacket}
	protoErr  = []packet.ReasonCode{packet.ProtocolError}
	badOrProt = []packet.ReasonCode{packet.MalformedPacket, packet.ProtocolError}
	topicBad  = []packet.ReasonCode{packet.TopicNameInvalid, packet.ProtocolError, packet.MalformedPacket}
)

// pub5 is a QoS 0 PUBLISH with an empty property block.
func pub5(topic string) []byte { return frame(0x30, str(topic), []byte{0}, []byte("x")) }
func pub3(topic string) []byte { return frame(0x30, str(topic), []byte("x")) }

var badPackets = []badPacket{
	{"MQTT-1.5.3-1", "MQTT-1.5.4-1", "ill-formed UTF-8 in a topic", pub3("a\xff"), pub5("a\xff"), malformed},
	{"MQTT-1.5.3-1", "MQTT-1.5.4-1", "UTF-16 surrogate in a topic", pub3("a\xed\xa0\x80"), pub5("a\xed\xa0\x80"), malformed},
	{"MQTT-1.5.3-1", "MQTT-1.5.4-1", "ill-formed UTF-8 in a filter", subscribeBytes(4, 1, "a\xc3", 0), subscribeBytes(5, 1, "a\xc3", 0), malformed},
	{"MQTT-1.5.3-2 MQTT-4.7.3-2", "MQTT-1.5.4-2 MQTT-4.7.3-2", "U+0000 in a topic", pub3("a\x00b"), pub5("a\x00b"), malformed},
	{"MQTT-3.3.2-2 MQTT-4.7.1-1", "MQTT-3.3.2-2 MQTT-4.7.0-1", "+ wildcard in a PUBLISH topic", pub3("a/+"), pub5("a/+"), topicBad},
	{"MQTT-3.3.2-2 MQTT-4.7.1-1", "MQTT-3.3.2-2 MQTT-4.7.0-1", "# wildcard in a PUBLISH topic", pub3("a/#"), pub5("a/#"), topicBad},
	{"MQTT-4.7.3-1", "§3.3.2.3.4", "empty PUBLISH topic without alias", pub3(""), pub5(""), topicBad},
	{"MQTT-3.3.1-4", "MQTT-3.3.1-4", "PUBLISH with QoS 3", frame(0x36, str("a"), u16b(1), []byte("x")), frame(0x36, str("a"), u16b(1), []byte{0}, []byte("x")), malformed},
	{"MQTT-2.3.1-1", "MQTT-2.2.1-3", "QoS 1 PUBLISH with packet id 0", frame(0x32, str("a"), u16b(0), []byte("x")), frame(0x32, str("a"), u16b(0), []byte{0}, []byte("x")), badOrProt},
	{"MQTT-2.3.1-1", "MQTT-2.2.1-3", "SUBSCRIBE with packet id 0", subscribeBytes(4, 0, "a", 0), subscribeBytes(5, 0, "a", 0), badOrProt},
	{"MQTT-2.3.1-1", "MQTT-2.2.1-3", "UNSUBSCRIBE with packet id 0", frame(0xA2, u16b(0), str("a")), frame(0xA2, u16b(0), []byte{0}, str("a")), badOrProt},
	{"MQTT-3.8.1-1 MQTT-2.2.2-2", "MQTT-3.8.1-1 MQTT-2.1.3-1", "SUBSCRIBE with fixed header flags 0000", frame(0x80, u16b(1), str("a"), []byte{0}), frame(0x80, u16b(1), []byte{0}, str("a"), []byte{0}), malformed},
	{"MQTT-3.10.1-1 MQTT-2.2.2-2", "MQTT-3.10.1-1 MQTT-2.1.3-1", "UNSUBSCRIBE with fixed header flags 0000", frame(0xA0, u16b(1), str("a")), frame(0xA0, u16b(1), []byte{0}, str("a")), malformed},
	{"MQTT-3.6.1-1 MQTT-2.2.2-2", "MQTT-3.6.1-1 MQTT-2.1.3-1", "PUBREL with fixed header flags 0000", frame(0x60, u16b(1)), nil, malformed},
	{"MQTT-2.2.2-2", "MQTT-2.1.3-1", "PINGREQ with fixed header flags 0001", frame(0xC1), nil, malformed},
	{"MQTT-3.14.1-1 MQTT-2.2.2-2", "MQTT-3.14.1-1 MQTT-2.1.3-1", "DISCONNECT with fixed header flags 0001", frame(0xE1), nil, malformed},
	{"MQTT-2.2.2-2", "MQTT-2.1.3-1", "PUBACK with fixed header flags 0010", frame(0x42, u16b(1)), nil, malformed},
	{"MQTT-4.8.0-1", "MQTT-4.13.1-1", "reserved packet type 0", frame(0x00), nil, badOrProt},
	{"MQTT-4.8.0-1", "", "AUTH in 3.1.1", frame(0xF0), nil, nil},
	{"MQTT-4.8.0-1", "MQTT-4.13.1-1", "PINGREQ with a body", frame(0xC0, []byte{0}), nil, malformed},
	{"MQTT-4.8.0-1", "MQTT-1.5.5-1", "remaining length over four bytes", []byte{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, nil, malformed},
	{"MQTT-4.8.0-1", "MQTT-4.13.1-1", "topic length beyond the packet end", frame(0x30, u16b(200), []byte("abc")), frame(0x30, u16b(200), []byte("abc")), malformed},
	{"MQTT-4.8.0-1", "MQTT-4.13.1-1", "CONNACK sent by a client", frame(0x20, []byte{0, 0}), frame(0x20, []byte{0, 0, 0}), badOrProt},
	{"MQTT-4.8.0-1", "MQTT-4.13.1-1", "SUBACK sent by a client", frame(0x90, u16b(1), []byte{0}), frame(0x90, u16b(1), []byte{0, 0}), badOrProt},
	{"MQTT-4.8.0-1", "MQTT-4.13.1-1", "PINGRESP sent by a client", frame(0xD0), nil, badOrProt},
	{"", "§2.2.2.2", "PUBLISH with a duplicate payload format property", nil, frame(0x30, str("a"), []byte{4, 0x01, 0, 0x01, 1}, []byte("x")), protoErr},
	{"", "§2.2.2.2", "PUBLISH with an unknown property", nil, frame(0x30, str("a"), []byte{2, 0x7F, 0}, []byte("x")), badOrProt},
	{"", "§2.2.2.2", "PUBLISH whose property length overruns the packet", nil, frame(0x30, str("a"), []byte{20, 0x01, 0}), malformed},
	{"", "§2.2.2.2", "PUBLISH with a CONNECT-only property", nil, frame(0x30, str("a"), []byte{5, 0x11, 0, 0, 0, 9}, []byte("x")), badOrProt},
	{"", "MQTT-1.5.7-1", "user property with ill-formed UTF-8", nil, withProps(str("a"), cat([]byte{0x26}, str("k\xff"), str("v")), []byte("x")), malformed},
	{"", "MQTT-3.14.2-1", "DISCONNECT with an unknown reason code", nil, frame(0xE0, []byte{0x03, 0}), badOrProt},
}

// withProps builds a v5 QoS 0 PUBLISH from its topic field, property
// block contents and payload.
func withProps(topic, props, payload []byte) []byte {
	return frame(0x30, topic, vbi(len(props)), props, payload)
}

func TestMalformed(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tg *target) {
		for _, bp := range badPackets {
			for _, v := range versions {
				id, b := bp.id311, bp.v311
				if v.version == packet.Version5 {
					id = bp.id5
					if bp.v5 != nil {
						b = bp.v5
					}
				}
				if id == "" {
					continue
				}
				tg.run(t, id+" ("+v.name+") "+bp.name+" closes the connection", func(t *testing.T, tg *target) {
					s := tg.start(t, opts{})
					c := dialRaw(t, s, v.version, uniq("c"))
					c.SendRaw(b)
					expectRefused(t, c, bp.codes...)
				})
			}
		}

		for _, v := range versions {
			tg.run(t, "MQTT-3.1.4-1 ("+v.name+") CONNECT with bytes after its payload closes the connection", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				c := mqtttest.Dial(t, s.addr, v.version)
				good := v.connect(uniq("c"))
				// Same CONNECT with two junk bytes counted in its length.
				bad := frame(0x10, good[2:], []byte{0, 0})
				c.SendRaw(bad)
				expectNoAccept(t, c)
			})

			utf8ID := "MQTT-1.5.3-1 MQTT-3.1.3-4"
			if v.version == packet.Version5 {
				utf8ID = "MQTT-1.5.4-1 MQTT-3.1.3-4"
			}
			tg.run(t, utf8ID+" ("+v.name+") ill-formed UTF-8 client id closes the connection", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				c := mqtttest.Dial(t, s.addr, v.version)
				c.SendRaw(v.connect("id\xff"))
				expectNoAccept(t, c)
			})

			tg.run(t, "MQTT-4.8.0-1 MQTT-4.13.1-1 ("+v.name+") truncated and garbage connections do not disturb other clients", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				sub := newV3(t, s, uniq("sub"), nil)
				sub.sub(t, "ok/x", 1)
				pub := newV3(t, s, uniq("pub"), nil)
				junk := [][]byte{
					v.connect(uniq("t"))[:7],                       // CONNECT cut short
					append(v.connect(uniq("t")), 0x30, 0x10, 0, 3), // PUBLISH cut short
					{0xFF, 0xFF, 0xFF, 0xFF, 0xFF},                 // garbage
					[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
				}
				for i, j := range junk {
					c := mqtttest.Dial(t, s.addr, v.version)
					c.SendRaw(j)
					c.Close()
					pub.pub(t, "ok/x", 1, false, itoa(i))
					if m := sub.in.next(t); m.Payload != itoa(i) {
						t.Fatalf("after junk %d got %q", i, m.Payload)
					}
				}
			})

			tg.run(t, "§3.1.4 ("+v.name+") a half-sent CONNECT is closed after the connect timeout", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				c := mqtttest.Dial(t, s.addr, v.version)
				c.SendRaw(v.connect(uniq("c"))[:5])
				if _, closed := c.Closed(6 * time.Second); !closed {
					t.Fatal("half-sent CONNECT kept the connection open for 6 s (connect timeout 2 s)")
				}
			})
		}

		tg.run(t, "MQTT-4.13.1-1 (5.0) a malformed packet gets DISCONNECT 0x81 before the close", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := dialRaw(t, s, packet.Version5, uniq("c"))
			c.SendRaw(pub5("a\xff"))
			expectDisconnect(t, c, packet.MalformedPacket)
		})

		tg.run(t, "MQTT-4.13.1-1 MQTT-3.1.0-2 (5.0) a protocol error gets DISCONNECT 0x82 before the close", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := dialRaw(t, s, packet.Version5, uniq("c"))
			c.SendRaw(v5Connect(uniq("again")))
			expectDisconnect(t, c, packet.ProtocolError)
		})

		tg.run(t, "MQTT-3.3.2-2 (5.0) a wildcard PUBLISH topic gets DISCONNECT before the close", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := dialRaw(t, s, packet.Version5, uniq("c"))
			c.SendRaw(pub5("a/#"))
			expectDisconnect(t, c, topicBad...)
		})
	})
}
