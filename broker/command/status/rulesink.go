package status

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/broker/command"
	"github.com/sluicehq/sluice/broker/topic"
	"github.com/sluicehq/sluice/sinks"
)

// SinkName is the name rules use to target the RuleSink.
const SinkName = "commands"

// RuleSinkConfig configures the sink rules send commands through.
type RuleSinkConfig struct {
	// Topic is the MQTT topic of commands whose rule target renders none.
	// Default: "" (the target must render one).
	Topic string `koanf:"topic"`
	// QoS is the commands' MQTT QoS: a rule's sink target carries none.
	// Default: 1.
	QoS *int `koanf:"qos"`
	// TTL is the commands' time to live; 0 means the command service's
	// default. Default: 0.
	TTL time.Duration `koanf:"ttl"`
}

// DefaultRuleSinkConfig returns the defaults.
func DefaultRuleSinkConfig() RuleSinkConfig {
	qos := 1
	return RuleSinkConfig{QoS: &qos}
}

// Validate reports every problem in c, with key paths relative to its
// section.
func (c RuleSinkConfig) Validate() []error {
	var errs []error
	if c.Topic != "" && !topic.ValidName([]byte(c.Topic)) {
		errs = append(errs, fmt.Errorf("topic: %q is not a valid MQTT topic name (no wildcards, not empty)", c.Topic))
	}
	if c.QoS != nil && (*c.QoS < 0 || *c.QoS > 2) {
		errs = append(errs, fmt.Errorf("qos: must be 0, 1 or 2, not %d", *c.QoS))
	}
	if c.TTL < 0 {
		errs = append(errs, errors.New("ttl: must not be negative"))
	}
	return errs
}

// RuleSink is the sink named "commands": each record a rule routes to it
// becomes a command to the record's topic (Source "rule", Principal
// "rule:<rule name>", so the command ACL decides what each rule may
// command). A record's command id is derived from the MQTT message it
// came from, so a record the runner writes twice is one command.
type RuleSink struct {
	cfg    RuleSinkConfig
	sub    command.Submitter
	log    *slog.Logger
	m      *Metrics
	closed atomic.Bool
}

var _ sinks.Sink = (*RuleSink)(nil)

// errClosed is returned by Write after Close.
var errClosed = errors.New("commands sink is closed")

// NewRuleSink validates cfg and builds the sink submitting to sub.
func NewRuleSink(cfg RuleSinkConfig, sub command.Submitter, opts Options) (*RuleSink, error) {
	if cfg.QoS == nil {
		cfg.QoS = DefaultRuleSinkConfig().QoS
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("configuring commands sink: %w", errors.Join(errs...))
	}
	if sub == nil {
		return nil, errors.New("configuring commands sink: no submitter")
	}
	opts = opts.withDefaults(SinkName)
	return &RuleSink{cfg: cfg, sub: sub, log: opts.Logger.With("sink", opts.Name), m: opts.Metrics}, nil
}

// Close stops further writes. It is safe to call twice.
func (s *RuleSink) Close() error {
	s.closed.Store(true)
	return nil
}

// Write submits each record's command in order. A command the service
// rejects fails permanently (the record is dead-lettered with the
// reason); any other failure is retryable, and the later records with the
// same key are not submitted but fail too, so a retry cannot reorder one
// device's commands.
func (s *RuleSink) Write(ctx context.Context, batch []sinks.Record) error {
	if s.closed.Load() {
		return errClosed
	}
	errs := make([]error, len(batch))
	var blocked map[string]error // keys after a retryable failure
	for i := range batch {
		r := &batch[i]
		if err := ctx.Err(); err != nil {
			errs[i] = fmt.Errorf("submitting rule command: %w", err)
			continue
		}
		if err, ok := blocked[string(r.Key)]; ok {
			errs[i] = err
			continue
		}
		errs[i] = s.submit(ctx, r)
		if errs[i] != nil && !sinks.IsPermanent(errs[i]) {
			if blocked == nil {
				blocked = map[string]error{}
			}
			blocked[string(r.Key)] = errs[i]
		}
	}
	return result(errs)
}

func (s *RuleSink) submit(ctx context.Context, r *sinks.Record) error {
	t := r.Topic
	if t == "" {
		t = s.cfg.Topic
	}
	if t == "" {
		s.m.commands.WithLabelValues(resultRejected).Inc()
		return sinks.Permanent(fmt.Errorf("submitting command of rule %s: no topic (the target renders none and the sink has no default)", r.Rule))
	}
	qos := byte(*s.cfg.QoS)
	if r.QoS > 0 {
		qos = r.QoS
	}
	c := command.Command{
		ID:        ruleCommandID(r, t),
		Topic:     t,
		Payload:   r.Value,
		QoS:       qos,
		TTL:       s.cfg.TTL,
		Source:    "rule",
		Principal: "rule:" + r.Rule,
	}
	_, err := s.sub.Submit(ctx, c)
	var rej *command.RejectedError
	switch {
	case err == nil:
		s.m.commands.WithLabelValues(resultAccepted).Inc()
		return nil
	case errors.As(err, &rej):
		s.m.commands.WithLabelValues(resultRejected).Inc()
		return sinks.Permanent(fmt.Errorf("submitting command %s of rule %s to %s: %w", c.ID, r.Rule, t, err))
	default:
		s.m.commands.WithLabelValues(resultRetried).Inc()
		return fmt.Errorf("submitting command %s of rule %s to %s: %w", c.ID, r.Rule, t, err)
	}
}

// ruleCommandID derives a command id from the rule, the MQTT message the
// record came from (client, topic, arrival time, kept across spool
// replays) and the command's topic and payload: the same record written
// twice gets the same id. A record without an arrival time gets a random
// id (nothing identifies it).
func ruleCommandID(r *sinks.Record, target string) string {
	if r.Source.ReceivedAt.IsZero() {
		return "rule-" + uuid.NewString()
	}
	h := sha256.New()
	var n [8]byte
	for _, s := range []string{r.Rule, r.Source.ClientID, r.Source.Topic, target} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	binary.BigEndian.PutUint64(n[:], uint64(r.Source.ReceivedAt.UnixNano()))
	h.Write(n[:])
	h.Write(r.Value)
	return "rule-" + hex.EncodeToString(h.Sum(nil)[:12])
}

// result turns per-record errors into Write's error: nil, the one error
// of a one-record batch, or a *sinks.BatchError.
func result(errs []error) error {
	var be sinks.BatchError
	for i, err := range errs {
		if err != nil {
			be.Failed = append(be.Failed, sinks.ItemError{Index: i, Err: err})
		}
	}
	switch {
	case len(be.Failed) == 0:
		return nil
	case len(errs) == 1:
		return be.Failed[0].Err
	}
	return &be
}
