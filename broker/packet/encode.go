package packet

import (
	"errors"
	"slices"
)

// Encoding errors. Append returns them for values that cannot be put on
// the wire; they are not *Error because no peer caused them.
var (
	errEncodeString   = errors.New("encoding packet: string or binary field over 65535 bytes")
	errEncodeTooLarge = errors.New("encoding packet: remaining length over 268435455 bytes")
	errEncodeSubIDs   = errors.New("encoding packet: more than one subscription identifier in SUBSCRIBE")
	errEncodeSubID    = errors.New("encoding packet: subscription identifier outside 1..268435455")
	errEncodeQoS      = errors.New("encoding packet: qos over 2")
	errEncodeRetainH  = errors.New("encoding packet: retain handling over 2")
	errEncodeEmpty    = errors.New("encoding packet: SUBSCRIBE or UNSUBSCRIBE without topic filters")
	errEncodeAckKind  = errors.New("encoding packet: Ack.Kind is not PUBACK, PUBREC, PUBREL or PUBCOMP")
	errEncodeVersion  = errors.New("encoding packet: unsupported protocol version")
	errEncodeType     = errors.New("encoding packet: unknown packet type")
	errEncodeAuthV3   = errors.New("encoding packet: AUTH does not exist in MQTT 3.1.1")
	errEncodePassword = errors.New("encoding packet: password without user name in MQTT 3.1.1")
)

// plan is the outcome of sizing a packet: its remaining length and the
// lengths of its property blocks, so Append computes them once.
type plan struct {
	header byte
	rem    int
	props  int
	will   int
}

// strLen is the encoded length of a length-prefixed field.
func strLen(b []byte, err *error) int {
	if len(b) > 65535 {
		*err = errEncodeString
	}
	return 2 + len(b)
}

// propBlock is the encoded length of a property block of size n.
func propBlock(n int) int { return varintSize(uint32(n)) + n }

// reasonTail sizes the optional reason code and properties that end v5
// acks and DISCONNECT: omitted when Success without properties.
func reasonTail(code ReasonCode, props int, alwaysProps bool) int {
	switch {
	case props > 0 || (alwaysProps && code != Success):
		return 1 + propBlock(props)
	case code != Success:
		return 1
	}
	return 0
}

func protocolName(version byte) string {
	if version == Version31 {
		return "MQIsdp"
	}
	return "MQTT"
}

