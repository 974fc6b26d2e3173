// Package packet encodes and decodes MQTT 3.1.1 and 5.0 control packets.
//
// Decoding is zero-copy: byte slices in a decoded packet alias the Reader's
// buffer and are valid only until the next call to ReadPacket. Callers that
// keep data past that point copy it. Encoding appends to a caller-provided
// slice so steady-state encoding allocates nothing.
package packet

// Protocol versions as carried in CONNECT's protocol level byte.
const (
	Version31  byte = 3 // MQIsdp, accepted for compatibility.
	Version311 byte = 4
	Version5   byte = 5
)

// Type is an MQTT control packet type (the high nibble of the fixed header).
type Type byte

// Control packet types.
const (
	CONNECT     Type = 1
	CONNACK     Type = 2
	PUBLISH     Type = 3
	PUBACK      Type = 4
	PUBREC      Type = 5
	PUBREL      Type = 6
	PUBCOMP     Type = 7
	SUBSCRIBE   Type = 8
	SUBACK      Type = 9
	UNSUBSCRIBE Type = 10
	UNSUBACK    Type = 11
	PINGREQ     Type = 12
	PINGRESP    Type = 13
	DISCONNECT  Type = 14
	AUTH        Type = 15
)

// Packet is any decoded control packet. The concrete types are the pointer
// types below (*Connect, *Publish, ...).
type Packet interface {
	// Type reports the control packet type.
	Type() Type
}

// UserProperty is one v5 user property (a name/value string pair).
// Name and Value alias the read buffer after decoding.
type UserProperty struct {
	Name, Value []byte
}

// Property presence bits for Properties.Present. Scalar properties whose
// zero value is meaningful are only encoded when their bit is set.
const (
	PropPayloadFormat uint32 = 1 << iota
	PropMessageExpiry
	PropSessionExpiry
	PropReceiveMaximum
	PropMaximumQoS
	PropRetainAvailable
	PropMaximumPacketSize
	PropTopicAliasMaximum
	PropTopicAlias
	PropRequestResponseInfo
	PropRequestProblemInfo
	PropWildcardSubAvailable
	PropSubIDAvailable
	PropSharedSubAvailable
	PropServerKeepAlive
	PropWillDelayInterval
)

// Properties holds every MQTT 5 property. Which ones are legal depends on
// the packet; the decoder rejects a property the packet does not allow
// (or an unknown one) with MalformedPacket and a duplicate
// of a single-valued property with ProtocolError.
//
// Byte-slice fields alias the read buffer after decoding; a nil slice means
// absent. Scalar fields are meaningful only when their Prop* bit is set in
// Present.
type Properties struct {
	Present uint32

	PayloadFormat        byte           // 0x01
	MessageExpiry        uint32         // 0x02
	ContentType          []byte         // 0x03
	ResponseTopic        []byte         // 0x08
	CorrelationData      []byte         // 0x09
	SubscriptionIDs      []uint32       // 0x0B, repeated in PUBLISH, single in SUBSCRIBE
	SessionExpiry        uint32         // 0x11
	AssignedClientID     []byte         // 0x12
	ServerKeepAlive      uint16         // 0x13
	AuthMethod           []byte         // 0x15
	AuthData             []byte         // 0x16
	RequestProblemInfo   byte           // 0x17
	WillDelayInterval    uint32         // 0x18
	RequestResponseInfo  byte           // 0x19
	ResponseInfo         []byte         // 0x1A
	ServerReference      []byte         // 0x1C
	ReasonString         []byte         // 0x1F
	ReceiveMaximum       uint16         // 0x21
	TopicAliasMaximum    uint16         // 0x22
	TopicAlias           uint16         // 0x23
	MaximumQoS           byte           // 0x24
	RetainAvailable      byte           // 0x25
	User                 []UserProperty // 0x26
	MaximumPacketSize    uint32         // 0x27
	WildcardSubAvailable byte           // 0x28
	SubIDAvailable       byte           // 0x29
	SharedSubAvailable   byte           // 0x2A
}

// Has reports whether the scalar property bit is present.
func (p *Properties) Has(bit uint32) bool { return p.Present&bit != 0 }

// Set stores a scalar property's presence bit.
func (p *Properties) Set(bit uint32) { p.Present |= bit }

