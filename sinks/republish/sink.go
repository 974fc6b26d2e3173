// Package republish is the sink that publishes records back into the
// embedded MQTT broker, to another topic: a rule's output becomes an MQTT
// message for the broker's subscribers. Each republished message carries
// a sluice-hop user property counting how many times it has been
// republished; past max_hops the record is dead-lettered instead, so two
// rules feeding each other cannot loop forever.
package republish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/topic"
	"github.com/sluicehq/sluice/sinks"
	"github.com/sluicehq/sluice/sinks/internal/outcome"
)

// HopProperty is the user property counting republications.
const HopProperty = "sluice-hop"

// Publisher injects a message into the broker; *broker.Server is one.
type Publisher interface {
	Publish(m *broker.Message) error
}

var _ sinks.Sink = (*Sink)(nil)

// errClosed is returned by Write after Close.
var errClosed = errors.New("republish sink is closed")

// Sink republishes records into the broker. It is safe for concurrent use.
type Sink struct {
	cfg    Config
	pub    Publisher
	log    *slog.Logger
	closed atomic.Bool
}

// New validates cfg and builds a sink publishing through pub.
func New(cfg Config, pub Publisher, log *slog.Logger) (*Sink, error) {
	cfg = cfg.withDefaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("configuring republish sink: %w", errors.Join(errs...))
	}
	if pub == nil {
		return nil, errors.New("configuring republish sink: no publisher")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sink{cfg: cfg, pub: pub, log: log}, nil
}

// Close stops further writes. It is safe to call twice.
func (s *Sink) Close() error {
	s.closed.Store(true)
	return nil
}

// Write publishes each record in order. A record without a valid topic,
// with a QoS above 2, or past max_hops fails permanently; an error from
// the broker is retryable. When ctx ends, the records not yet published
// fail with its error.
func (s *Sink) Write(ctx context.Context, batch []sinks.Record) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("republishing: %w", err)
	}
	errs := make([]error, len(batch))
	for i := range batch {
		if err := ctx.Err(); err != nil {
			cerr := fmt.Errorf("republishing: %w", err)
			for j := i; j < len(batch); j++ {
				errs[j] = cerr
			}
			break
		}
		errs[i] = s.publish(&batch[i])
	}
	return outcome.Result(errs)
}

func (s *Sink) publish(r *sinks.Record) error {
	t := r.Topic
	if t == "" {
		t = s.cfg.Topic
	}
	if t == "" {
		return sinks.Permanent(errors.New("republishing: record has no topic and the sink has no default topic"))
	}
	if !topic.ValidName([]byte(t)) {
		return sinks.Permanent(fmt.Errorf("republishing: %q is not a valid topic name", t))
	}
	if r.QoS > 2 {
		return sinks.Permanent(fmt.Errorf("republishing to %s: invalid QoS %d", t, r.QoS))
	}
	hops := Hops(r.Source.UserProperties)
	if hops >= s.cfg.MaxHops {
		return sinks.Permanent(fmt.Errorf("republishing to %s: message has been republished %d times (max_hops %d): loop?", t, hops, s.cfg.MaxHops))
	}
	props := make([]broker.UserProperty, 0, len(r.Source.UserProperties)+1)
	for _, p := range r.Source.UserProperties {
		if p.Name != HopProperty {
			props = append(props, broker.UserProperty{Name: p.Name, Value: p.Value})
		}
	}
	props = append(props, broker.UserProperty{Name: HopProperty, Value: strconv.Itoa(hops + 1)})
	m := &broker.Message{
		Topic:          t,
		Payload:        r.Value,
		QoS:            r.QoS,
		Retain:         r.Retain,
		ClientID:       r.Source.ClientID,
		Username:       r.Source.Username,
		ContentType:    r.Source.ContentType,
		UserProperties: props,
	}
	if err := s.pub.Publish(m); err != nil {
		return fmt.Errorf("republishing to %s: %w", t, err)
	}
	return nil
}

// Hops returns the hop count a message carries: the largest well-formed
// sluice-hop user property, 0 without one. A malformed value counts as 0
// (and is replaced on republish).
func Hops(props []sinks.UserProperty) int {
	n := 0
	for _, p := range props {
		if p.Name != HopProperty {
			continue
		}
		if v, err := strconv.Atoi(p.Value); err == nil && v > n {
			n = v
		}
	}
	return n
}