// measure validates p for encoding and sizes it.
func measure(p Packet, version byte) (plan, error) {
	var pl plan
	var err error
	v5 := version == Version5
	switch version {
	case Version31, Version311, Version5:
	default:
		return pl, errEncodeVersion
	}
	n := 0
	switch p := p.(type) {
	case *Connect:
		pl.header = byte(CONNECT) << 4
		n = 2 + len(protocolName(version)) + 4 // level, flags, keep alive
		if v5 {
			pl.props, err = propsSize(&p.Props, propsConnect, false)
			n += propBlock(pl.props)
		}
		n += strLen(p.ClientID, &err)
		if p.WillFlag {
			if p.WillQoS > 2 {
				return pl, errEncodeQoS
			}
			if v5 {
				var werr error
				pl.will, werr = propsSize(&p.WillProps, propsWill, false)
				if werr != nil {
					return pl, werr
				}
				n += propBlock(pl.will)
			}
			n += strLen(p.WillTopic, &err) + strLen(p.WillPayload, &err)
		}
		user, pass := p.UsernameFlag || p.Username != nil, p.PasswordFlag || p.Password != nil
		if version == Version311 && pass && !user {
			return pl, errEncodePassword
		}
		if user {
			n += strLen(p.Username, &err)
		}
		if pass {
			n += strLen(p.Password, &err)
		}
	case *Connack:
		pl.header = byte(CONNACK) << 4
		n = 2
		if v5 {
			pl.props, err = propsSize(&p.Props, propsConnack, false)
			n += propBlock(pl.props)
		}
	case *Publish:
		if p.QoS > 2 {
			return pl, errEncodeQoS
		}
		pl.header = byte(PUBLISH)<<4 | p.QoS<<1
		if p.Dup && p.QoS > 0 {
			pl.header |= 0x08
		}
		if p.Retain {
			pl.header |= 0x01
		}
		if v5 {
			pl.props, err = propsSize(&p.Props, propsPublish, true)
			n = propBlock(pl.props)
		}
		n += strLen(p.Topic, &err) + len(p.Payload)
		if p.QoS > 0 {
			n += 2
		}
	case *Ack:
		switch p.Kind {
		case PUBACK, PUBREC, PUBCOMP:
			pl.header = byte(p.Kind) << 4
		case PUBREL:
			pl.header = byte(PUBREL)<<4 | 0x02
		default:
			return pl, errEncodeAckKind
		}
		n = 2
		if v5 {
			pl.props, err = propsSize(&p.Props, propsAck, false)
			n += reasonTail(p.ReasonCode, pl.props, false)
		}
	case *Subscribe:
		pl.header = byte(SUBSCRIBE)<<4 | 0x02
		if len(p.Subs) == 0 {
			return pl, errEncodeEmpty
		}
		n = 2
		if v5 {
			pl.props, err = propsSize(&p.Props, propsSubscribe, false)
			n += propBlock(pl.props)
		}
		for i := range p.Subs {
			s := &p.Subs[i]
			if s.QoS > 2 {
				return pl, errEncodeQoS
			}
			if v5 && s.RetainHandling > 2 {
				return pl, errEncodeRetainH
			}
			n += strLen(s.Filter, &err) + 1
		}
	case *Suback:
		pl.header = byte(SUBACK) << 4
		n = 2 + len(p.Codes)
		if v5 {
			pl.props, err = propsSize(&p.Props, propsAck, false)
			n += propBlock(pl.props)
		}
	case *Unsubscribe:
		pl.header = byte(UNSUBSCRIBE)<<4 | 0x02
		if len(p.Filters) == 0 {
			return pl, errEncodeEmpty
		}
		n = 2
		if v5 {
			pl.props, err = propsSize(&p.Props, propsUnsubscribe, false)
			n += propBlock(pl.props)
		}
		for _, f := range p.Filters {
			n += strLen(f, &err)
		}
	case *Unsuback:
		pl.header = byte(UNSUBACK) << 4
		n = 2
		if v5 {
			pl.props, err = propsSize(&p.Props, propsAck, false)
			n += propBlock(pl.props) + len(p.Codes)
		}
	case *Pingreq:
		pl.header = byte(PINGREQ) << 4
	case *Pingresp:
		pl.header = byte(PINGRESP) << 4
	case *Disconnect:
		pl.header = byte(DISCONNECT) << 4
		if v5 {
			pl.props, err = propsSize(&p.Props, propsDisconnect, false)
			n = reasonTail(p.ReasonCode, pl.props, false)
		}
	case *Auth:
		if !v5 {
			return pl, errEncodeAuthV3
		}
		pl.header = byte(AUTH) << 4
		pl.props, err = propsSize(&p.Props, propsAuth, false)
		n = reasonTail(p.ReasonCode, pl.props, true)
	default:
		return pl, errEncodeType
	}
	if err != nil {
		return pl, err
	}
	if n > maxVarint {
		return pl, errEncodeTooLarge
	}
	pl.rem = n
	return pl, nil
}