// Reset clears p for reuse, keeping slice capacity.
func (p *Properties) Reset() {
	user, subs := p.User[:0], p.SubscriptionIDs[:0]
	*p = Properties{User: user, SubscriptionIDs: subs}
}

// Connect is the CONNECT packet.
type Connect struct {
	ProtocolName []byte // "MQTT" or "MQIsdp"
	Version      byte   // Version31, Version311 or Version5
	CleanStart   bool   // clean session in 3.1.1
	KeepAlive    uint16 // seconds
	ClientID     []byte
	UsernameFlag bool
	Username     []byte
	PasswordFlag bool
	Password     []byte
	WillFlag     bool
	WillQoS      byte
	WillRetain   bool
	WillTopic    []byte
	WillPayload  []byte
	WillProps    Properties // v5 only
	Props        Properties // v5 only
}

// Connack is the CONNACK packet. ReasonCode holds the v5 reason code or
// the 3.1.1 return code (0..5) depending on the version it is encoded for.
type Connack struct {
	SessionPresent bool
	ReasonCode     ReasonCode
	Props          Properties
}

// Publish is the PUBLISH packet.
type Publish struct {
	Dup      bool
	QoS      byte
	Retain   bool
	Topic    []byte // may be empty in v5 when a topic alias is set
	PacketID uint16 // present only when QoS > 0
	Props    Properties
	Payload  []byte
}

// Ack is PUBACK, PUBREC, PUBREL or PUBCOMP; Kind says which. In v5 the
// reason code and properties are omitted on the wire when the code is
// Success and there are no properties.
type Ack struct {
	Kind       Type
	PacketID   uint16
	ReasonCode ReasonCode
	Props      Properties
}

// Subscription is one topic filter entry in SUBSCRIBE.
type Subscription struct {
	Filter            []byte
	QoS               byte
	NoLocal           bool // v5
	RetainAsPublished bool // v5
	RetainHandling    byte // v5: 0, 1 or 2
}

// Subscribe is the SUBSCRIBE packet.
type Subscribe struct {
	PacketID uint16
	Props    Properties
	Subs     []Subscription
}

// Suback is the SUBACK packet. Codes are v5 reason codes or, for 3.1.1,
// the granted QoS (0, 1, 2) or 0x80 for failure.
type Suback struct {
	PacketID uint16
	Props    Properties
	Codes    []ReasonCode
}

// Unsubscribe is the UNSUBSCRIBE packet.
type Unsubscribe struct {
	PacketID uint16
	Props    Properties
	Filters  [][]byte
}

// Unsuback is the UNSUBACK packet. Codes is empty for 3.1.1.
type Unsuback struct {
	PacketID uint16
	Props    Properties
	Codes    []ReasonCode
}

// Pingreq is the PINGREQ packet.
type Pingreq struct{}

// Pingresp is the PINGRESP packet.
type Pingresp struct{}

// Disconnect is the DISCONNECT packet (reason and properties are v5 only).
type Disconnect struct {
	ReasonCode ReasonCode
	Props      Properties
}

// Auth is the v5 AUTH packet.
type Auth struct {
	ReasonCode ReasonCode
	Props      Properties
}

// Type returns CONNECT.
func (*Connect) Type() Type { return CONNECT }

// Type returns CONNACK.
func (*Connack) Type() Type { return CONNACK }

// Type returns PUBLISH.
func (*Publish) Type() Type { return PUBLISH }

// Type returns the Ack kind.
func (a *Ack) Type() Type { return a.Kind }

// Type returns SUBSCRIBE.
func (*Subscribe) Type() Type { return SUBSCRIBE }

// Type returns SUBACK.
func (*Suback) Type() Type { return SUBACK }

// Type returns UNSUBSCRIBE.
func (*Unsubscribe) Type() Type { return UNSUBSCRIBE }

// Type returns UNSUBACK.
func (*Unsuback) Type() Type { return UNSUBACK }

// Type returns PINGREQ.
func (*Pingreq) Type() Type { return PINGREQ }

// Type returns PINGRESP.
func (*Pingresp) Type() Type { return PINGRESP }

// Type returns DISCONNECT.
func (*Disconnect) Type() Type { return DISCONNECT }

// Type returns AUTH.
func (*Auth) Type() Type { return AUTH }
