package broker

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/broker/auth"
	"github.com/sluicehq/sluice/broker/listener"
	"github.com/sluicehq/sluice/broker/packet"
	"github.com/sluicehq/sluice/broker/topic"
)

// handshake reads CONNECT, answers CONNACK and attaches the session. On
// success c.sess is set. A refused CONNECT returns errRefused after the
// CONNACK is queued.
func (c *conn) handshake() error {
	s := c.s
	c.nc.SetReadDeadline(time.Now().Add(s.cfg.ConnectTimeout))
	if s.draining.Load() {
		return errDraining
	}
	p, err := c.r.ReadPacket()
	if err != nil {
		var pe *packet.Error
		if errors.As(err, &pe) && pe.Code == packet.UnsupportedProtocolVersion {
			// The client's version is unknown: answer in the 3.1.1 form.
			c.version = packet.Version311
			c.out.ready = true
			c.sendRaw([]byte{byte(packet.CONNACK) << 4, 2, 0, byte(packet.V3UnacceptableProtocolVersion)})
			return errRefused
		}
		return err
	}
	cp, ok := p.(*packet.Connect)
	if !ok {
		return errors.New("first packet is not CONNECT")
	}
	c.version = cp.Version
	c.r.SetVersion(cp.Version)
	v5 := cp.Version == packet.Version5

	c.clientID = string(cp.ClientID)
	assigned := false
	if c.clientID == "" {
		if !v5 && !cp.CleanStart {
			return c.refuse(packet.ClientIdentifierNotValid, packet.V3IdentifierRejected)
		}
		c.clientID = s.idPrefix + strconv.FormatUint(s.nextID.Add(1), 10)
		assigned = v5
	}
	if v5 && cp.Props.AuthMethod != nil {
		return c.refuse(packet.BadAuthenticationMethod, packet.V3NotAuthorized)
	}
	if err := c.authenticate(cp); err != nil {
		return err
	}
	if cp.WillFlag {
		if !topic.ValidName(cp.WillTopic) {
			return c.refuse(packet.TopicNameInvalid, packet.V3ServerUnavailable)
		}
		if s.auth != nil && !s.auth.CanPublish(c.ident, string(cp.WillTopic)) {
			s.stats.denied[deniedConnect].Add(1)
			s.log.Info("connection refused: will topic not authorised", "conn_id", c.id, "client_id", c.clientID,
				"username", c.ident.Username, "remote_addr", c.remoteAddr(), "topic", string(cp.WillTopic))
			return c.refuse(packet.NotAuthorized, packet.V3NotAuthorized)
		}
		c.will, c.willDelay = c.newWill(cp)
	}

	var props packet.Properties
	ka := time.Duration(cp.KeepAlive) * time.Second
	if max := s.cfg.MaxKeepAlive; v5 && max > 0 && (ka == 0 || ka > max) {
		ka = max
		props.Set(packet.PropServerKeepAlive)
		props.ServerKeepAlive = uint16(max / time.Second)
	}
	c.keepAlive = ka
	c.nc.SetReadDeadline(time.Time{}) // the loop sets keep alive deadlines

	c.window = int(s.cfg.MaxInflight)
	var expiry uint32
	if v5 {
		cprops := &cp.Props
		if cprops.Has(packet.PropReceiveMaximum) && int(cprops.ReceiveMaximum) < c.window {
			c.window = int(cprops.ReceiveMaximum)
		}
		if cprops.Has(packet.PropMaximumPacketSize) {
			c.maxOut = cprops.MaximumPacketSize
		}
		c.aliasMax = cprops.TopicAliasMaximum
		c.noProblem = cprops.Has(packet.PropRequestProblemInfo) && cprops.RequestProblemInfo == 0
		if cprops.Has(packet.PropSessionExpiry) {
			expiry = s.capExpiry(cprops.SessionExpiry)
			if expiry != cprops.SessionExpiry {
				props.Set(packet.PropSessionExpiry)
				props.SessionExpiry = expiry
			}
		}
		props.Set(packet.PropReceiveMaximum)
		props.ReceiveMaximum = s.cfg.ReceiveMaximum
		props.Set(packet.PropMaximumPacketSize)
		props.MaximumPacketSize = s.cfg.MaxPacketSize
		if s.cfg.TopicAliasMaximum > 0 {
			props.Set(packet.PropTopicAliasMaximum)
			props.TopicAliasMaximum = s.cfg.TopicAliasMaximum
		}
		if assigned {
			props.AssignedClientID = []byte(c.clientID)
		}
	} else if !cp.CleanStart {
		expiry = s.capExpiry(expiryNever)
	}
	if c.window < 1 {
		c.window = 1
	}

	c.connectedAt, c.cleanStart = time.Now(), cp.CleanStart
	s.attach(c, cp.CleanStart, expiry, func(present bool) {
		ack := &packet.Connack{SessionPresent: present, Props: props}
		c.outMu.Lock()
		c.out.ready = true
		c.outMu.Unlock()
		c.sendPacket(ack)
	})
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("client connected", "conn_id", c.id, "client_id", c.clientID, "username", c.username,
			"remote_addr", c.remoteAddr(), "listener", c.lis.cfg.Name, "version", c.version, "clean_start", cp.CleanStart)
	}
	return nil
}

