package packet

import (
	"bytes"
	"testing"
)

// TestGolden checks exact wire bytes against examples from the
// specifications (section numbers name the figure or table) and fixed
// encodings; each case encodes the packet and decodes the bytes.
func TestGolden(t *testing.T) {
	cases := []struct {
		name    string
		version byte
		p       Packet
		wire    []byte
		decoded Packet // what wire decodes to, when it differs from p
	}{
		{
			// 3.1.1 figure 3.6: protocol name, level 4, flags 0xCE (user
			// name, password, will QoS 1, will flag, clean session), keep
			// alive 10.
			name: "3.1.1 3.1.2.10 CONNECT variable header", version: Version311,
			p: &Connect{Version: Version311, CleanStart: true, KeepAlive: 10, ClientID: b("c"),
				WillFlag: true, WillQoS: 1, WillTopic: b("w"), WillPayload: b("p"),
				UsernameFlag: true, Username: b("u"), PasswordFlag: true, Password: b("x")},
			wire: by(0x10, 25, 0, 4, 'M', 'Q', 'T', 'T', 4, 0xCE, 0, 10,
				0, 1, 'c', 0, 1, 'w', 0, 1, 'p', 0, 1, 'u', 0, 1, 'x'),
		},
		{
			// 5.0 figure 3-6: level 5, flags 0xC2 (user name, password,
			// clean start), keep alive 10, properties: session expiry 10.
			name: "5.0 3.1.2.11 CONNECT variable header", version: Version5,
			p: &Connect{Version: Version5, CleanStart: true, KeepAlive: 10, ClientID: b("c"),
				UsernameFlag: true, Username: b("u"), PasswordFlag: true, Password: b("x"),
				Props: Properties{Present: PropSessionExpiry, SessionExpiry: 10}},
			wire: by(0x10, 25, 0, 4, 'M', 'Q', 'T', 'T', 5, 0xC2, 0, 10, 5, 0x11, 0, 0, 0, 10,
				0, 1, 'c', 0, 1, 'u', 0, 1, 'x'),
		},
		{
			name: "3.1 CONNECT uses MQIsdp", version: Version31,
			p:    &Connect{Version: Version31, CleanStart: true, ClientID: b("c")},
			wire: by(0x10, 15, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 0x02, 0, 0, 0, 1, 'c'),
		},
		{
			name: "3.1.1 CONNACK accepted", version: Version311,
			p: &Connack{}, wire: by(0x20, 2, 0, 0),
		},
		{
			name: "3.1.1 CONNACK session present", version: Version311,
			p: &Connack{SessionPresent: true}, wire: by(0x20, 2, 1, 0),
		},
		{
			name: "5.0 CONNACK with receive maximum", version: Version5,
			p:    &Connack{Props: Properties{Present: PropReceiveMaximum, ReceiveMaximum: 20}},
			wire: by(0x20, 6, 0, 0, 3, 0x21, 0, 20),
		},
		{
			// 3.1.1 figure 3.11: topic "a/b", packet identifier 10.
			name: "3.1.1 3.3.2.3 PUBLISH variable header", version: Version311,
			p:    &Publish{QoS: 1, Topic: b("a/b"), PacketID: 10, Payload: b("hi")},
			wire: by(0x32, 9, 0, 3, 'a', '/', 'b', 0, 10, 'h', 'i'),
		},
		{
			name: "5.0 PUBLISH QoS 0 retain with empty properties", version: Version5,
			p:    &Publish{Retain: true, Topic: b("a"), Payload: b("x")},
			wire: by(0x31, 5, 0, 1, 'a', 0, 'x'),
		},
		{
			name: "5.0 PUBLISH with topic alias and message expiry", version: Version5,
			p: &Publish{QoS: 2, Dup: true, Topic: b(""), PacketID: 1,
				Props: Properties{Present: PropTopicAlias | PropMessageExpiry, TopicAlias: 1, MessageExpiry: 1}},
			wire: by(0x3C, 13, 0, 0, 0, 1, 8, 0x02, 0, 0, 0, 1, 0x23, 0, 1),
		},
		{
			// 1.5.4 figure 1-1: "A𪛔" is 0x41 0xF0 0xAA 0x9B 0x94.
			name: "5.0 1.5.4 UTF-8 string example as a topic", version: Version5,
			p:    &Publish{Topic: []byte("A\U0002A6D4")},
			wire: by(0x30, 8, 0, 5, 0x41, 0xF0, 0xAA, 0x9B, 0x94, 0),
		},
		{name: "3.1.1 PUBACK", version: Version311, p: &Ack{Kind: PUBACK, PacketID: 1}, wire: by(0x40, 2, 0, 1)},
		{name: "3.1.1 PUBREC", version: Version311, p: &Ack{Kind: PUBREC, PacketID: 2}, wire: by(0x50, 2, 0, 2)},
		{name: "3.1.1 PUBREL", version: Version311, p: &Ack{Kind: PUBREL, PacketID: 3}, wire: by(0x62, 2, 0, 3)},
		{name: "3.1.1 PUBCOMP", version: Version311, p: &Ack{Kind: PUBCOMP, PacketID: 4}, wire: by(0x70, 2, 0, 4)},
		{name: "5.0 PUBACK success omits reason code", version: Version5, p: &Ack{Kind: PUBACK, PacketID: 1}, wire: by(0x40, 2, 0, 1)},
		{name: "5.0 PUBACK reason without properties", version: Version5,
			p: &Ack{Kind: PUBACK, PacketID: 1, ReasonCode: QuotaExceeded}, wire: by(0x40, 3, 0, 1, 0x97)},
		{name: "5.0 PUBREC reason string", version: Version5,
			p:    &Ack{Kind: PUBREC, PacketID: 1, ReasonCode: UnspecifiedError, Props: Properties{ReasonString: b("no")}},
			wire: by(0x50, 9, 0, 1, 0x80, 5, 0x1F, 0, 2, 'n', 'o')},
		{
			// 3.1.1 table 3.6: "a/b" QoS 1, "c/d" QoS 2.
			name: "3.1.1 3.8.3 SUBSCRIBE payload", version: Version311,
			p:    &Subscribe{PacketID: 10, Subs: []Subscription{{Filter: b("a/b"), QoS: 1}, {Filter: b("c/d"), QoS: 2}}},
			wire: by(0x82, 14, 0, 10, 0, 3, 'a', '/', 'b', 1, 0, 3, 'c', '/', 'd', 2),
		},
		{
			name: "5.0 SUBSCRIBE options and subscription identifier", version: Version5,
			p: &Subscribe{PacketID: 1, Props: Properties{SubscriptionIDs: []uint32{200}},
				Subs: []Subscription{{Filter: b("a"), QoS: 1, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}}},
			wire: by(0x82, 10, 0, 1, 3, 0x0B, 0xC8, 0x01, 0, 1, 'a', 0x2D),
		},
		{
			// 3.1.1 figure 3.26: success QoS 0, 1, 2 and failure.
			name: "3.1.1 3.9.3 SUBACK payload", version: Version311,
			p:    &Suback{PacketID: 10, Codes: []ReasonCode{0, 1, 2, 0x80}},
			wire: by(0x90, 6, 0, 10, 0, 1, 2, 0x80),
		},
		{
			name: "3.1.1 SUBACK maps v5 failure codes to 0x80", version: Version311,
			p:       &Suback{PacketID: 1, Codes: []ReasonCode{NotAuthorized}},
			wire:    by(0x90, 3, 0, 1, 0x80),
			decoded: &Suback{PacketID: 1, Codes: []ReasonCode{UnspecifiedError}},
		},
		{
			name: "3.1.1 3.10.3 UNSUBSCRIBE payload", version: Version311,
			p:    &Unsubscribe{PacketID: 10, Filters: [][]byte{b("a/b"), b("c/d")}},
			wire: by(0xA2, 12, 0, 10, 0, 3, 'a', '/', 'b', 0, 3, 'c', '/', 'd'),
		},
		{name: "3.1.1 UNSUBACK", version: Version311, p: &Unsuback{PacketID: 5}, wire: by(0xB0, 2, 0, 5)},
		{name: "5.0 UNSUBACK", version: Version5, p: &Unsuback{PacketID: 5, Codes: []ReasonCode{Success, NoSubscriptionExisted}},
			wire: by(0xB0, 5, 0, 5, 0, 0x00, 0x11)},
		{name: "PINGREQ", version: Version311, p: &Pingreq{}, wire: by(0xC0, 0)},
		{name: "PINGRESP", version: Version5, p: &Pingresp{}, wire: by(0xD0, 0)},
		{name: "3.1.1 DISCONNECT", version: Version311, p: &Disconnect{}, wire: by(0xE0, 0)},
		{name: "5.0 DISCONNECT normal omits reason code", version: Version5, p: &Disconnect{}, wire: by(0xE0, 0)},
		{name: "5.0 DISCONNECT server shutting down", version: Version5,
			p: &Disconnect{ReasonCode: ServerShuttingDown}, wire: by(0xE0, 1, 0x8B)},
		{name: "5.0 DISCONNECT session expiry", version: Version5,
			p:    &Disconnect{Props: Properties{Present: PropSessionExpiry, SessionExpiry: 0}},
			wire: by(0xE0, 7, 0, 5, 0x11, 0, 0, 0, 0)},
		{name: "5.0 AUTH success is empty", version: Version5, p: &Auth{}, wire: by(0xF0, 0)},
		{name: "5.0 AUTH continue", version: Version5,
			p:    &Auth{ReasonCode: ContinueAuthentication, Props: Properties{AuthMethod: b("m")}},
			wire: by(0xF0, 6, 0x18, 4, 0x15, 0, 1, 'm')},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Append(nil, tc.p, tc.version)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if !bytes.Equal(got, tc.wire) {
				t.Fatalf("Append:\n got % x\nwant % x", got, tc.wire)
			}
			if Size(tc.p, tc.version) != len(tc.wire) {
				t.Fatalf("Size = %d, want %d", Size(tc.p, tc.version), len(tc.wire))
			}
			p, err := Decode(tc.wire, tc.version)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := tc.p
			if tc.decoded != nil {
				want = tc.decoded
			}
			if !equalPackets(p, want) {
				t.Fatalf("Decode:\n got %#v\nwant %#v", p, want)
			}
		})
	}
}