// encode appends p's fixed header and body as measured in pl.
func encode(dst []byte, p Packet, version byte, pl plan) []byte {
	v5 := version == Version5
	dst = slices.Grow(dst, 1+varintSize(uint32(pl.rem))+pl.rem)
	dst = append(dst, pl.header)
	dst = appendVarint(dst, uint32(pl.rem))
	switch p := p.(type) {
	case *Connect:
		name := protocolName(version)
		dst = appendU16(dst, uint16(len(name)))
		dst = append(dst, name...)
		dst = append(dst, version, connectFlags(p))
		dst = appendU16(dst, p.KeepAlive)
		if v5 {
			dst = appendProps(dst, &p.Props, propsConnect, pl.props)
		}
		dst = appendBinary(dst, p.ClientID)
		if p.WillFlag {
			if v5 {
				dst = appendProps(dst, &p.WillProps, propsWill, pl.will)
			}
			dst = appendBinary(dst, p.WillTopic)
			dst = appendBinary(dst, p.WillPayload)
		}
		if p.UsernameFlag || p.Username != nil {
			dst = appendBinary(dst, p.Username)
		}
		if p.PasswordFlag || p.Password != nil {
			dst = appendBinary(dst, p.Password)
		}
	case *Connack:
		flags, code := byte(0), p.ReasonCode
		if p.SessionPresent {
			flags = 1
		}
		if !v5 {
			code = V3ConnackCode(code)
		}
		dst = append(dst, flags, byte(code))
		if v5 {
			dst = appendProps(dst, &p.Props, propsConnack, pl.props)
		}
	case *Publish:
		dst = appendBinary(dst, p.Topic)
		if p.QoS > 0 {
			dst = appendU16(dst, p.PacketID)
		}
		if v5 {
			dst = appendProps(dst, &p.Props, propsPublish, pl.props)
		}
		dst = append(dst, p.Payload...)
	case *Ack:
		dst = appendU16(dst, p.PacketID)
		if v5 {
			dst = appendReasonTail(dst, p.ReasonCode, &p.Props, propsAck, pl, false)
		}
	case *Subscribe:
		dst = appendU16(dst, p.PacketID)
		if v5 {
			dst = appendProps(dst, &p.Props, propsSubscribe, pl.props)
		}
		for i := range p.Subs {
			s := &p.Subs[i]
			dst = appendBinary(dst, s.Filter)
			opts := s.QoS
			if v5 {
				opts |= s.RetainHandling << 4
				if s.NoLocal {
					opts |= 0x04
				}
				if s.RetainAsPublished {
					opts |= 0x08
				}
			}
			dst = append(dst, opts)
		}
	case *Suback:
		dst = appendU16(dst, p.PacketID)
		if v5 {
			dst = appendProps(dst, &p.Props, propsAck, pl.props)
		}
		for _, c := range p.Codes {
			if !v5 && c > GrantedQoS2 {
				c = UnspecifiedError // 3.1.1 knows only 0x80 for failure
			}
			dst = append(dst, byte(c))
		}
	case *Unsubscribe:
		dst = appendU16(dst, p.PacketID)
		if v5 {
			dst = appendProps(dst, &p.Props, propsUnsubscribe, pl.props)
		}
		for _, f := range p.Filters {
			dst = appendBinary(dst, f)
		}
	case *Unsuback:
		dst = appendU16(dst, p.PacketID)
		if v5 {
			dst = appendProps(dst, &p.Props, propsAck, pl.props)
			for _, c := range p.Codes {
				dst = append(dst, byte(c))
			}
		}
	case *Disconnect:
		if v5 {
			dst = appendReasonTail(dst, p.ReasonCode, &p.Props, propsDisconnect, pl, false)
		}
	case *Auth:
		dst = appendReasonTail(dst, p.ReasonCode, &p.Props, propsAuth, pl, true)
	}
	return dst
}

func connectFlags(c *Connect) byte {
	var f byte
	if c.CleanStart {
		f |= 0x02
	}
	if c.WillFlag {
		f |= 0x04 | c.WillQoS<<3
		if c.WillRetain {
			f |= 0x20
		}
	}
	if c.PasswordFlag || c.Password != nil {
		f |= 0x40
	}
	if c.UsernameFlag || c.Username != nil {
		f |= 0x80
	}
	return f
}

func appendReasonTail(dst []byte, code ReasonCode, p *Properties, allowed propSet, pl plan, alwaysProps bool) []byte {
	switch {
	case pl.props > 0 || (alwaysProps && code != Success):
		dst = append(dst, byte(code))
		return appendProps(dst, p, allowed, pl.props)
	case code != Success:
		return append(dst, byte(code))
	}
	return dst
}
