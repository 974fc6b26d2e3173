package packet

// ReasonCode is an MQTT 5 reason code (also used for 3.1.1 CONNACK return
// codes and SUBACK granted QoS values, see Connack and Suback).
type ReasonCode byte

// MQTT 5 reason codes (spec section 2.4).
const (
	Success                             ReasonCode = 0x00 // also NormalDisconnection, GrantedQoS0
	GrantedQoS1                         ReasonCode = 0x01
	GrantedQoS2                         ReasonCode = 0x02
	DisconnectWithWill                  ReasonCode = 0x04
	NoMatchingSubscribers               ReasonCode = 0x10
	NoSubscriptionExisted               ReasonCode = 0x11
	ContinueAuthentication              ReasonCode = 0x18
	ReAuthenticate                      ReasonCode = 0x19
	UnspecifiedError                    ReasonCode = 0x80
	MalformedPacket                     ReasonCode = 0x81
	ProtocolError                       ReasonCode = 0x82
	ImplementationSpecificError         ReasonCode = 0x83
	UnsupportedProtocolVersion          ReasonCode = 0x84
	ClientIdentifierNotValid            ReasonCode = 0x85
	BadUserNameOrPassword               ReasonCode = 0x86
	NotAuthorized                       ReasonCode = 0x87
	ServerUnavailable                   ReasonCode = 0x88
	ServerBusy                          ReasonCode = 0x89
	Banned                              ReasonCode = 0x8A
	ServerShuttingDown                  ReasonCode = 0x8B
	BadAuthenticationMethod             ReasonCode = 0x8C
	KeepAliveTimeout                    ReasonCode = 0x8D
	SessionTakenOver                    ReasonCode = 0x8E
	TopicFilterInvalid                  ReasonCode = 0x8F
	TopicNameInvalid                    ReasonCode = 0x90
	PacketIdentifierInUse               ReasonCode = 0x91
	PacketIdentifierNotFound            ReasonCode = 0x92
	ReceiveMaximumExceeded              ReasonCode = 0x93
	TopicAliasInvalid                   ReasonCode = 0x94
	PacketTooLarge                      ReasonCode = 0x95
	MessageRateTooHigh                  ReasonCode = 0x96
	QuotaExceeded                       ReasonCode = 0x97
	AdministrativeAction                ReasonCode = 0x98
	PayloadFormatInvalid                ReasonCode = 0x99
	RetainNotSupported                  ReasonCode = 0x9A
	QoSNotSupported                     ReasonCode = 0x9B
	UseAnotherServer                    ReasonCode = 0x9C
	ServerMoved                         ReasonCode = 0x9D
	SharedSubscriptionsNotSupported     ReasonCode = 0x9E
	ConnectionRateExceeded              ReasonCode = 0x9F
	MaximumConnectTime                  ReasonCode = 0xA0
	SubscriptionIdentifiersNotSupported ReasonCode = 0xA1
	WildcardSubscriptionsNotSupported   ReasonCode = 0xA2
)

// Aliases with the same numeric value as another code.
const (
	NormalDisconnection = Success
	GrantedQoS0         = Success
)

// MQTT 3.1.1 CONNACK return codes.
const (
	V3Accepted                    ReasonCode = 0
	V3UnacceptableProtocolVersion ReasonCode = 1
	V3IdentifierRejected          ReasonCode = 2
	V3ServerUnavailable           ReasonCode = 3
	V3BadUsernameOrPassword       ReasonCode = 4
	V3NotAuthorized               ReasonCode = 5
)

// Error is a decoding or validation failure carrying the reason code the
// spec requires the server to send (in DISCONNECT or CONNACK) before closing.
type Error struct {
	Code ReasonCode
	Msg  string
}

// Error returns the message prefixed with "mqtt: ".
func (e *Error) Error() string { return "mqtt: " + e.Msg }
