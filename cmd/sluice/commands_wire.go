package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/command"
	"github.com/sluicehq/sluice/broker/command/kafkasource"
	"github.com/sluicehq/sluice/broker/command/status"
	"github.com/sluicehq/sluice/sinks"
)

// commandsSection is the `commands:` section: the command service's
// settings, its Kafka source, where status events go and the sink rules
// send commands through.
type commandsSection struct {
	command.Config `koanf:",squash"`
	// Kafka configures the Kafka command source.
	Kafka kafkasource.Config `koanf:"kafka"`
	// Status lists the sinks (from the sinks section) status events are
	// written to, each with its topic. Default: none.
	Status []statusTarget `koanf:"status"`
	// RuleSink configures the "commands" sink rules send commands to.
	RuleSink status.RuleSinkConfig `koanf:"rule_sink"`
}

// statusTarget is one destination of status events.
type statusTarget struct {
	// Sink names a sink of the sinks section (Kafka or webhook). Required.
	Sink string `koanf:"sink"`
	// Topic is the Kafka topic ("" : the sink's own). Default: "".
	Topic string `koanf:"topic"`
}

func defaultCommandsSection() commandsSection {
	return commandsSection{Config: command.DefaultConfig(), Kafka: kafkasource.DefaultConfig(), RuleSink: status.DefaultRuleSinkConfig()}
}

// Validate reports every problem with its key path inside the section.
func (c commandsSection) Validate() []error {
	errs := c.Config.Validate()
	for _, e := range c.Kafka.Validate() {
		errs = append(errs, fmt.Errorf("kafka.%w", e))
	}
	for _, e := range c.RuleSink.Validate() {
		errs = append(errs, fmt.Errorf("rule_sink.%w", e))
	}
	for i, s := range c.Status {
		if s.Sink == "" {
			errs = append(errs, fmt.Errorf("status[%d].sink: required", i))
		}
	}
	if !c.Enabled && c.Kafka.Enabled {
		errs = append(errs, errors.New("kafka.enabled: needs commands.enabled"))
	}
	return errs
}

// commands is the wired command service and its sources.
type commands struct {
	svc    *command.Service
	source *kafkasource.Source // nil: no Kafka source
	met    *status.Metrics     // shared by the status publishers and the rules' sink
}

// newCommands builds the command service (nil when disabled) with its
// status publishers over the built sinks. It does no I/O.
func newCommands(cfg Config, set map[string]sinks.Sink, log *slog.Logger, reg prometheus.Registerer) (*commands, error) {
	cc := cfg.Commands
	if !cc.Enabled {
		return nil, nil
	}
	sm, err := status.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	evSinks := map[string]command.EventSink{}
	for i, t := range cc.Status {
		sk, ok := set[t.Sink]
		if !ok {
			return nil, fmt.Errorf("commands.status[%d].sink: no sink %q in the sinks section", i, t.Sink)
		}
		name := fmt.Sprintf("%s:%s", t.Sink, t.Topic)
		evSinks[name] = status.New(sk, t.Topic, status.Options{Name: t.Sink, Logger: log.With("component", "commands"), Metrics: sm})
	}
	svc, err := command.New(cc.Config, command.Options{Logger: log.With("component", "commands"), Registerer: reg,
		Sinks: evSinks, DataDir: cfg.Ingest.DataDir})
	if err != nil {
		return nil, err
	}
	c := &commands{svc: svc, met: sm}
	if cc.Kafka.Enabled {
		if c.source, err = kafkasource.New(cc.Kafka, svc, kafkasource.Options{Logger: log.With("component", "commands_kafka"), Registerer: reg}); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// ruleSink returns the "commands" sink for rules, or nil.
func (c *commands) ruleSink(cfg Config, log *slog.Logger) (sinks.Sink, error) {
	if c == nil {
		return nil, nil
	}
	return status.NewRuleSink(cfg.Commands.RuleSink, c.svc, status.Options{Logger: log.With("component", "commands"), Metrics: c.met})
}

// consumer wraps the pipeline so the service sees device replies.
func (c *commands) consumer(next broker.Consumer) broker.Consumer {
	if c == nil {
		return next
	}
	return c.svc.Tap(next)
}

// tracker is the broker's delivery observer (nil interface when off).
func (c *commands) tracker() broker.Tracker {
	if c == nil {
		return nil
	}
	return c.svc
}

// mount serves the command API on the admin listener. It checks its own
// tokens (commands.tokens, and admin.token with full access), so it is
// mounted without the admin token check in front.
func (c *commands) mount(a *app) {
	if c == nil {
		return
	}
	h := c.svc.Handler(a.cfg.Admin.Token)
	a.admin.Public("/api/v1/commands", h)
	a.admin.Public("/api/v1/commands/", h)
	a.admin.AddCheck("commands", c.svc.Ready)
}

// start runs the service (and the Kafka source) until ctx ends; wait
// returns their first error.
func (c *commands) start(ctx context.Context, b *broker.Server) (wait func() error) {
	if c == nil {
		return func() error { return nil }
	}
	var wg sync.WaitGroup
	var svcErr, srcErr error
	wg.Go(func() { svcErr = c.svc.Run(ctx, b) })
	if c.source != nil {
		wg.Go(func() { srcErr = c.source.Run(ctx) })
	}
	return func() error {
		wg.Wait()
		return errors.Join(svcErr, srcErr)
	}
}

// wireCommands builds the command service when enabled and adds the
// rules' "commands" sink to set.
func wireCommands(cfg Config, set map[string]sinks.Sink, log *slog.Logger, reg prometheus.Registerer) (*commands, error) {
	c, err := newCommands(cfg, set, log, reg)
	if err != nil || c == nil {
		return nil, err
	}
	rs, err := c.ruleSink(cfg, log)
	if err != nil {
		return nil, err
	}
	set[status.SinkName] = rs
	return c, nil
}

// commandSinkNames lists the sink rules may target for commands.
func (c *Config) commandSinkNames() []string {
	if !c.Commands.Enabled {
		return nil
	}
	return []string{status.SinkName}
}
