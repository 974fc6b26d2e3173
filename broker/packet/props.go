package packet

// Property identifiers (MQTT 5 section 2.2.2.2).
const (
	idPayloadFormat        = 0x01
	idMessageExpiry        = 0x02
	idContentType          = 0x03
	idResponseTopic        = 0x08
	idCorrelationData      = 0x09
	idSubscriptionID       = 0x0B
	idSessionExpiry        = 0x11
	idAssignedClientID     = 0x12
	idServerKeepAlive      = 0x13
	idAuthMethod           = 0x15
	idAuthData             = 0x16
	idRequestProblemInfo   = 0x17
	idWillDelayInterval    = 0x18
	idRequestResponseInfo  = 0x19
	idResponseInfo         = 0x1A
	idServerReference      = 0x1C
	idReasonString         = 0x1F
	idReceiveMaximum       = 0x21
	idTopicAliasMaximum    = 0x22
	idTopicAlias           = 0x23
	idMaximumQoS           = 0x24
	idRetainAvailable      = 0x25
	idUser                 = 0x26
	idMaximumPacketSize    = 0x27
	idWildcardSubAvailable = 0x28
	idSubIDAvailable       = 0x29
	idSharedSubAvailable   = 0x2A
)

// propSet is a set of property identifiers (all identifiers are < 64).
type propSet uint64

func ids(list ...byte) propSet {
	var s propSet
	for _, id := range list {
		s |= 1 << id
	}
	return s
}

func (s propSet) has(id byte) bool { return id < 64 && s&(1<<id) != 0 }

// Which properties each packet allows (MQTT 5 table 2-4).
var (
	propsConnect = ids(idSessionExpiry, idAuthMethod, idAuthData, idRequestProblemInfo,
		idRequestResponseInfo, idReceiveMaximum, idTopicAliasMaximum, idUser, idMaximumPacketSize)
	propsWill = ids(idPayloadFormat, idMessageExpiry, idContentType, idResponseTopic,
		idCorrelationData, idWillDelayInterval, idUser)
	propsConnack = ids(idSessionExpiry, idAssignedClientID, idServerKeepAlive, idAuthMethod,
		idAuthData, idResponseInfo, idServerReference, idReasonString, idReceiveMaximum,
		idTopicAliasMaximum, idMaximumQoS, idRetainAvailable, idUser, idMaximumPacketSize,
		idWildcardSubAvailable, idSubIDAvailable, idSharedSubAvailable)
	propsPublish = ids(idPayloadFormat, idMessageExpiry, idContentType, idResponseTopic,
		idCorrelationData, idSubscriptionID, idTopicAlias, idUser)
	propsAck         = ids(idReasonString, idUser) // PUBACK..PUBCOMP, SUBACK, UNSUBACK
	propsSubscribe   = ids(idSubscriptionID, idUser)
	propsUnsubscribe = ids(idUser)
	propsDisconnect  = ids(idSessionExpiry, idServerReference, idReasonString, idUser)
	propsAuth        = ids(idAuthMethod, idAuthData, idReasonString, idUser)
)

// Property value types.
const (
	ptByte = iota + 1
	ptU16
	ptU32
	ptVarint
	ptString
	ptBinary
	ptPair
)

// propInfo describes one property: its wire type and, for scalars, its
// presence bit in Properties.Present.
type propInfo struct {
	typ byte
	bit uint32
}

var propTable = [64]propInfo{
	idPayloadFormat:        {ptByte, PropPayloadFormat},
	idMessageExpiry:        {ptU32, PropMessageExpiry},
	idContentType:          {ptString, 0},
	idResponseTopic:        {ptString, 0},
	idCorrelationData:      {ptBinary, 0},
	idSubscriptionID:       {ptVarint, 0},
	idSessionExpiry:        {ptU32, PropSessionExpiry},
	idAssignedClientID:     {ptString, 0},
	idServerKeepAlive:      {ptU16, PropServerKeepAlive},
	idAuthMethod:           {ptString, 0},
	idAuthData:             {ptBinary, 0},
	idRequestProblemInfo:   {ptByte, PropRequestProblemInfo},
	idWillDelayInterval:    {ptU32, PropWillDelayInterval},
	idRequestResponseInfo:  {ptByte, PropRequestResponseInfo},
	idResponseInfo:         {ptString, 0},
	idServerReference:      {ptString, 0},
	idReasonString:         {ptString, 0},
	idReceiveMaximum:       {ptU16, PropReceiveMaximum},
	idTopicAliasMaximum:    {ptU16, PropTopicAliasMaximum},
	idTopicAlias:           {ptU16, PropTopicAlias},
	idMaximumQoS:           {ptByte, PropMaximumQoS},
	idRetainAvailable:      {ptByte, PropRetainAvailable},
	idUser:                 {ptPair, 0},
	idMaximumPacketSize:    {ptU32, PropMaximumPacketSize},
	idWildcardSubAvailable: {ptByte, PropWildcardSubAvailable},
	idSubIDAvailable:       {ptByte, PropSubIDAvailable},
	idSharedSubAvailable:   {ptByte, PropSharedSubAvailable},
}

