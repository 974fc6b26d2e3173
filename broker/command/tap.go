package command

import (
	"context"

	"github.com/sluicehq/sluice/broker"
)

// Tap returns a broker.Consumer that passes every message on to next
// (nil: accept at once) after looking for command replies: a PUBLISH with
// correlation data (MQTT 5) or on a topic matching Config.ReplyTopic
// (3.1.1). Other messages cost one length check and, with a reply
// pattern, a topic comparison that stops at the first differing level.
func (s *Service) Tap(next broker.Consumer) broker.Consumer {
	return &tap{s: s, next: next}
}

type tap struct {
	s    *Service
	next broker.Consumer
}

// Deliver implements broker.Consumer.
func (t *tap) Deliver(ctx context.Context, m *broker.Message, ack func(error)) {
	t.s.inspect(m)
	if t.next == nil {
		ack(nil)
		return
	}
	t.next.Deliver(ctx, m, ack)
}

// inspect records a reply: the command must be known and, if it has a
// device, the reply must come from that device.
func (s *Service) inspect(m *broker.Message) {
	var id string
	switch {
	case len(m.CorrelationData) > 0 && len(m.CorrelationData) <= 128:
		id = string(m.CorrelationData)
	case s.reply != nil:
		dev, rid, ok := s.reply.match(m.Topic)
		if !ok || (s.reply.deviceAt >= 0 && dev != m.ClientID) {
			return
		}
		id = rid
	default:
		return
	}
	if s.b.Load() == nil {
		return
	}
	resp := append([]byte{}, m.Payload...)
	if s.transition(id, m.ClientID, Responded, "", resp) {
		s.met.replies.Inc()
	}
}

type callerKey struct{}

func withCaller(ctx context.Context, c *caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

func callerOf(ctx context.Context) *caller {
	c, _ := ctx.Value(callerKey{}).(*caller)
	return c
}