// TestVarintGolden checks the Remaining Length examples of 3.1.1 table
// 2.4 / 5.0 section 1.5.5 at each byte-count boundary.
func TestVarintGolden(t *testing.T) {
	cases := []struct {
		v    uint32
		wire []byte
	}{
		{0, by(0x00)}, {127, by(0x7F)},
		{128, by(0x80, 0x01)}, {16383, by(0xFF, 0x7F)},
		{16384, by(0x80, 0x80, 0x01)}, {2097151, by(0xFF, 0xFF, 0x7F)},
		{2097152, by(0x80, 0x80, 0x80, 0x01)}, {268435455, by(0xFF, 0xFF, 0xFF, 0x7F)},
	}
	for _, tc := range cases {
		t.Run(string(rune('0'+len(tc.wire)))+" bytes", func(t *testing.T) {
			if got := appendVarint(nil, tc.v); !bytes.Equal(got, tc.wire) {
				t.Fatalf("appendVarint(%d) = % x, want % x", tc.v, got, tc.wire)
			}
			if varintSize(tc.v) != len(tc.wire) {
				t.Fatalf("varintSize(%d) = %d", tc.v, varintSize(tc.v))
			}
			v, n, err := parseVarint(tc.wire)
			if err != nil || n != len(tc.wire) || v != tc.v {
				t.Fatalf("parseVarint(% x) = %d, %d, %v", tc.wire, v, n, err)
			}
			if _, n, err := parseVarint(tc.wire[:len(tc.wire)-1]); n != 0 || err != nil {
				t.Fatalf("parseVarint of a prefix = %d, %v; want incomplete", n, err)
			}
		})
	}
}

// TestConnackV3Mapping checks that a v5 CONNACK reason code is sent to a
// 3.1.1 client as the matching return code.
func TestConnackV3Mapping(t *testing.T) {
	cases := []struct {
		in, want ReasonCode
	}{
		{Success, V3Accepted},
		{V3NotAuthorized, V3NotAuthorized},
		{UnsupportedProtocolVersion, V3UnacceptableProtocolVersion},
		{ClientIdentifierNotValid, V3IdentifierRejected},
		{BadUserNameOrPassword, V3BadUsernameOrPassword},
		{NotAuthorized, V3NotAuthorized},
		{ServerBusy, V3ServerUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.in.String(), func(t *testing.T) {
			got, err := Append(nil, &Connack{ReasonCode: tc.in}, Version311)
			if err != nil {
				t.Fatal(err)
			}
			if want := by(0x20, 2, 0, byte(tc.want)); !bytes.Equal(got, want) {
				t.Fatalf("got % x, want % x", got, want)
			}
		})
	}
}
