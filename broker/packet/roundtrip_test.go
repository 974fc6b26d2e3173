package packet

import (
	"bytes"
	"reflect"
	"testing"
)

// b is shorthand for a byte slice in test tables.
func b(s string) []byte { return []byte(s) }

// samplePackets returns one or more instances of every packet type for
// version, filling every field the version can carry.
func samplePackets(version byte) map[string]Packet {
	v5 := version == Version5
	props := func(p Properties) Properties {
		if !v5 {
			return Properties{}
		}
		return p
	}
	user := []UserProperty{{Name: b("k"), Value: b("v")}, {Name: b("k"), Value: b("")}}
	m := map[string]Packet{
		"connect minimal": &Connect{ProtocolName: b("MQTT"), Version: version, CleanStart: true, ClientID: b("")},
		"connect full": &Connect{
			ProtocolName: b("MQTT"), Version: version, CleanStart: true, KeepAlive: 60,
			ClientID: b("client-1"), UsernameFlag: true, Username: b("user"), PasswordFlag: true, Password: b("p\x00ss"),
			WillFlag: true, WillQoS: 2, WillRetain: true, WillTopic: b("will/topic"), WillPayload: b("bye"),
			WillProps: props(Properties{Present: PropPayloadFormat | PropMessageExpiry | PropWillDelayInterval,
				PayloadFormat: 1, MessageExpiry: 10, WillDelayInterval: 5, ContentType: b("text/plain"),
				ResponseTopic: b("resp"), CorrelationData: b("\x00\x01"), User: user}),
			Props: props(Properties{Present: PropSessionExpiry | PropReceiveMaximum | PropMaximumPacketSize |
				PropTopicAliasMaximum | PropRequestResponseInfo | PropRequestProblemInfo,
				SessionExpiry: 3600, ReceiveMaximum: 10, MaximumPacketSize: 1 << 16, TopicAliasMaximum: 5,
				RequestResponseInfo: 1, RequestProblemInfo: 0, AuthMethod: b("SCRAM"), AuthData: b("\xff"), User: user}),
		},
		"connack accepted": &Connack{},
		"connack session present": &Connack{SessionPresent: true, Props: props(Properties{
			Present: PropSessionExpiry | PropReceiveMaximum | PropMaximumQoS | PropRetainAvailable |
				PropMaximumPacketSize | PropTopicAliasMaximum | PropWildcardSubAvailable | PropSubIDAvailable |
				PropSharedSubAvailable | PropServerKeepAlive,
			SessionExpiry: 1, ReceiveMaximum: 2, MaximumQoS: 1, RetainAvailable: 0, MaximumPacketSize: 3,
			TopicAliasMaximum: 4, WildcardSubAvailable: 1, SubIDAvailable: 0, SharedSubAvailable: 1, ServerKeepAlive: 30,
			AssignedClientID: b("auto-1"), ResponseInfo: b("ri"), ServerReference: b("other"), ReasonString: b("ok"),
			AuthMethod: b("m"), AuthData: b("d"), User: user})},
		"publish qos0": &Publish{Topic: b("a/b"), Payload: b("hello")},
		"publish qos1 dup retain": &Publish{Dup: true, QoS: 1, Retain: true, Topic: b("a/b"), PacketID: 7,
			Payload: b(""), Props: props(Properties{Present: PropPayloadFormat | PropMessageExpiry,
				PayloadFormat: 1, MessageExpiry: 60, ContentType: b("json"), ResponseTopic: b("r/t"),
				CorrelationData: b("id"), SubscriptionIDs: []uint32{1, 268435455}, User: user})},
		"publish qos2 unicode": &Publish{QoS: 2, Topic: b("日本/𪛔"), PacketID: 65535, Payload: bytes.Repeat(b("x"), 300)},
		"puback":               &Ack{Kind: PUBACK, PacketID: 1},
		"pubrec":               &Ack{Kind: PUBREC, PacketID: 2},
		"pubrel":               &Ack{Kind: PUBREL, PacketID: 3},
		"pubcomp":              &Ack{Kind: PUBCOMP, PacketID: 4},
		"subscribe":            &Subscribe{PacketID: 9, Subs: []Subscription{{Filter: b("a/+"), QoS: 1}, {Filter: b("#"), QoS: 2}}},
		"suback":               &Suback{PacketID: 9, Codes: []ReasonCode{GrantedQoS0, GrantedQoS1, GrantedQoS2, UnspecifiedError}},
		"unsubscribe":          &Unsubscribe{PacketID: 10, Filters: [][]byte{b("a/+"), b("b")}},
		"unsuback":             &Unsuback{PacketID: 10},
		"pingreq":              &Pingreq{},
		"pingresp":             &Pingresp{},
		"disconnect":           &Disconnect{},
		"publish alias v5":     &Publish{Topic: b(""), Props: Properties{Present: PropTopicAlias, TopicAlias: 3}},
	}
	if !v5 {
		delete(m, "publish alias v5")
		return m
	}
	m["puback reason"] = &Ack{Kind: PUBACK, PacketID: 1, ReasonCode: NoMatchingSubscribers}
	m["pubrec props"] = &Ack{Kind: PUBREC, PacketID: 1, ReasonCode: QuotaExceeded,
		Props: Properties{ReasonString: b("full"), User: user}}
	m["pubrel not found"] = &Ack{Kind: PUBREL, PacketID: 1, ReasonCode: PacketIdentifierNotFound}
	m["pubcomp props success"] = &Ack{Kind: PUBCOMP, PacketID: 1, Props: Properties{User: user}}
	m["subscribe v5 options"] = &Subscribe{PacketID: 1, Props: Properties{SubscriptionIDs: []uint32{42}, User: user},
		Subs: []Subscription{{Filter: b("a"), QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2},
			{Filter: b("$share/g/a"), QoS: 1, RetainHandling: 1}}}
	m["suback v5 codes"] = &Suback{PacketID: 1, Props: Properties{ReasonString: b("r")},
		Codes: []ReasonCode{NotAuthorized, TopicFilterInvalid, SharedSubscriptionsNotSupported, WildcardSubscriptionsNotSupported}}
	m["unsuback"] = &Unsuback{PacketID: 10, Codes: []ReasonCode{Success, NoSubscriptionExisted}}
	m["unsuback props"] = &Unsuback{PacketID: 10, Props: Properties{ReasonString: b("x")}, Codes: []ReasonCode{NotAuthorized}}
	m["unsubscribe props"] = &Unsubscribe{PacketID: 10, Props: Properties{User: user}, Filters: [][]byte{b("a")}}
	m["connack refused"] = &Connack{ReasonCode: BadUserNameOrPassword, Props: Properties{ReasonString: b("no")}}
	m["disconnect reason"] = &Disconnect{ReasonCode: ServerShuttingDown}
	m["disconnect props"] = &Disconnect{ReasonCode: DisconnectWithWill, Props: Properties{Present: PropSessionExpiry,
		SessionExpiry: 0, ReasonString: b("bye"), ServerReference: b("s2"), User: user}}
	m["auth"] = &Auth{}
	m["auth continue"] = &Auth{ReasonCode: ContinueAuthentication, Props: Properties{AuthMethod: b("SCRAM"), AuthData: b("x")}}
	m["auth reason only"] = &Auth{ReasonCode: ReAuthenticate}
	return m
}

