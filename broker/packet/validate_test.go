package packet

import (
	"errors"
	"testing"
)

// TestValidation checks one rule per case; each case names the normative
// statement it enforces (3.1.1 numbering, then 5.0 where it differs).
func TestValidation(t *testing.T) {
	cases := []struct {
		name    string
		version byte
		in      []byte
		want    ReasonCode
	}{
		// Fixed header.
		{"MQTT-2.2.2-2 reserved packet type 0 is malformed", Version311, raw(0x00), MalformedPacket},
		{"MQTT-2.2.2-2 AUTH does not exist in 3.1.1", Version311, raw(0xF0), MalformedPacket},
		{"MQTT-3.8.1-1 SUBSCRIBE flags must be 0b0010", Version311, raw(0x80, u16(1), str("a"), by(0)), MalformedPacket},
		{"MQTT-3.8.1-1 SUBSCRIBE flags must be 0b0010 (v5)", Version5, raw(0x83, u16(1), props(), str("a"), by(0)), MalformedPacket},
		{"MQTT-3.10.1-1 UNSUBSCRIBE flags must be 0b0010", Version311, raw(0xA0, u16(1), str("a")), MalformedPacket},
		{"MQTT-3.6.1-1 PUBREL flags must be 0b0010", Version311, raw(0x60, u16(1)), MalformedPacket},
		{"MQTT-3.6.1-1 PUBREL flags must be 0b0010 (v5)", Version5, raw(0x60, u16(1)), MalformedPacket},
		{"MQTT-2.2.2-1 PUBACK flags must be 0", Version311, raw(0x42, u16(1)), MalformedPacket},
		{"MQTT-2.2.2-1 CONNECT flags must be 0", Version311, append([]byte{0x11}, connectV3(0x02)[1:]...), MalformedPacket},
		{"MQTT-2.1.3-1 PINGREQ flags must be 0 (v5)", Version5, raw(0xC1), MalformedPacket},
		{"MQTT-2.1.3-1 DISCONNECT flags must be 0 (v5)", Version5, raw(0xE8), MalformedPacket},
		{"MQTT-1.5.5-1 remaining length over 4 bytes is malformed", Version311, by(0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01), MalformedPacket},
		{"MQTT-1.5.5-1 non-minimal remaining length is malformed", Version5, by(0xC0, 0x80, 0x00), MalformedPacket},
		{"remaining length shorter than the packet", Version311, by(0xC0, 0x00, 0x00), MalformedPacket},
		{"remaining length longer than the packet", Version311, by(0x40, 0x03, 0x00, 0x01), MalformedPacket},
		{"MQTT-3.1.0-1 packet before CONNECT (no version)", 0, raw(0xC0), ProtocolError},

		// PUBLISH.
		{"MQTT-3.3.1-4 QoS 3 is malformed", Version311, raw(0x36, str("a"), u16(1)), MalformedPacket},
		{"MQTT-3.3.1-4 QoS 3 is malformed (v5)", Version5, raw(0x36, str("a"), u16(1), props()), MalformedPacket},
		{"MQTT-3.3.1-2 DUP with QoS 0 is malformed", Version311, raw(0x38, str("a")), MalformedPacket},
		{"MQTT-3.3.1-2 DUP with QoS 0 is malformed (v5)", Version5, raw(0x38, str("a"), props()), MalformedPacket},
		{"MQTT-3.3.2-2 topic name with + is invalid", Version311, raw(0x30, str("a/+")), TopicNameInvalid},
		{"MQTT-3.3.2-2 topic name with # is invalid (v5)", Version5, raw(0x30, str("a/#"), props()), TopicNameInvalid},
		{"MQTT-3.3.2-2 wildcard after multi-byte rune", Version311, raw(0x30, str("é/+")), TopicNameInvalid},
		{"MQTT-4.7.3-1 empty topic name", Version311, raw(0x30, str("")), ProtocolError},
		{"MQTT-3.3.2-1 empty topic without topic alias (v5)", Version5, raw(0x30, str(""), props()), ProtocolError},
		{"MQTT-3.3.2-8 topic alias 0", Version5, raw(0x30, str("a"), props(by(0x23), u16(0))), TopicAliasInvalid},
		{"MQTT-2.3.1-1 PUBLISH QoS 1 with packet id 0", Version311, raw(0x32, str("a"), u16(0)), ProtocolError},
		{"MQTT-2.2.1-3 PUBLISH QoS 2 with packet id 0 (v5)", Version5, raw(0x34, str("a"), u16(0), props()), ProtocolError},
		{"PUBLISH QoS 1 truncated packet id", Version311, raw(0x32, str("a"), by(0)), MalformedPacket},
		{"MQTT-3.3.2-14 response topic with wildcard", Version5, raw(0x30, str("a"), props(by(0x08), str("r/#"))), TopicNameInvalid},
		{"payload format indicator 2 is a protocol error", Version5, raw(0x30, str("a"), props(by(0x01, 2))), ProtocolError},
		{"subscription identifier 0", Version5, raw(0x30, str("a"), props(by(0x0B, 0))), ProtocolError},
		{"MQTT-1.5.5-1 non-minimal subscription identifier", Version5, raw(0x30, str("a"), props(by(0x0B, 0x81, 0x00))), MalformedPacket},

		// UTF-8 strings.
		{"MQTT-1.5.3-1 ill-formed UTF-8 in topic", Version311, raw(0x30, str("a\xff")), MalformedPacket},
		{"MQTT-1.5.4-1 UTF-16 surrogate in topic (v5)", Version5, raw(0x30, str("\xed\xa0\x80"), props()), MalformedPacket},
		{"MQTT-1.5.4-1 overlong encoding in topic", Version5, raw(0x30, str("\xc0\xaf"), props()), MalformedPacket},
		{"MQTT-1.5.3-2 U+0000 in topic", Version311, raw(0x30, str("a\x00b")), MalformedPacket},
		{"MQTT-1.5.4-2 U+0000 after multi-byte rune", Version5, raw(0x30, str("é\x00"), props()), MalformedPacket},
		{"MQTT-1.5.4-2 U+0000 in client identifier", Version311, raw(0x10, str("MQTT"), by(4, 2), u16(0), str("a\x00")), MalformedPacket},
		{"MQTT-1.5.4-1 ill-formed UTF-8 in user property", Version5, raw(0x30, str("a"), props(by(0x26), str("k"), str("\xff"))), MalformedPacket},
		{"MQTT-1.5.4-1 ill-formed UTF-8 in topic filter", Version311, raw(0x82, u16(1), str("\xfe"), by(0)), MalformedPacket},
		{"string length beyond the packet", Version311, raw(0x30, by(0, 9), by('a')), MalformedPacket},

		// CONNECT.
		{"MQTT-3.1.2-1 unknown protocol name", Version311, raw(0x10, str("MQTX"), by(4, 2), u16(0), str("c")), UnsupportedProtocolVersion},
		{"MQTT-3.1.2-2 unsupported protocol level 6", Version311, raw(0x10, str("MQTT"), by(6, 2), u16(0), str("c")), UnsupportedProtocolVersion},
		{"MQTT-3.1.2-2 MQTT name with level 3", Version311, raw(0x10, str("MQTT"), by(3, 2), u16(0), str("c")), UnsupportedProtocolVersion},
		{"CONNECT truncated before protocol level", Version311, raw(0x10, str("MQTT")), MalformedPacket},
		{"MQTT-3.1.2-3 CONNECT reserved flag must be 0", Version311, connectV3(0x03), MalformedPacket},
		{"MQTT-3.1.2-3 CONNECT reserved flag must be 0 (v5)", Version5, connectV5(0x03, props()), MalformedPacket},
		{"MQTT-3.1.2-13 will QoS without will flag", Version311, connectV3(0x0A), MalformedPacket},
		{"MQTT-3.1.2-11 will QoS without will flag (v5)", Version5, connectV5(0x12, props()), MalformedPacket},
		{"MQTT-3.1.2-15 will retain without will flag", Version311, connectV3(0x22), MalformedPacket},
		{"MQTT-3.1.2-13 will retain without will flag (v5)", Version5, connectV5(0x22, props()), MalformedPacket},
		{"MQTT-3.1.2-14 will QoS 3", Version311, connectV3(0x1E, str("w"), str("p")), MalformedPacket},
		{"MQTT-3.1.2-12 will QoS 3 (v5)", Version5, connectV5(0x1E, props(), props(), str("w"), str("p")), MalformedPacket},
		{"MQTT-3.1.2-22 password without user name in 3.1.1", Version311, connectV3(0x42, str("pw")), MalformedPacket},
		{"MQTT-3.1.3-11 will topic with wildcard", Version311, connectV3(0x06, str("w/+"), str("p")), TopicNameInvalid},
		{"MQTT-4.7.3-1 empty will topic", Version5, connectV5(0x06, props(), props(), str(""), str("p")), TopicNameInvalid},
		{"CONNECT missing will payload", Version311, connectV3(0x06, str("w")), MalformedPacket},
		{"CONNECT missing user name", Version311, connectV3(0x82), MalformedPacket},
		{"CONNECT trailing bytes", Version311, connectV3(0x02, by(0)), MalformedPacket},
		{"MQTT-1.5.4-1 ill-formed UTF-8 user name", Version5, connectV5(0x82, props(), str("\xff")), MalformedPacket},

		// Properties.
		{"property duplicated is a protocol error", Version5, connectV5(0x02, props(by(0x11), u32(1), by(0x11), u32(2))), ProtocolError},
		{"topic alias duplicated in PUBLISH", Version5, raw(0x30, str("a"), props(by(0x23), u16(1), by(0x23), u16(2))), ProtocolError},
		{"property not allowed in CONNECT is malformed", Version5, connectV5(0x02, props(by(0x23), u16(1))), MalformedPacket},
		{"property not allowed in PUBLISH is malformed", Version5, raw(0x30, str("a"), props(by(0x11), u32(1))), MalformedPacket},
		{"will property not allowed in will properties", Version5, connectV5(0x06, props(), props(by(0x11), u32(1)), str("w"), str("p")), MalformedPacket},
		{"subscription identifier in SUBSCRIBE only once", Version5, raw(0x82, u16(1), props(by(0x0B, 1, 0x0B, 2)), str("a"), by(0)), ProtocolError},
		{"unknown property identifier is malformed", Version5, raw(0x30, str("a"), props(by(0x7F, 0))), MalformedPacket},
		{"property length beyond the packet", Version5, raw(0x30, str("a"), by(10, 0x01)), MalformedPacket},
		{"property value beyond the property length", Version5, raw(0x30, str("a"), by(2, 0x02, 0), by(0, 0, 0)), MalformedPacket},
		{"receive maximum 0 is a protocol error", Version5, connectV5(0x02, props(by(0x21), u16(0))), ProtocolError},
		{"maximum packet size 0 is a protocol error", Version5, connectV5(0x02, props(by(0x27), u32(0))), ProtocolError},
		{"request problem information 2 is a protocol error", Version5, connectV5(0x02, props(by(0x17, 2))), ProtocolError},
		{"request response information 2 is a protocol error", Version5, connectV5(0x02, props(by(0x19, 2))), ProtocolError},
		{"authentication data without method", Version5, connectV5(0x02, props(by(0x16), str("x"))), ProtocolError},
		{"maximum QoS 2 in CONNACK is a protocol error", Version5, raw(0x20, by(0, 0), props(by(0x24, 2))), ProtocolError},

		// CONNACK.
		{"MQTT-3.2.2-1 CONNACK reserved flags", Version5, raw(0x20, by(2, 0), props()), MalformedPacket},
		{"MQTT-3.2.2-4 session present with error code", Version311, raw(0x20, by(1, 5)), ProtocolError},
		{"3.1.1 CONNACK return code 6 is reserved", Version311, raw(0x20, by(0, 6)), ProtocolError},
		{"v5 CONNACK reason code 0x10 not allowed", Version5, raw(0x20, by(0, 0x10), props()), ProtocolError},
		{"v5 CONNACK without property length", Version5, raw(0x20, by(0, 0)), MalformedPacket},

		// Acks.
		{"MQTT-2.3.1-1 PUBACK packet id 0", Version311, raw(0x40, u16(0)), ProtocolError},
		{"3.1.1 PUBACK with trailing byte", Version311, raw(0x40, u16(1), by(0)), MalformedPacket},
		{"PUBACK truncated", Version5, raw(0x40, by(1)), MalformedPacket},
		{"PUBACK reason code 0x92 not allowed", Version5, raw(0x40, u16(1), by(0x92)), ProtocolError},
		{"PUBREL reason code 0x10 not allowed", Version5, raw(0x62, u16(1), by(0x10)), ProtocolError},
		{"PUBCOMP property not allowed", Version5, raw(0x70, u16(1), by(0), props(by(0x11), u32(1))), MalformedPacket},
		{"PUBACK trailing after properties", Version5, raw(0x40, u16(1), by(0), props(), by(0)), MalformedPacket},

		// SUBSCRIBE.
		{"MQTT-3.8.3-3 SUBSCRIBE without topic filters", Version311, raw(0x82, u16(1)), ProtocolError},
		{"MQTT-3.8.3-2 SUBSCRIBE without topic filters (v5)", Version5, raw(0x82, u16(1), props()), ProtocolError},
		{"MQTT-2.3.1-1 SUBSCRIBE packet id 0", Version311, raw(0x82, u16(0), str("a"), by(0)), ProtocolError},
		{"MQTT-3-8.3-4 3.1.1 subscription options reserved bits", Version311, raw(0x82, u16(1), str("a"), by(0x04)), MalformedPacket},
		{"MQTT-3-8.3-4 subscription QoS 3", Version311, raw(0x82, u16(1), str("a"), by(3)), MalformedPacket},
		{"MQTT-3.8.3-5 v5 subscription options reserved bits", Version5, raw(0x82, u16(1), props(), str("a"), by(0x40)), MalformedPacket},
		{"MQTT-3.8.3-5 v5 subscription QoS 3", Version5, raw(0x82, u16(1), props(), str("a"), by(3)), MalformedPacket},
		{"retain handling 3 is a protocol error", Version5, raw(0x82, u16(1), props(), str("a"), by(0x30)), ProtocolError},
		{"MQTT-3.8.3-4 no local on a shared subscription", Version5, raw(0x82, u16(1), props(), str("$share/g/a"), by(0x04)), ProtocolError},
		{"SUBSCRIBE filter without options byte", Version311, raw(0x82, u16(1), str("a")), MalformedPacket},

		// SUBACK, UNSUBSCRIBE, UNSUBACK.
		{"3.1.1 SUBACK return code 3", Version311, raw(0x90, u16(1), by(3)), ProtocolError},
		{"SUBACK without return codes", Version311, raw(0x90, u16(1)), ProtocolError},
		{"v5 SUBACK reason code 0x92 not allowed", Version5, raw(0x90, u16(1), props(), by(0x92)), ProtocolError},
		{"MQTT-3.10.3-2 UNSUBSCRIBE without topic filters", Version311, raw(0xA2, u16(1)), ProtocolError},
		{"MQTT-3.10.3-2 UNSUBSCRIBE without topic filters (v5)", Version5, raw(0xA2, u16(1), props()), ProtocolError},
		{"MQTT-2.3.1-1 UNSUBSCRIBE packet id 0", Version311, raw(0xA2, u16(0), str("a")), ProtocolError},
		{"UNSUBSCRIBE property not allowed", Version5, raw(0xA2, u16(1), props(by(0x1F), str("r")), str("a")), MalformedPacket},
		{"3.1.1 UNSUBACK with payload", Version311, raw(0xB0, u16(1), by(0)), MalformedPacket},
		{"v5 UNSUBACK reason code 0x10 not allowed", Version5, raw(0xB0, u16(1), props(), by(0x10)), ProtocolError},

		// PINGREQ, PINGRESP, DISCONNECT, AUTH.
		{"PINGREQ with a body", Version311, raw(0xC0, by(0)), MalformedPacket},
		{"PINGRESP with a body", Version5, raw(0xD0, by(0)), MalformedPacket},
		{"3.1.1 DISCONNECT with a body", Version311, raw(0xE0, by(0)), MalformedPacket},
		{"DISCONNECT reason code 0x01 not allowed", Version5, raw(0xE0, by(0x01)), ProtocolError},
		{"DISCONNECT property not allowed", Version5, raw(0xE0, by(0), props(by(0x23), u16(1))), MalformedPacket},
		{"AUTH reason code 0x80 not allowed", Version5, raw(0xF0, by(0x80), props()), ProtocolError},
		{"AUTH property not allowed", Version5, raw(0xF0, by(0x18), props(by(0x11), u32(1))), MalformedPacket},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Decode(tc.in, tc.version)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Decode(% x) = %v, %v; want *Error with code %#x", tc.in, p, err, byte(tc.want))
			}
			if pe.Code != tc.want {
				t.Fatalf("Decode(% x) code = %#x (%v), want %#x (%v)", tc.in, byte(pe.Code), pe, byte(tc.want), tc.want)
			}
			if p != nil {
				t.Fatalf("Decode returned packet %v with error", p)
			}
		})
	}
}

