package broker

import (
	"github.com/sluicehq/sluice/broker/packet"
	"github.com/sluicehq/sluice/broker/topic"
)

// handleSubscribe adds subscriptions, answers SUBACK and then sends the
// retained messages the new subscriptions ask for.
func (c *conn) handleSubscribe(p *packet.Subscribe) error {
	s := c.s
	v5 := c.version == packet.Version5
	var subID uint32
	if v5 && len(p.Props.SubscriptionIDs) > 0 {
		subID = p.Props.SubscriptionIDs[0]
		if subID == 0 {
			return protoErr(packet.ProtocolError, "subscription identifier 0")
		}
	}
	codes := make([]packet.ReasonCode, len(p.Subs))
	quota := c.subscriptionQuota()
	var retained []topic.Sub
	for i, req := range p.Subs {
		if !topic.ValidFilter(req.Filter) || !s.topicAllowed(req.Filter) {
			codes[i] = failCode(v5, packet.TopicFilterInvalid)
			continue
		}
		group, filter, shared, err := topic.ParseShared(string(req.Filter))
		if shared && err != nil {
			codes[i] = failCode(v5, packet.TopicFilterInvalid)
			continue
		}
		if !shared {
			filter = string(req.Filter)
		}
		if shared && req.NoLocal {
			return protoErr(packet.ProtocolError, "no local on a shared subscription")
		}
		if s.auth != nil && !s.auth.CanSubscribe(c.ident, string(req.Filter)) {
			s.stats.denied[deniedSubscribe].Add(1)
			codes[i] = failCode(v5, packet.NotAuthorized)
			continue
		}
		if quota == 0 {
			codes[i] = quotaCode(v5)
			continue
		}
		quota--
		sub := topic.Sub{
			ClientID:          c.clientID,
			Filter:            filter,
			Group:             group,
			QoS:               min(req.QoS, 2),
			NoLocal:           v5 && req.NoLocal,
			RetainAsPublished: v5 && req.RetainAsPublished,
			ID:                subID,
		}
		if v5 {
			sub.RetainHandling = req.RetainHandling
		}
		existed := s.subs.Add(sub)
		codes[i] = packet.ReasonCode(sub.QoS)
		// Retained messages are not sent for shared subscriptions;
		// retain handling 1 sends them only for a new subscription, 2
		// never [MQTT-3.3.1-9/10/11].
		if !shared && (sub.RetainHandling == 0 || (sub.RetainHandling == 1 && !existed)) {
			retained = append(retained, sub)
		}
	}
	s.markDirty(c.sess)
	c.sendPacket(&packet.Suback{PacketID: p.PacketID, Codes: codes})
	for i := range retained {
		s.sendRetained(c, &retained[i])
	}
	return nil
}

// failCode returns the SUBACK/UNSUBACK failure code for the version.
func failCode(v5 bool, code packet.ReasonCode) packet.ReasonCode {
	if v5 {
		return code
	}
	return packet.UnspecifiedError // 0x80 Failure in 3.1.1
}

// handleUnsubscribe removes subscriptions and answers UNSUBACK.
func (c *conn) handleUnsubscribe(p *packet.Unsubscribe) error {
	s := c.s
	v5 := c.version == packet.Version5
	var codes []packet.ReasonCode
	if v5 {
		codes = make([]packet.ReasonCode, len(p.Filters))
	}
	for i, f := range p.Filters {
		code := packet.NoSubscriptionExisted
		if topic.ValidFilter(f) {
			group, filter, shared, err := topic.ParseShared(string(f))
			if !shared {
				filter = string(f)
			}
			if err == nil && s.subs.Remove(c.clientID, group, filter) {
				code = packet.Success
			}
		} else {
			code = packet.TopicFilterInvalid
		}
		if v5 {
			codes[i] = code
		}
	}
	s.markDirty(c.sess)
	c.sendPacket(&packet.Unsuback{PacketID: p.PacketID, Codes: codes})
	return nil
}