var (
	errPropUnknown   = &Error{Code: MalformedPacket, Msg: "unknown property identifier"}
	errPropNotHere   = &Error{Code: MalformedPacket, Msg: "property not allowed in this packet"}
	errPropDuplicate = &Error{Code: ProtocolError, Msg: "property included more than once"}
	errPropLength    = &Error{Code: MalformedPacket, Msg: "property length exceeds the packet"}
	errPropBool      = &Error{Code: ProtocolError, Msg: "property value other than 0 or 1"}
	errPropZero      = &Error{Code: ProtocolError, Msg: "property value 0 is not allowed"}
	errTopicAlias0   = &Error{Code: TopicAliasInvalid, Msg: "MQTT-3.3.2-8 topic alias 0"}
	errAuthDataOnly  = &Error{Code: ProtocolError, Msg: "authentication data without authentication method"}
	errSubIDRange    = &Error{Code: ProtocolError, Msg: "subscription identifier 0"}
)

// decodeProps reads a property block (length then properties) into p,
// which the caller has reset. allowed is the packet's property set;
// multiSubID permits repeated Subscription Identifiers (PUBLISH).
func decodeProps(d *dec, p *Properties, allowed propSet, multiSubID bool) error {
	n, err := d.varint()
	if err != nil {
		return err
	}
	if uint32(d.remaining()) < n {
		return errPropLength
	}
	end := d.pos + int(n)
	pd := dec{b: d.b[:end], pos: d.pos}
	d.pos = end
	var seen propSet
	for pd.pos < end {
		id32, err := pd.varint()
		if err != nil {
			return err
		}
		if id32 >= 64 || propTable[id32].typ == 0 {
			return errPropUnknown
		}
		id := byte(id32)
		if !allowed.has(id) {
			return errPropNotHere
		}
		if seen.has(id) && id != idUser && (id != idSubscriptionID || !multiSubID) {
			return errPropDuplicate
		}
		seen |= 1 << id
		if err := decodeProp(&pd, p, id); err != nil {
			return err
		}
	}
	if seen.has(idAuthData) && !seen.has(idAuthMethod) {
		return errAuthDataOnly
	}
	return nil
}

