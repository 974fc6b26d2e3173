// Package status connects the command service to the sinks in both
// directions: Publisher writes the service's status events through a
// sink (a Kafka topic, a webhook), and RuleSink is the sink rules target
// to turn their output into commands.
package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/sluicehq/sluice/broker/command"
	"github.com/sluicehq/sluice/sinks"
)

// ContentType is the content type of a status event record.
const ContentType = "application/json"

// Publisher writes status events through a sink, one JSON record per
// event (the command.Event JSON), keyed by command id so that one
// command's events keep their order (one Kafka partition, one ordering
// lane). It is safe for concurrent use.
type Publisher struct {
	sink  sinks.Sink
	topic string
	name  string
	log   *slog.Logger
	m     *Metrics
}

var _ command.EventSink = (*Publisher)(nil)

// Options are a Publisher's or RuleSink's dependencies.
type Options struct {
	// Name names the sink in logs and metrics. Default: "status".
	Name string
	// Logger receives warnings. Default: discarded.
	Logger *slog.Logger
	// Metrics counts events and commands; share one across every
	// Publisher and RuleSink of a process. Default: counted, not exported.
	Metrics *Metrics
}

func (o Options) withDefaults(name string) Options {
	if o.Name == "" {
		o.Name = name
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics, _ = NewMetrics(nil)
	}
	return o
}

// New returns a Publisher writing to topic through sk ("" means the
// sink's default topic, or a webhook's URL as configured). The sink is
// not closed by the Publisher: it belongs to whoever built it.
func New(sk sinks.Sink, topic string, opts Options) *Publisher {
	opts = opts.withDefaults("status")
	return &Publisher{sink: sk, topic: topic, name: opts.Name, log: opts.Logger.With("sink", opts.Name), m: opts.Metrics}
}

// PublishEvents writes evs in one batch. It returns nil once the sink has
// accepted every event, or once the only failures left are permanent
// (an event the destination can never take is logged and counted as
// dropped instead of blocking the service's outbox forever); any other
// failure returns an error and the service retries the batch (events
// already written are written again: at least once).
func (p *Publisher) PublishEvents(ctx context.Context, evs []command.Event) error {
	if len(evs) == 0 {
		return nil
	}
	batch := make([]sinks.Record, len(evs))
	for i := range evs {
		ev := &evs[i]
		v, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encoding status event of command %s: %w", ev.ID, err)
		}
		batch[i] = sinks.Record{
			Rule:  "command-status",
			Topic: p.topic,
			Key:   []byte(ev.ID),
			Value: v,
			QoS:   1,
			Source: sinks.Source{
				Topic: ev.Topic, ClientID: ev.Device, QoS: 1,
				ContentType: ContentType, ReceivedAt: ev.At,
			},
		}
	}
	err := p.sink.Write(ctx, batch)
	if err == nil {
		p.m.events.WithLabelValues(p.name, resultWritten).Add(float64(len(evs)))
		return nil
	}
	failed := failures(err, len(evs))
	for _, f := range failed {
		if !sinks.IsPermanent(f.Err) {
			p.m.events.WithLabelValues(p.name, resultWritten).Add(float64(len(evs) - len(failed)))
			return fmt.Errorf("writing %d of %d status events to %s: %w", len(failed), len(evs), p.name, err)
		}
	}
	for _, f := range failed {
		ev := &evs[f.Index]
		p.log.Error("dropping a status event the sink cannot take", "command_id", ev.ID, "state", ev.State, "err", f.Err)
	}
	p.m.events.WithLabelValues(p.name, resultDropped).Add(float64(len(failed)))
	p.m.events.WithLabelValues(p.name, resultWritten).Add(float64(len(evs) - len(failed)))
	return nil
}

// failures lists the failed records of a batch of n: a *BatchError's
// items, or every record for any other error.
func failures(err error, n int) []sinks.ItemError {
	var be *sinks.BatchError
	if errors.As(err, &be) && len(be.Failed) > 0 {
		return be.Failed
	}
	out := make([]sinks.ItemError, n)
	for i := range out {
		out[i] = sinks.ItemError{Index: i, Err: err}
	}
	return out
}