// authenticate establishes c.ident and c.username from CONNECT and the
// transport, before any session is touched. A refused client gets its
// CONNACK queued and errRefused.
func (c *conn) authenticate(cp *packet.Connect) error {
	s := c.s
	info := listener.Info(c.nc)
	if s.auth == nil {
		switch {
		case info.CertIdentity != "":
			c.ident = auth.Identity{ClientID: c.clientID, Username: info.CertIdentity, Method: auth.MethodCertificate}
		case cp.UsernameFlag:
			// Not verified: kept as information (Message.Username) only.
			c.ident = auth.Identity{ClientID: c.clientID}
			c.username = string(cp.Username)
			return nil
		case !c.lis.cfg.AllowAnonymous:
			return c.refuseLogin(auth.ErrBadCredentials, "")
		default:
			c.ident = auth.Identity{ClientID: c.clientID}
		}
		c.username = c.ident.Username
		return nil
	}
	cred := auth.Credentials{
		ClientID:                c.clientID,
		RemoteAddr:              c.remoteAddr(),
		ListenerAllowsAnonymous: c.lis.cfg.AllowAnonymous,
		CertIdentity:            info.CertIdentity,
	}
	if cp.UsernameFlag {
		cred.Username = string(cp.Username)
	}
	if cp.PasswordFlag {
		cred.Password = cp.Password
		if cred.Password == nil {
			cred.Password = []byte{}
		}
	}
	ctx, cancel := context.WithTimeout(s.baseCtx, s.cfg.ConnectTimeout)
	id, err := s.auth.Authenticate(ctx, cred)
	cancel()
	if err != nil {
		return c.refuseLogin(err, cred.Username)
	}
	c.ident = id
	c.username = id.Username
	if c.username == "" {
		c.username = cred.Username // claimed, unverified: information only
	}
	return nil
}

// refuseLogin logs, counts and refuses a CONNECT that failed
// authentication.
func (c *conn) refuseLogin(err error, username string) error {
	c.s.stats.denied[deniedConnect].Add(1)
	c.s.log.Info("connection refused: authentication failed", "conn_id", c.id, "client_id", c.clientID, "username", username,
		"remote_addr", c.remoteAddr(), "listener", c.lis.cfg.Name, "err", err)
	code := auth.ConnackCode(err)
	return c.refuse(code, packet.V3ConnackCode(code))
}

// remoteAddr is the client's address (after PROXY protocol).
func (c *conn) remoteAddr() string {
	if a := c.nc.RemoteAddr(); a != nil {
		return a.String()
	}
	return ""
}

// refuse queues a CONNACK with a failure code (v5 or 3.1.1 form).
func (c *conn) refuse(v5code, v3code packet.ReasonCode) error {
	code := v3code
	if c.version == packet.Version5 {
		code = v5code
	}
	c.outMu.Lock()
	c.out.ready = true
	c.outMu.Unlock()
	c.sendPacket(&packet.Connack{ReasonCode: code})
	return errRefused
}

// newWill copies the will of a CONNECT into a Message.
func (c *conn) newWill(cp *packet.Connect) (*Message, uint32) {
	wp := &cp.WillProps
	m := &Message{
		Topic:    string(cp.WillTopic),
		Payload:  append([]byte(nil), cp.WillPayload...),
		QoS:      cp.WillQoS,
		Retain:   cp.WillRetain,
		ClientID: c.clientID,
		Username: c.username,
		Version:  c.version,
	}
	if c.version != packet.Version5 {
		return m, 0
	}
	if wp.Has(packet.PropPayloadFormat) {
		m.PayloadFormat = wp.PayloadFormat
	}
	if wp.Has(packet.PropMessageExpiry) {
		m.MessageExpiry = wp.MessageExpiry
	}
	m.ContentType = string(wp.ContentType)
	m.ResponseTopic = string(wp.ResponseTopic)
	if wp.CorrelationData != nil {
		m.CorrelationData = append([]byte(nil), wp.CorrelationData...)
	}
	for _, u := range wp.User {
		m.UserProperties = append(m.UserProperties, UserProperty{Name: string(u.Name), Value: string(u.Value)})
	}
	var delay uint32
	if wp.Has(packet.PropWillDelayInterval) {
		delay = wp.WillDelayInterval
	}
	return m, delay
}
