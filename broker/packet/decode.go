package packet

// slots holds the structs that decoding fills. A Reader keeps one set and
// reuses it for every packet; Decode uses a fresh set per call.
type slots struct {
	connect     *Connect
	connack     *Connack
	publish     *Publish
	ack         *Ack
	subscribe   *Subscribe
	suback      *Suback
	unsubscribe *Unsubscribe
	unsuback    *Unsuback
	disconnect  *Disconnect
	auth        *Auth
}

// Shared values for the packets without content.
var (
	thePingreq  = &Pingreq{}
	thePingresp = &Pingresp{}
)

var (
	errReservedType    = &Error{Code: MalformedPacket, Msg: "reserved packet type"}
	errFlags           = &Error{Code: MalformedPacket, Msg: "MQTT-2.1.3-1 invalid fixed header flags"}
	errNoVersion       = &Error{Code: ProtocolError, Msg: "MQTT-3.1.0-1 packet before CONNECT (protocol version unknown)"}
	errUnsupported     = &Error{Code: UnsupportedProtocolVersion, Msg: "MQTT-3.1.2-1 unsupported protocol name or level"}
	errLength          = &Error{Code: MalformedPacket, Msg: "remaining length does not match the packet"}
	errQoS3            = &Error{Code: MalformedPacket, Msg: "MQTT-3.3.1-4 qos 3"}
	errDupQoS0         = &Error{Code: MalformedPacket, Msg: "MQTT-3.3.1-2 dup set on a qos 0 publish"}
	errEmptyTopic      = &Error{Code: ProtocolError, Msg: "MQTT-4.7.3-1 empty topic name without topic alias"}
	errReasonCode      = &Error{Code: ProtocolError, Msg: "reason code not allowed in this packet"}
	errNoSubscriptions = &Error{Code: ProtocolError, Msg: "MQTT-3.8.3-2 subscribe without topic filters"}
	errNoUnsubscribes  = &Error{Code: ProtocolError, Msg: "MQTT-3.10.3-2 unsubscribe without topic filters"}
	errNoCodes         = &Error{Code: ProtocolError, Msg: "ack without reason codes"}
)

// parseHeader parses the fixed header at the start of b. It returns
// hlen == 0 and no error when b holds only part of the header.
func parseHeader(b []byte) (rem uint32, hlen int, err error) {
	if len(b) < 2 {
		return 0, 0, nil
	}
	rem, n, err := parseVarint(b[1:])
	if err != nil || n == 0 {
		return 0, 0, err
	}
	return rem, 1 + n, nil
}

// checkFlags validates the fixed header flags of every type but PUBLISH
// [MQTT-2.2.2-1/2 in 3.1.1, MQTT-2.1.3-1 in 5.0].
func checkFlags(t Type, flags, version byte) error {
	want := byte(0)
	switch t {
	case PUBREL, SUBSCRIBE, UNSUBSCRIBE: // [MQTT-3.6.1-1, MQTT-3.8.1-1, MQTT-3.10.1-1]
		want = 0x02
		// MQTT 3.1 clients may set DUP on retransmissions of these.
		if version == Version31 && flags == 0x0A {
			return nil
		}
	}
	if flags != want {
		return errFlags
	}
	return nil
}

