package conformance

import (
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/packet"
	"github.com/sluicehq/sluice/internal/mqtttest"
)

// readConnack reads a raw CONNACK frame and returns its flags and code.
func readConnack(t *testing.T, c *mqtttest.Conn) (flags, code byte, frame []byte) {
	t.Helper()
	f, err := c.ReadFrame(wait)
	if err != nil {
		t.Fatalf("expected CONNACK: %v", err)
	}
	if f[0] != 0x20 || len(f) < 4 {
		t.Fatalf("expected CONNACK, got % x", f)
	}
	return f[2], f[3], f
}

func TestConnect(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tg *target) {
		firstPackets := []struct {
			name  string
			bytes []byte
		}{
			{"PINGREQ", frame(0xC0)},
			{"PUBLISH", frame(0x30, str("a"), []byte("x"))},
			{"SUBSCRIBE", frame(0x82, u16b(1), str("a"), []byte{0})},
		}
		for _, fp := range firstPackets {
			tg.run(t, "MQTT-3.1.0-1 "+fp.name+" before CONNECT closes the connection", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				c := mqtttest.Dial(t, s.addr, packet.Version311)
				c.SendRaw(fp.bytes)
				if got, closed := c.Closed(wait); !closed || len(got) > 0 {
					t.Fatalf("want the connection closed with no reply; closed=%v, received %s", closed, mqtttest.DescribeAll(got))
				}
			})
		}

		for _, v := range versions {
			tg.run(t, "MQTT-3.1.0-2 MQTT-3.2.0-2 ("+v.name+") second CONNECT closes the connection", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				c := mqtttest.Dial(t, s.addr, v.version)
				c.SendRaw(v.connect(uniq("c")))
				if _, code, _ := readConnack(t, c); code != 0 {
					t.Fatalf("first CONNACK code 0x%02x", code)
				}
				c.SendRaw(v.connect(uniq("c")))
				expectRefused(t, c, packet.ProtocolError)
			})

			tg.run(t, "MQTT-3.1.2-3 ("+v.name+") reserved CONNECT flag set closes the connection", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				c := mqtttest.Dial(t, s.addr, v.version)
				c.SendRaw(connectBytes("MQTT", v.version, flagClean|flagReserved, 30, uniq("c")))
				expectNoAccept(t, c)
			})

			badWills := []struct {
				id, name string
				flags    byte
				payload  [][]byte
			}{
				{v.willQoSNoFlag, "will QoS without will flag", flagClean | flagWillQoS1, nil},
				{v.willQoS3, "will QoS 3", flagClean | flagWill | flagWillQoS1 | flagWillQoS2, [][]byte{str("w"), str("x")}},
				{v.willRetainNoFlag, "will retain without will flag", flagClean | flagWillRetain, nil},
			}
			for _, bw := range badWills {
				tg.run(t, bw.id+" ("+v.name+") "+bw.name+" closes the connection", func(t *testing.T, tg *target) {
					s := tg.start(t, opts{})
					c := mqtttest.Dial(t, s.addr, v.version)
					c.SendRaw(connectBytes("MQTT", v.version, bw.flags, 30, uniq("c"), bw.payload...))
					expectNoAccept(t, c)
				})
			}

			tg.run(t, "MQTT-3.1.3-5 ("+v.name+") 23-character alphanumeric client id is accepted", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				c := mqtttest.Dial(t, s.addr, v.version)
				c.SendRaw(v.connect("abcdefghijKLMNOPQRST809"))
				if _, code, _ := readConnack(t, c); code != 0 {
					t.Fatalf("CONNACK code 0x%02x, want 0", code)
				}
			})

			tg.run(t, "MQTT-3.2.0-1 ("+v.name+") CONNACK precedes the reply to a pipelined SUBSCRIBE", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				c := mqtttest.Dial(t, s.addr, v.version)
				sub := frame(0x82, u16b(7), str("a/b"), []byte{1})
				if v.version == 5 {
					sub = frame(0x82, u16b(7), []byte{0}, str("a/b"), []byte{1})
				}
				c.SendRaw(cat(v.connect(uniq("c")), sub))
				if _, code, _ := readConnack(t, c); code != 0 {
					t.Fatalf("CONNACK code 0x%02x", code)
				}
				f, err := c.ReadFrame(wait)
				if err != nil || f[0] != 0x90 {
					t.Fatalf("expected SUBACK after CONNACK, got % x (%v)", f, err)
				}
			})

			tg.run(t, v.connackReserved+" ("+v.name+") CONNACK reserved flag bits are zero", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				id := uniq("c")
				c := mqtttest.Dial(t, s.addr, v.version)
				c.SendRaw(connectBytes("MQTT", v.version, 0, 30, id))
				if flags, _, _ := readConnack(t, c); flags&0xFE != 0 {
					t.Fatalf("CONNACK flags 0x%02x have reserved bits set", flags)
				}
			})

			tg.run(t, v.keepAlive+" ("+v.name+") silent client is closed after 1.5x keepalive", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				c := mqtttest.Dial(t, s.addr, v.version)
				start := time.Now()
				c.SendRaw(connectBytes("MQTT", v.version, flagClean, 1, uniq("c")))
				if _, code, f := readConnack(t, c); code != 0 {
					t.Fatalf("CONNACK % x", f)
				} else if v.version == 5 && strings.Contains(string(f[4:]), "\x13") {
					t.Logf("CONNACK carries properties % x (server keep alive?)", f[4:])
				}
				got, closed := c.Closed(3 * time.Second)
				took := time.Since(start)
				if !closed {
					t.Fatalf("connection still open %v after CONNECT with keepalive 1s", took)
				}
				if took < 1*time.Second {
					t.Fatalf("connection closed after %v, before the keepalive period", took)
				}
				for _, p := range got {
					if d, ok := p.(*packet.Disconnect); !ok || d.ReasonCode != packet.KeepAliveTimeout {
						t.Fatalf("before closing the server sent %s, want nothing or DISCONNECT 0x8d", mqtttest.Describe(p))
					}
				}
			})

			tg.run(t, "MQTT-3.12.4-1 "+v.keepAlive+" ("+v.name+") PINGREQ gets PINGRESP and keeps the connection alive", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				c := mqtttest.Dial(t, s.addr, v.version)
				c.SendRaw(connectBytes("MQTT", v.version, flagClean, 1, uniq("c")))
				readConnack(t, c)
				for i := 0; i < 5; i++ {
					sleep(500 * time.Millisecond)
					c.SendRaw(frame(0xC0))
					f, err := c.ReadFrame(wait)
					if err != nil {
						t.Fatalf("ping %d after %v: %v", i, time.Duration(i+1)*500*time.Millisecond, err)
					}
					if string(f) != "\xd0\x00" {
						t.Fatalf("ping %d: got % x, want PINGRESP d0 00", i, f)
					}
				}
			})
		}

		tg.run(t, "MQTT-3.1.2-22 §4.13 (5.0) keepalive timeout sends DISCONNECT 0x8D before the close", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := mqtttest.Dial(t, s.addr, packet.Version5)
			c.Connect(&packet.Connect{ClientID: []byte(uniq("c")), CleanStart: true, KeepAlive: 1})
			expectDisconnect(t, c, packet.KeepAliveTimeout)
		})

		tg.run(t, "MQTT-3.1.2-1 (3.1.1) unknown protocol name is not accepted", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := mqtttest.Dial(t, s.addr, packet.Version311)
			c.SendRaw(connectBytes("MQTX", 4, flagClean, 30, uniq("c")))
			expectNoAccept(t, c)
		})

		tg.run(t, "MQTT-3.1.2-2 (3.1.1) unsupported protocol level gets CONNACK 0x01 and close", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := mqtttest.Dial(t, s.addr, packet.Version311)
			c.SendRaw(connectBytes("MQTT", 7, flagClean, 30, uniq("c")))
			expectConnackFrame(t, c, []byte{0x20, 0x02, 0x00, 0x01})
		})

		tg.run(t, "MQTT-3.1.2-2 (5.0) unsupported protocol level with v5 framing gets CONNACK 0x84 and close", func(t *testing.T, tg *target) {
			// A v5-style CONNECT (property block present) at level 6:
			// the server may answer in either CONNACK layout but must refuse.
			s := tg.start(t, opts{})
			c := mqtttest.Dial(t, s.addr, packet.Version5)
			c.SendRaw(frame(0x10, str("MQTT"), []byte{6, flagClean}, u16b(30), []byte{0}, str(uniq("c"))))
			expectConnackFrame(t, c, []byte{0x20, 0x02, 0x00, 0x01}, []byte{0x20, 0x03, 0x00, 0x84, 0x00})
		})

		tg.run(t, "MQTT-3.1.2-22 (3.1.1) password without user name closes the connection", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := mqtttest.Dial(t, s.addr, packet.Version311)
			c.SendRaw(connectBytes("MQTT", 4, flagClean|flagPassword, 30, uniq("c"), str("secret")))
			expectNoAccept(t, c)
		})

		tg.run(t, "MQTT-3.1.3-6 (3.1.1) empty client id with clean session is accepted", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := mqtttest.Dial(t, s.addr, packet.Version311)
			c.SendRaw(v3Connect(""))
			if _, code, _ := readConnack(t, c); code != 0 {
				t.Fatalf("CONNACK code 0x%02x, want 0", code)
			}
		})

		tg.run(t, "MQTT-3.1.3-8 MQTT-3.2.2-4 (3.1.1) empty client id without clean session gets CONNACK 0x02 and close", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := mqtttest.Dial(t, s.addr, packet.Version311)
			c.SendRaw(connectBytes("MQTT", 4, 0, 30, ""))
			expectConnackFrame(t, c, []byte{0x20, 0x02, 0x00, 0x02})
		})

		tg.run(t, "MQTT-3.1.3-6 MQTT-3.1.3-7 MQTT-3.2.2-16 (5.0) empty client id gets a unique assigned client id", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			var ids []string
			for i := 0; i < 2; i++ {
				c := mqtttest.Dial(t, s.addr, packet.Version5)
				c.SendRaw(v5Connect(""))
				ack := mqtttest.ExpectType[*packet.Connack](c, wait)
				if ack.ReasonCode != 0 {
					t.Fatalf("CONNACK reason 0x%02x", byte(ack.ReasonCode))
				}
				if len(ack.Props.AssignedClientID) == 0 {
					t.Fatal("CONNACK has no Assigned Client Identifier")
				}
				ids = append(ids, string(ack.Props.AssignedClientID))
			}
			if ids[0] == ids[1] {
				t.Fatalf("two connections were assigned the same client id %q", ids[0])
			}
		})
	})
}

