package packet

// decodeConnect decodes CONNECT's variable header and payload.
func decodeConnect(c *Connect, d *dec) error {
	props, will := c.Props, c.WillProps
	*c = Connect{}
	c.Props, c.WillProps = props, will
	clearProps(&c.Props)
	clearProps(&c.WillProps)
	name, err := d.binary()
	if err != nil {
		return err
	}
	level, err := d.byte()
	if err != nil {
		return err
	}
	switch {
	case string(name) == "MQTT" && (level == Version311 || level == Version5):
	case string(name) == "MQIsdp" && level == Version31:
	default:
		return errUnsupported // [MQTT-3.1.2-1, MQTT-3.1.2-2]
	}
	c.ProtocolName, c.Version = name, level
	v5 := level == Version5
	flags, err := d.byte()
	if err != nil {
		return err
	}
	if flags&0x01 != 0 {
		return malformed("MQTT-3.1.2-3 connect reserved flag set")
	}
	c.CleanStart = flags&0x02 != 0
	c.WillFlag = flags&0x04 != 0
	c.WillQoS = flags >> 3 & 0x03
	c.WillRetain = flags&0x20 != 0
	c.PasswordFlag = flags&0x40 != 0
	c.UsernameFlag = flags&0x80 != 0
	if c.WillQoS == 3 {
		return malformed("MQTT-3.1.2-14 will qos 3")
	}
	if !c.WillFlag && (c.WillQoS != 0 || c.WillRetain) {
		return malformed("MQTT-3.1.2-11 will qos or retain set without will flag")
	}
	if level == Version311 && c.PasswordFlag && !c.UsernameFlag {
		return malformed("MQTT-3.1.2-22 password flag without user name flag")
	}
	if c.KeepAlive, err = d.u16(); err != nil {
		return err
	}
	if v5 {
		if err := decodeProps(d, &c.Props, propsConnect, false); err != nil {
			return err
		}
	}
	if c.ClientID, err = d.str(); err != nil {
		return err
	}
	if c.WillFlag {
		if v5 {
			if err := decodeProps(d, &c.WillProps, propsWill, false); err != nil {
				return err
			}
		}
		if c.WillTopic, err = d.str(); err != nil {
			return err
		}
		if len(c.WillTopic) == 0 {
			return &Error{Code: TopicNameInvalid, Msg: "MQTT-4.7.3-1 empty will topic"}
		}
		if err := checkTopicName(c.WillTopic); err != nil {
			return err
		}
		if c.WillPayload, err = d.binary(); err != nil {
			return err
		}
	}
	if c.UsernameFlag {
		if c.Username, err = d.str(); err != nil {
			return err
		}
	}
	if c.PasswordFlag {
		if c.Password, err = d.binary(); err != nil {
			return err
		}
	}
	return d.end()
}

func decodeConnack(c *Connack, d *dec, v5 bool) error {
	c.SessionPresent, c.ReasonCode = false, 0
	clearProps(&c.Props)
	flags, err := d.byte()
	if err != nil {
		return err
	}
	if flags&0xFE != 0 {
		return malformed("MQTT-3.2.2-1 connack reserved flags set")
	}
	c.SessionPresent = flags&0x01 != 0
	code, err := d.byte()
	if err != nil {
		return err
	}
	c.ReasonCode = ReasonCode(code)
	if v5 {
		if !rcAllowed(c.ReasonCode, rcConnack) {
			return errReasonCode
		}
		if err := decodeProps(d, &c.Props, propsConnack, false); err != nil {
			return err
		}
	} else if code > byte(V3NotAuthorized) {
		return errReasonCode
	}
	if c.SessionPresent && code != 0 {
		return protocolErr("MQTT-3.2.2-4 session present with a non-zero return code")
	}
	return d.end()
}