// decodePacket decodes the whole packet b whose fixed header is hlen
// bytes long. CONNECT carries its own version; every other packet is
// decoded for version.
func decodePacket(s *slots, b []byte, hlen int, version byte) (Packet, error) {
	t := Type(b[0] >> 4)
	flags := b[0] & 0x0F
	d := dec{b: b, pos: hlen}
	if t == CONNECT {
		if flags != 0 {
			return nil, errFlags
		}
		if s.connect == nil {
			s.connect = new(Connect)
		}
		if err := decodeConnect(s.connect, &d); err != nil {
			return nil, err
		}
		return s.connect, nil
	}
	if t == 0 || (t == AUTH && version != Version5) {
		return nil, errReservedType
	}
	switch version {
	case Version31, Version311, Version5:
	default:
		return nil, errNoVersion
	}
	v5 := version == Version5
	if t == PUBLISH {
		if s.publish == nil {
			s.publish = new(Publish)
		}
		if err := decodePublish(s.publish, &d, flags, v5); err != nil {
			return nil, err
		}
		return s.publish, nil
	}
	if err := checkFlags(t, flags, version); err != nil {
		return nil, err
	}
	var p Packet
	var err error
	switch t {
	case CONNACK:
		if s.connack == nil {
			s.connack = new(Connack)
		}
		p, err = s.connack, decodeConnack(s.connack, &d, v5)
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		if s.ack == nil {
			s.ack = new(Ack)
		}
		p, err = s.ack, decodeAck(s.ack, &d, t, v5)
	case SUBSCRIBE:
		if s.subscribe == nil {
			s.subscribe = new(Subscribe)
		}
		p, err = s.subscribe, decodeSubscribe(s.subscribe, &d, v5)
	case SUBACK:
		if s.suback == nil {
			s.suback = new(Suback)
		}
		p, err = s.suback, decodeSuback(s.suback, &d, v5)
	case UNSUBSCRIBE:
		if s.unsubscribe == nil {
			s.unsubscribe = new(Unsubscribe)
		}
		p, err = s.unsubscribe, decodeUnsubscribe(s.unsubscribe, &d, v5)
	case UNSUBACK:
		if s.unsuback == nil {
			s.unsuback = new(Unsuback)
		}
		p, err = s.unsuback, decodeUnsuback(s.unsuback, &d, v5)
	case PINGREQ:
		p, err = thePingreq, d.end()
	case PINGRESP:
		p, err = thePingresp, d.end()
	case DISCONNECT:
		if s.disconnect == nil {
			s.disconnect = new(Disconnect)
		}
		dc := s.disconnect
		dc.ReasonCode = Success
		clearProps(&dc.Props)
		if v5 {
			dc.ReasonCode, err = decodeReasonAndProps(&d, &dc.Props, propsDisconnect, rcDisconnect)
		} else {
			err = d.end()
		}
		p = dc
	default: // AUTH, v5 only (checked above)
		if s.auth == nil {
			s.auth = new(Auth)
		}
		a := s.auth
		a.ReasonCode = Success
		clearProps(&a.Props)
		a.ReasonCode, err = decodeReasonAndProps(&d, &a.Props, propsAuth, rcAuth)
		p = a
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// clearProps is Properties.Reset without building a temporary struct
// (which costs a 300-byte copy per packet on the hot path).
func clearProps(p *Properties) {
	user, subs := p.User[:0], p.SubscriptionIDs[:0]
	*p = Properties{}
	p.User, p.SubscriptionIDs = user, subs
}

// drop clears every reference the reused structs hold into the read
// buffer, so a buffer returned to the pool (or dropped) is not kept alive
// by an idle connection's last packet.
func (s *slots) drop() {
	if p := s.publish; p != nil {
		p.Topic, p.Payload = nil, nil
		dropProps(&p.Props)
	}
	if a := s.ack; a != nil {
		dropProps(&a.Props)
	}
	if sb := s.subscribe; sb != nil {
		clear(sb.Subs[:cap(sb.Subs)])
		dropProps(&sb.Props)
	}
	if sa := s.suback; sa != nil {
		dropProps(&sa.Props)
	}
	if u := s.unsubscribe; u != nil {
		clear(u.Filters[:cap(u.Filters)])
		dropProps(&u.Props)
	}
	if u := s.unsuback; u != nil {
		dropProps(&u.Props)
	}
	if d := s.disconnect; d != nil {
		dropProps(&d.Props)
	}
	if a := s.auth; a != nil {
		dropProps(&a.Props)
	}
	s.connect, s.connack = nil, nil
}

func dropProps(p *Properties) {
	clear(p.User[:cap(p.User)])
	clearProps(p)
}

func decodePublish(p *Publish, d *dec, flags byte, v5 bool) error {
	p.Dup, p.Retain, p.Topic, p.PacketID, p.Payload = false, false, nil, 0, nil
	clearProps(&p.Props)
	p.QoS = flags >> 1 & 0x03
	if p.QoS == 3 {
		return errQoS3
	}
	p.Dup = flags&0x08 != 0
	if p.Dup && p.QoS == 0 {
		return errDupQoS0
	}
	p.Retain = flags&0x01 != 0
	topic, err := d.binary()
	if err != nil {
		return err
	}
	if len(topic) > 0 {
		if err := checkTopicName(topic); err != nil {
			return err
		}
	}
	p.Topic = topic
	if p.QoS > 0 {
		if p.PacketID, err = d.packetID(); err != nil {
			return err
		}
	}
	if v5 {
		if err := decodeProps(d, &p.Props, propsPublish, true); err != nil {
			return err
		}
	}
	if len(topic) == 0 && !p.Props.Has(PropTopicAlias) {
		return errEmptyTopic
	}
	p.Payload = d.rest()
	return nil
}

func decodeAck(a *Ack, d *dec, kind Type, v5 bool) error {
	a.Kind, a.PacketID, a.ReasonCode = kind, 0, Success
	clearProps(&a.Props)
	var err error
	if a.PacketID, err = d.packetID(); err != nil {
		return err
	}
	if !v5 || d.remaining() == 0 {
		return d.end()
	}
	allowed := rcPuback
	if kind == PUBREL || kind == PUBCOMP {
		allowed = rcPubrel
	}
	a.ReasonCode, err = decodeReasonAndProps(d, &a.Props, propsAck, allowed)
	return err
}

// decodeReasonAndProps reads the optional reason code and property block
// that end v5 acks, DISCONNECT and AUTH: absent means Success and no
// properties, and a lone reason code means no properties.
func decodeReasonAndProps(d *dec, p *Properties, props propSet, codes uint8) (ReasonCode, error) {
	if d.remaining() == 0 {
		return Success, nil
	}
	c, _ := d.byte()
	code := ReasonCode(c)
	if !rcAllowed(code, codes) {
		return code, errReasonCode
	}
	if d.remaining() > 0 {
		if err := decodeProps(d, p, props, false); err != nil {
			return code, err
		}
	}
	return code, d.end()
}

func decodeSubscribe(s *Subscribe, d *dec, v5 bool) error {
	s.PacketID, s.Subs = 0, s.Subs[:0]
	clearProps(&s.Props)
	var err error
	if s.PacketID, err = d.packetID(); err != nil {
		return err
	}
	if v5 {
		if err := decodeProps(d, &s.Props, propsSubscribe, false); err != nil {
			return err
		}
	}
	if d.remaining() == 0 {
		return errNoSubscriptions // [MQTT-3.8.3-3 in 3.1.1]
	}
	for d.remaining() > 0 {
		filter, err := d.str()
		if err != nil {
			return err
		}
		opts, err := d.byte()
		if err != nil {
			return err
		}
		sub := Subscription{Filter: filter, QoS: opts & 0x03}
		if v5 {
			if opts&0xC0 != 0 {
				return malformed("MQTT-3.8.3-5 subscription options reserved bits set")
			}
			sub.NoLocal = opts&0x04 != 0
			sub.RetainAsPublished = opts&0x08 != 0
			sub.RetainHandling = opts >> 4 & 0x03
			if sub.RetainHandling == 3 {
				return protocolErr("retain handling 3")
			}
			if sub.NoLocal && isShared(filter) {
				return protocolErr("MQTT-3.8.3-4 no local on a shared subscription")
			}
		} else if opts&0xFC != 0 {
			return malformed("MQTT-3-8.3-4 subscription options reserved bits set")
		}
		if sub.QoS == 3 {
			return malformed("MQTT-3-8.3-4 subscription qos 3")
		}
		s.Subs = append(s.Subs, sub)
	}
	return nil
}

// isShared reports whether filter names a shared subscription.
func isShared(filter []byte) bool {
	return len(filter) >= 7 && string(filter[:7]) == "$share/"
}

func decodeSuback(s *Suback, d *dec, v5 bool) error {
	s.PacketID, s.Codes = 0, s.Codes[:0]
	clearProps(&s.Props)
	var err error
	if s.PacketID, err = d.packetID(); err != nil {
		return err
	}
	allowed := rcSubackV3
	if v5 {
		allowed = rcSuback
		if err := decodeProps(d, &s.Props, propsAck, false); err != nil {
			return err
		}
	}
	if d.remaining() == 0 {
		return errNoCodes
	}
	for _, c := range d.rest() {
		if !rcAllowed(ReasonCode(c), allowed) {
			return errReasonCode
		}
		s.Codes = append(s.Codes, ReasonCode(c))
	}
	return nil
}

func decodeUnsubscribe(u *Unsubscribe, d *dec, v5 bool) error {
	u.PacketID, u.Filters = 0, u.Filters[:0]
	clearProps(&u.Props)
	var err error
	if u.PacketID, err = d.packetID(); err != nil {
		return err
	}
	if v5 {
		if err := decodeProps(d, &u.Props, propsUnsubscribe, false); err != nil {
			return err
		}
	}
	if d.remaining() == 0 {
		return errNoUnsubscribes
	}
	for d.remaining() > 0 {
		f, err := d.str()
		if err != nil {
			return err
		}
		u.Filters = append(u.Filters, f)
	}
	return nil
}

func decodeUnsuback(u *Unsuback, d *dec, v5 bool) error {
	u.PacketID, u.Codes = 0, u.Codes[:0]
	clearProps(&u.Props)
	var err error
	if u.PacketID, err = d.packetID(); err != nil {
		return err
	}
	if !v5 {
		return d.end()
	}
	if err := decodeProps(d, &u.Props, propsAck, false); err != nil {
		return err
	}
	if d.remaining() == 0 {
		return errNoCodes
	}
	for _, c := range d.rest() {
		if !rcAllowed(ReasonCode(c), rcUnsuback) {
			return errReasonCode
		}
		u.Codes = append(u.Codes, ReasonCode(c))
	}
	return nil
}