// version holds what differs between the protocol versions: framing and
// the numbering of the same normative statement.
type version struct {
	name    string // "3.1.1" or "5.0"
	version byte
	connect func(clientID string) []byte

	willQoSNoFlag, willQoS3, willRetainNoFlag string
	connackReserved, keepAlive                string
}

var versions = []version{
	{
		name: "3.1.1", version: packet.Version311, connect: v3Connect,
		willQoSNoFlag: "MQTT-3.1.2-13", willQoS3: "MQTT-3.1.2-14", willRetainNoFlag: "MQTT-3.1.2-15",
		connackReserved: "§3.2.2.1", keepAlive: "MQTT-3.1.2-24",
	},
	{
		name: "5.0", version: packet.Version5, connect: v5Connect,
		willQoSNoFlag: "MQTT-3.1.2-11", willQoS3: "MQTT-3.1.2-12", willRetainNoFlag: "MQTT-3.1.2-13",
		connackReserved: "MQTT-3.2.2-1", keepAlive: "MQTT-3.1.2-22",
	},
}

// expectNoAccept asserts the server closes the connection without
// accepting it: it may first send a CONNACK with a failure code (and then
// must close) but never a successful one.
func expectNoAccept(t *testing.T, c *mqtttest.Conn) {
	t.Helper()
	f, err := c.ReadFrame(wait)
	if err != nil {
		if strings.Contains(err.Error(), "timeout") {
			t.Fatalf("the connection stayed open for %v without a reply", wait)
		}
		return // closed without a reply
	}
	if f[0] != 0x20 || len(f) < 4 || f[3] == 0 {
		t.Fatalf("expected the connection closed (or a refusing CONNACK), got % x", f)
	}
	if _, closed := c.Closed(wait); !closed {
		t.Fatalf("refusing CONNACK % x was not followed by a close", f)
	}
}