func TestRoundTrip(t *testing.T) {
	for _, version := range []byte{Version31, Version311, Version5} {
		for name, p := range samplePackets(version) {
			t.Run(vname(version)+"/"+name, func(t *testing.T) {
				if c, ok := p.(*Connect); ok && version == Version31 {
					c.ProtocolName = b("MQIsdp")
				}
				enc, err := Append(nil, p, version)
				if err != nil {
					t.Fatalf("Append: %v", err)
				}
				if got := Size(p, version); got != len(enc) {
					t.Fatalf("Size = %d, Append wrote %d bytes", got, len(enc))
				}
				got, err := Decode(enc, version)
				if err != nil {
					t.Fatalf("Decode(% x): %v", enc, err)
				}
				if !equalPackets(got, p) {
					t.Fatalf("round trip mismatch:\n got %#v\nwant %#v", got, p)
				}
				// The Reader yields the same packet from a stream.
				r := NewReader(bytes.NewReader(enc), 0)
				r.SetVersion(version)
				rp, err := r.ReadPacket()
				if err != nil {
					t.Fatalf("ReadPacket: %v", err)
				}
				if !equalPackets(rp, p) {
					t.Fatalf("reader mismatch:\n got %#v\nwant %#v", rp, p)
				}
			})
		}
	}
}

func vname(v byte) string {
	switch v {
	case Version31:
		return "3.1"
	case Version311:
		return "3.1.1"
	case Version5:
		return "5"
	}
	return "unknown"
}

// equalPackets compares packets treating nil and empty lists alike (the
// Reader reuses list capacity) but keeping nil and empty []byte apart
// (absent versus empty property).
func equalPackets(a, b Packet) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return reflect.DeepEqual(normalize(a), normalize(b))
}

func normalize(p Packet) Packet {
	normProps := func(pr Properties) Properties {
		if len(pr.User) == 0 {
			pr.User = nil
		}
		if len(pr.SubscriptionIDs) == 0 {
			pr.SubscriptionIDs = nil
		}
		return pr
	}
	switch p := p.(type) {
	case *Connect:
		c := *p
		c.Props, c.WillProps = normProps(c.Props), normProps(c.WillProps)
		// Encoding derives flags from values and the name from the version.
		c.UsernameFlag = c.UsernameFlag || c.Username != nil
		c.PasswordFlag = c.PasswordFlag || c.Password != nil
		c.ProtocolName = nil
		return &c
	case *Connack:
		c := *p
		c.Props = normProps(c.Props)
		return &c
	case *Publish:
		c := *p
		c.Props = normProps(c.Props)
		if len(c.Payload) == 0 {
			c.Payload = nil // a payload has no "absent" state
		}
		return &c
	case *Ack:
		c := *p
		c.Props = normProps(c.Props)
		return &c
	case *Subscribe:
		c := *p
		c.Props = normProps(c.Props)
		if len(c.Subs) == 0 {
			c.Subs = nil
		}
		return &c
	case *Suback:
		c := *p
		c.Props = normProps(c.Props)
		if len(c.Codes) == 0 {
			c.Codes = nil
		}
		return &c
	case *Unsubscribe:
		c := *p
		c.Props = normProps(c.Props)
		if len(c.Filters) == 0 {
			c.Filters = nil
		}
		return &c
	case *Unsuback:
		c := *p
		c.Props = normProps(c.Props)
		if len(c.Codes) == 0 {
			c.Codes = nil
		}
		return &c
	case *Disconnect:
		c := *p
		c.Props = normProps(c.Props)
		return &c
	case *Auth:
		c := *p
		c.Props = normProps(c.Props)
		return &c
	}
	return p
}