func decodeProp(d *dec, p *Properties, id byte) error {
	info := propTable[id]
	switch info.typ {
	case ptByte:
		v, err := d.byte()
		if err != nil {
			return err
		}
		// Every byte property is a 0/1 flag except Maximum QoS, which
		// is also 0 or 1 ("It is a Protocol Error ... other than 0 or 1").
		if v > 1 {
			return errPropBool
		}
		switch id {
		case idPayloadFormat:
			p.PayloadFormat = v
		case idRequestProblemInfo:
			p.RequestProblemInfo = v
		case idRequestResponseInfo:
			p.RequestResponseInfo = v
		case idMaximumQoS:
			p.MaximumQoS = v
		case idRetainAvailable:
			p.RetainAvailable = v
		case idWildcardSubAvailable:
			p.WildcardSubAvailable = v
		case idSubIDAvailable:
			p.SubIDAvailable = v
		case idSharedSubAvailable:
			p.SharedSubAvailable = v
		}
	case ptU16:
		v, err := d.u16()
		if err != nil {
			return err
		}
		switch id {
		case idServerKeepAlive:
			p.ServerKeepAlive = v
		case idReceiveMaximum:
			if v == 0 {
				return errPropZero
			}
			p.ReceiveMaximum = v
		case idTopicAliasMaximum:
			p.TopicAliasMaximum = v
		case idTopicAlias:
			if v == 0 {
				return errTopicAlias0
			}
			p.TopicAlias = v
		}
	case ptU32:
		v, err := d.u32()
		if err != nil {
			return err
		}
		switch id {
		case idMessageExpiry:
			p.MessageExpiry = v
		case idSessionExpiry:
			p.SessionExpiry = v
		case idWillDelayInterval:
			p.WillDelayInterval = v
		case idMaximumPacketSize:
			if v == 0 {
				return errPropZero
			}
			p.MaximumPacketSize = v
		}
	case ptVarint: // only Subscription Identifier
		v, err := d.varint()
		if err != nil {
			return err
		}
		if v == 0 {
			return errSubIDRange
		}
		p.SubscriptionIDs = append(p.SubscriptionIDs, v)
	case ptString:
		v, err := d.str()
		if err != nil {
			return err
		}
		switch id {
		case idContentType:
			p.ContentType = v
		case idResponseTopic:
			// The Response Topic is a topic name [MQTT-3.3.2-14].
			if len(v) == 0 {
				return &Error{Code: ProtocolError, Msg: "empty response topic"}
			}
			if err := checkTopicName(v); err != nil {
				return err
			}
			p.ResponseTopic = v
		case idAssignedClientID:
			p.AssignedClientID = v
		case idAuthMethod:
			p.AuthMethod = v
		case idResponseInfo:
			p.ResponseInfo = v
		case idServerReference:
			p.ServerReference = v
		case idReasonString:
			p.ReasonString = v
		}
	case ptBinary:
		v, err := d.binary()
		if err != nil {
			return err
		}
		if id == idCorrelationData {
			p.CorrelationData = v
		} else {
			p.AuthData = v
		}
	case ptPair:
		name, err := d.str()
		if err != nil {
			return err
		}
		value, err := d.str()
		if err != nil {
			return err
		}
		p.User = append(p.User, UserProperty{Name: name, Value: value})
	}
	if info.bit != 0 {
		p.Present |= info.bit
	}
	return nil
}

// scalarProp describes how to encode one scalar property.
type scalarProp struct {
	id   byte
	size int
	bit  uint32
	get  func(*Properties) uint32
}

var scalarProps = [...]scalarProp{
	{idPayloadFormat, 1, PropPayloadFormat, func(p *Properties) uint32 { return uint32(p.PayloadFormat) }},
	{idMessageExpiry, 4, PropMessageExpiry, func(p *Properties) uint32 { return p.MessageExpiry }},
	{idSessionExpiry, 4, PropSessionExpiry, func(p *Properties) uint32 { return p.SessionExpiry }},
	{idServerKeepAlive, 2, PropServerKeepAlive, func(p *Properties) uint32 { return uint32(p.ServerKeepAlive) }},
	{idRequestProblemInfo, 1, PropRequestProblemInfo, func(p *Properties) uint32 { return uint32(p.RequestProblemInfo) }},
	{idWillDelayInterval, 4, PropWillDelayInterval, func(p *Properties) uint32 { return p.WillDelayInterval }},
	{idRequestResponseInfo, 1, PropRequestResponseInfo, func(p *Properties) uint32 { return uint32(p.RequestResponseInfo) }},
	{idReceiveMaximum, 2, PropReceiveMaximum, func(p *Properties) uint32 { return uint32(p.ReceiveMaximum) }},
	{idTopicAliasMaximum, 2, PropTopicAliasMaximum, func(p *Properties) uint32 { return uint32(p.TopicAliasMaximum) }},
	{idTopicAlias, 2, PropTopicAlias, func(p *Properties) uint32 { return uint32(p.TopicAlias) }},
	{idMaximumQoS, 1, PropMaximumQoS, func(p *Properties) uint32 { return uint32(p.MaximumQoS) }},
	{idRetainAvailable, 1, PropRetainAvailable, func(p *Properties) uint32 { return uint32(p.RetainAvailable) }},
	{idMaximumPacketSize, 4, PropMaximumPacketSize, func(p *Properties) uint32 { return p.MaximumPacketSize }},
	{idWildcardSubAvailable, 1, PropWildcardSubAvailable, func(p *Properties) uint32 { return uint32(p.WildcardSubAvailable) }},
	{idSubIDAvailable, 1, PropSubIDAvailable, func(p *Properties) uint32 { return uint32(p.SubIDAvailable) }},
	{idSharedSubAvailable, 1, PropSharedSubAvailable, func(p *Properties) uint32 { return uint32(p.SharedSubAvailable) }},
}

