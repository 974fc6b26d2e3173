package packet

import "strconv"

var typeNames = [16]string{
	"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
	"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH",
}

// String returns the packet type's name as the spec writes it ("PUBLISH").
func (t Type) String() string {
	if t < 16 {
		return typeNames[t]
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Which packets may carry a reason code (bit flags in rcTable).
const (
	rcConnack uint8 = 1 << iota
	rcPuback        // PUBACK, PUBREC
	rcPubrel        // PUBREL, PUBCOMP
	rcSuback
	rcUnsuback
	rcDisconnect
	rcAuth
	rcSubackV3 // 3.1.1 SUBACK return codes
)

type rcInfo struct {
	name    string
	packets uint8
}

// rcTable lists every MQTT 5 reason code with the packets allowed to
// carry it (MQTT 5 section 2.4 and the per-packet tables).
var rcTable = [256]rcInfo{
	0x00: {"success", rcConnack | rcPuback | rcPubrel | rcSuback | rcUnsuback | rcDisconnect | rcAuth | rcSubackV3},
	0x01: {"granted qos 1", rcSuback | rcSubackV3},
	0x02: {"granted qos 2", rcSuback | rcSubackV3},
	0x04: {"disconnect with will message", rcDisconnect},
	0x10: {"no matching subscribers", rcPuback},
	0x11: {"no subscription existed", rcUnsuback},
	0x18: {"continue authentication", rcAuth},
	0x19: {"re-authenticate", rcAuth},
	0x80: {"unspecified error", rcConnack | rcPuback | rcSuback | rcUnsuback | rcDisconnect | rcSubackV3},
	0x81: {"malformed packet", rcConnack | rcDisconnect},
	0x82: {"protocol error", rcConnack | rcDisconnect},
	0x83: {"implementation specific error", rcConnack | rcPuback | rcSuback | rcUnsuback | rcDisconnect},
	0x84: {"unsupported protocol version", rcConnack},
	0x85: {"client identifier not valid", rcConnack},
	0x86: {"bad user name or password", rcConnack},
	0x87: {"not authorized", rcConnack | rcPuback | rcSuback | rcUnsuback | rcDisconnect},
	0x88: {"server unavailable", rcConnack},
	0x89: {"server busy", rcConnack | rcDisconnect},
	0x8A: {"banned", rcConnack},
	0x8B: {"server shutting down", rcDisconnect},
	0x8C: {"bad authentication method", rcConnack | rcDisconnect},
	0x8D: {"keep alive timeout", rcDisconnect},
	0x8E: {"session taken over", rcDisconnect},
	0x8F: {"topic filter invalid", rcSuback | rcUnsuback | rcDisconnect},
	0x90: {"topic name invalid", rcConnack | rcPuback | rcDisconnect},
	0x91: {"packet identifier in use", rcPuback | rcSuback | rcUnsuback},
	0x92: {"packet identifier not found", rcPubrel},
	0x93: {"receive maximum exceeded", rcDisconnect},
	0x94: {"topic alias invalid", rcDisconnect},
	0x95: {"packet too large", rcConnack | rcDisconnect},
	0x96: {"message rate too high", rcDisconnect},
	0x97: {"quota exceeded", rcConnack | rcPuback | rcSuback | rcDisconnect},
	0x98: {"administrative action", rcDisconnect},
	0x99: {"payload format invalid", rcConnack | rcPuback | rcDisconnect},
	0x9A: {"retain not supported", rcConnack | rcDisconnect},
	0x9B: {"qos not supported", rcConnack | rcDisconnect},
	0x9C: {"use another server", rcConnack | rcDisconnect},
	0x9D: {"server moved", rcConnack | rcDisconnect},
	0x9E: {"shared subscriptions not supported", rcSuback | rcDisconnect},
	0x9F: {"connection rate exceeded", rcConnack | rcDisconnect},
	0xA0: {"maximum connect time", rcDisconnect},
	0xA1: {"subscription identifiers not supported", rcSuback | rcDisconnect},
	0xA2: {"wildcard subscriptions not supported", rcSuback | rcDisconnect},
}

// rcAllowed reports whether code may appear in the packets of set.
func rcAllowed(code ReasonCode, set uint8) bool { return rcTable[code].packets&set != 0 }

// String returns the MQTT 5 name of the reason code ("quota exceeded").
// Codes sharing a value (0x00 is also normal disconnection and granted
// QoS 0) print under their first name.
func (c ReasonCode) String() string {
	if n := rcTable[c].name; n != "" {
		return n
	}
	return "reason code 0x" + strconv.FormatUint(uint64(c), 16)
}

// IsError reports whether c signals a failure (codes 0x80 and above).
func (c ReasonCode) IsError() bool { return c >= 0x80 }

// V3ConnackCode maps an MQTT 5 CONNACK reason code to the nearest 3.1.1
// return code; 3.1.1 codes (0..5) are returned unchanged. Append applies
// it when encoding a CONNACK for 3.1.1, so the broker may use v5 codes
// throughout.
func V3ConnackCode(c ReasonCode) ReasonCode {
	switch c {
	case V3Accepted, V3UnacceptableProtocolVersion, V3IdentifierRejected,
		V3ServerUnavailable, V3BadUsernameOrPassword, V3NotAuthorized:
		return c
	case UnsupportedProtocolVersion:
		return V3UnacceptableProtocolVersion
	case ClientIdentifierNotValid:
		return V3IdentifierRejected
	case BadUserNameOrPassword:
		return V3BadUsernameOrPassword
	case NotAuthorized, Banned, BadAuthenticationMethod:
		return V3NotAuthorized
	default:
		return V3ServerUnavailable
	}
}