// TestValidationAccepts covers inputs that look suspicious but are legal,
// so the rules above are not simply rejecting everything.
func TestValidationAccepts(t *testing.T) {
	cases := []struct {
		name    string
		version byte
		in      []byte
	}{
		{"v5 allows a password without a user name", Version5, connectV5(0x42, props(), str("pw"))},
		{"3.1 (MQIsdp) CONNECT", Version31, raw(0x10, str("MQIsdp"), by(3, 2), u16(0), str("c"))},
		{"3.1 allows DUP on PUBREL", Version31, raw(0x6A, u16(1))},
		{"will QoS 2 with retain", Version311, connectV3(0x36, str("w"), str("p"))},
		{"empty client identifier", Version311, raw(0x10, str("MQTT"), by(4, 2), u16(0), str(""))},
		{"v5 empty topic with topic alias", Version5, raw(0x30, str(""), props(by(0x23), u16(1)))},
		{"v5 repeated subscription identifiers in PUBLISH", Version5, raw(0x30, str("a"), props(by(0x0B, 1, 0x0B, 2)))},
		{"v5 repeated user properties", Version5, raw(0x30, str("a"), props(by(0x26), str("k"), str("v"), by(0x26), str("k"), str("v")))},
		{"v5 PUBACK with reason code only", Version5, raw(0x40, u16(1), by(0x10))},
		{"v5 DISCONNECT with reason code only", Version5, raw(0xE0, by(0x04))},
		{"v5 AUTH with reason code only", Version5, raw(0xF0, by(0x18))},
		{"v5 PUBLISH with empty payload", Version5, raw(0x30, str("a"), props())},
		{"4-byte remaining length", Version311, raw(0x30, str("a"), make([]byte, 2097152))},
		{"topic with U+FEFF kept", Version311, raw(0x30, str("\ufeffa"))},
		{"subscription filter with wildcards (filter syntax is the broker's)", Version311, raw(0x82, u16(1), str("a/+/#"), by(2))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Decode(tc.in, tc.version); err != nil {
				t.Fatalf("Decode: %v", err)
			}
		})
	}
}

// TestBOMKept: a leading 0xEF 0xBB 0xBF is U+FEFF and MUST NOT be skipped
// or stripped by the receiver [MQTT-1.5.4-3].
func TestBOMKept(t *testing.T) {
	for _, version := range []byte{Version311, Version5} {
		t.Run(vname(version), func(t *testing.T) {
			in := raw(0x30, str("\xef\xbb\xbfa/b"))
			if version == Version5 {
				in = raw(0x30, str("\xef\xbb\xbfa/b"), props())
			}
			p, err := Decode(in, version)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(p.(*Publish).Topic); got != "\ufeffa/b" {
				t.Fatalf("topic %q, want the BOM kept", got)
			}
		})
	}
}