// numStringProps is the number of length-prefixed properties (strings
// and binary data); stringProp enumerates them in identifier order.
const numStringProps = 9

func stringProp(p *Properties, i int) (byte, []byte) {
	switch i {
	case 0:
		return idContentType, p.ContentType
	case 1:
		return idResponseTopic, p.ResponseTopic
	case 2:
		return idCorrelationData, p.CorrelationData
	case 3:
		return idAssignedClientID, p.AssignedClientID
	case 4:
		return idAuthMethod, p.AuthMethod
	case 5:
		return idAuthData, p.AuthData
	case 6:
		return idResponseInfo, p.ResponseInfo
	case 7:
		return idServerReference, p.ServerReference
	default:
		return idReasonString, p.ReasonString
	}
}

// propsEmpty reports whether p has no property at all: the common case
// on the hot path, checked without walking the property tables.
func propsEmpty(p *Properties) bool {
	return p.Present == 0 && len(p.User) == 0 && len(p.SubscriptionIDs) == 0 &&
		p.ContentType == nil && p.ResponseTopic == nil && p.CorrelationData == nil &&
		p.AssignedClientID == nil && p.AuthMethod == nil && p.AuthData == nil &&
		p.ResponseInfo == nil && p.ServerReference == nil && p.ReasonString == nil
}

// propsSize returns the encoded length of the properties of p that are in
// allowed (without the length prefix). Properties outside allowed are not
// encoded: a packet forwarded from one context to another (a client's
// PUBLISH to a subscriber) never carries a property illegal in the new one.
func propsSize(p *Properties, allowed propSet, multiSubID bool) (int, error) {
	if propsEmpty(p) {
		return 0, nil
	}
	n := 0
	if p.Present != 0 {
		for i := range scalarProps {
			if sp := &scalarProps[i]; p.Present&sp.bit != 0 && allowed.has(sp.id) {
				n += 1 + sp.size
			}
		}
	}
	for i := range numStringProps {
		id, v := stringProp(p, i)
		if v == nil || !allowed.has(id) {
			continue
		}
		if len(v) > 65535 {
			return 0, errEncodeString
		}
		n += 3 + len(v)
	}
	if allowed.has(idSubscriptionID) {
		if !multiSubID && len(p.SubscriptionIDs) > 1 {
			return 0, errEncodeSubIDs
		}
		for _, id := range p.SubscriptionIDs {
			if id == 0 || id > maxVarint {
				return 0, errEncodeSubID
			}
			n += 1 + varintSize(id)
		}
	}
	for _, u := range p.User {
		if len(u.Name) > 65535 || len(u.Value) > 65535 {
			return 0, errEncodeString
		}
		n += 5 + len(u.Name) + len(u.Value)
	}
	if n > maxVarint {
		return 0, errEncodeTooLarge
	}
	return n, nil
}

// appendProps appends the property block, length prefix included; size
// comes from propsSize with the same arguments.
func appendProps(dst []byte, p *Properties, allowed propSet, size int) []byte {
	dst = appendVarint(dst, uint32(size))
	if size == 0 {
		return dst
	}
	if p.Present != 0 {
		for i := range scalarProps {
			sp := &scalarProps[i]
			if p.Present&sp.bit == 0 || !allowed.has(sp.id) {
				continue
			}
			dst = append(dst, sp.id)
			switch v := sp.get(p); sp.size {
			case 1:
				dst = append(dst, byte(v))
			case 2:
				dst = appendU16(dst, uint16(v))
			default:
				dst = appendU32(dst, v)
			}
		}
	}
	for i := range numStringProps {
		if id, v := stringProp(p, i); v != nil && allowed.has(id) {
			dst = append(dst, id)
			dst = appendBinary(dst, v)
		}
	}
	if allowed.has(idSubscriptionID) {
		for _, id := range p.SubscriptionIDs {
			dst = append(dst, idSubscriptionID)
			dst = appendVarint(dst, id)
		}
	}
	for _, u := range p.User {
		dst = append(dst, idUser)
		dst = appendBinary(dst, u.Name)
		dst = appendBinary(dst, u.Value)
	}
	return dst
}
