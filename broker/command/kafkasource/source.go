// Package kafkasource reads commands from Kafka: a consumer group on the
// configured topics turns each record into a command (its device or topic
// rendered from the record's key, headers and JSON value) and submits it
// to the command service. A record's offset is committed only once its
// command is durable, and only after every earlier record of its
// partition; a record read twice has the same command id (a header, or
// its topic-partition-offset), so the service keeps one command.
package kafkasource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/sluicehq/sluice/broker/command"
)

// Options are the source's dependencies.
type Options struct {
	// Logger receives the source's logs. Default: discarded.
	Logger *slog.Logger
	// Registerer receives the source's metrics. Default: none.
	Registerer prometheus.Registerer
	// Now is the clock TTLs are measured with. Default: time.Now.
	Now func() time.Time
}

// Source is the Kafka command source. Run it once.
type Source struct {
	cfg    Config
	sub    command.Submitter
	mapper *mapper
	rcfg   kafkago.ReaderConfig
	log    *slog.Logger
	m      *metrics
	now    func() time.Time
}

// New validates cfg and builds a source submitting to sub. It reads the
// TLS files cfg names and the SASL password's environment variables but
// opens no connection.
func New(cfg Config, sub command.Submitter, opts Options) (*Source, error) {
	cfg.Enabled = true
	cfg = cfg.withDefaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("configuring kafka command source: %w", errors.Join(errs...))
	}
	if sub == nil {
		return nil, errors.New("configuring kafka command source: no submitter")
	}
	mp, err := newMapper(cfg)
	if err != nil {
		return nil, fmt.Errorf("configuring kafka command source: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	dialer := &kafkago.Dialer{ClientID: cfg.ClientID, Timeout: cfg.DialTimeout, DualStack: true}
	if cfg.TLS.Enabled {
		tc, err := cfg.TLS.Files().Load()
		if err != nil {
			return nil, fmt.Errorf("configuring kafka command source tls: %w", err)
		}
		dialer.TLS = tc
	}
	if dialer.SASLMechanism, err = cfg.SASL.Load(); err != nil {
		return nil, fmt.Errorf("configuring kafka command source sasl: %w", err)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	start := kafkago.FirstOffset
	if cfg.StartOffset == "last" {
		start = kafkago.LastOffset
	}
	klog := log.With("component", "kafka-reader")
	return &Source{
		cfg: cfg, sub: sub, mapper: mp, log: log, m: m, now: now,
		rcfg: kafkago.ReaderConfig{
			Brokers:        cfg.Brokers,
			GroupID:        cfg.GroupID,
			GroupTopics:    cfg.Topics,
			Dialer:         dialer,
			MinBytes:       1,
			MaxBytes:       10 << 20,
			MaxWait:        cfg.MaxWait,
			CommitInterval: 0, // synchronous: the committer below decides when
			StartOffset:    start,
			Logger:         kafkago.LoggerFunc(func(f string, a ...any) { klog.Debug(fmt.Sprintf(f, a...)) }),
			ErrorLogger:    kafkago.LoggerFunc(func(f string, a ...any) { klog.Warn(fmt.Sprintf(f, a...)) }),
		},
	}, nil
}

// shutdownTimeout bounds the last offset commit when Run ends.
const shutdownTimeout = 5 * time.Second

// job is one fetched record on its way to the service.
type job struct {
	msg     kafkago.Message
	cmd     command.Command
	invalid error // the record could not be mapped
	fetched time.Time
	entry   *entry
}

// Run consumes until ctx ends, then commits what was submitted and leaves
// the group. Records fetched but not yet durable stay uncommitted: the
// group reads them again (the same command ids) after a restart.
func (s *Source) Run(ctx context.Context) error {
	r := kafkago.NewReader(s.rcfg)
	c := newCommitter(r, s.cfg, s.log, s.m)
	d := newDispatcher(s.cfg.Concurrency * s.cfg.QueueSize)
	var wg sync.WaitGroup
	wctx, stopWorkers := context.WithCancel(ctx)
	for range s.cfg.Concurrency {
		wg.Go(func() {
			d.work(wctx, func(j *job) {
				if s.submit(wctx, j) {
					c.done(j.entry)
				}
			})
		})
	}
	// The committer outlives ctx: it commits what the workers finished
	// before they stopped, bounded by shutdownTimeout.
	cctx, stopCommits := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCommits()
	cdone := make(chan struct{})
	go func() {
		defer close(cdone)
		c.run(cctx)
	}()
	err := s.fetch(ctx, r, c, d)
	stopWorkers()
	wg.Wait()
	c.stop()
	select {
	case <-cdone:
	case <-time.After(shutdownTimeout):
		stopCommits()
		<-cdone
	}
	if cerr := r.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("closing kafka reader: %w", cerr)
	}
	return err
}

// fetch reads records and queues each behind its device's earlier ones
// until ctx ends.
func (s *Source) fetch(ctx context.Context, r *kafkago.Reader, c *committer, d *dispatcher) error {
	for {
		msg, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("fetching kafka command records: %w", err)
		}
		j := s.prepare(msg)
		j.entry = c.track(msg)
		if !d.push(ctx, orderKey(j.cmd), j) {
			return nil
		}
	}
}

// orderKey is what c's order is kept by: its device, or its topic.
func orderKey(c command.Command) string {
	if c.Device != "" {
		return c.Device
	}
	return c.Topic
}

// prepare maps msg to its job.
func (s *Source) prepare(msg kafkago.Message) *job {
	rv := &recordView{topic: msg.Topic, partition: msg.Partition, key: msg.Key, value: msg.Value}
	if len(msg.Headers) > 0 {
		rv.headers = make([]header, len(msg.Headers))
		for i, h := range msg.Headers {
			rv.headers[i] = header{Key: h.Key, Value: h.Value}
		}
	}
	now := s.now()
	if !msg.Time.IsZero() {
		s.m.age.Observe(max(0, now.Sub(msg.Time).Seconds()))
	}
	j := &job{msg: msg, fetched: now}
	j.cmd, j.invalid = s.mapper.command(rv, msg.Offset, msg.Time, now)
	if j.invalid != nil {
		// Submitted without a target, so the service records it as
		// rejected under its id and the producer sees why it went nowhere.
		j.cmd.Device, j.cmd.Topic = "", ""
	}
	return j
}

// submit submits j until it is durable or rejected; false when ctx ended
// first (the record stays uncommitted).
func (s *Source) submit(ctx context.Context, j *job) bool {
	log := s.log.With("kafka_topic", j.msg.Topic, "partition", j.msg.Partition, "offset", j.msg.Offset, "command_id", j.cmd.ID)
	wait := s.cfg.RetryInitial
	for attempt := 1; ; attempt++ {
		_, err := s.sub.Submit(ctx, j.cmd)
		var rej *command.RejectedError
		switch {
		case err == nil && j.invalid == nil:
			s.m.records.WithLabelValues(resultAccepted).Inc()
		case err == nil || errors.As(err, &rej):
			result, reason := resultRejected, ""
			if rej != nil {
				reason = rej.Reason
			}
			if j.invalid != nil {
				result, reason = resultInvalid, j.invalid.Error()
			}
			s.m.records.WithLabelValues(result).Inc()
			log.Warn("kafka command record rejected", "result", result, "reason", reason)
		case ctx.Err() != nil:
			return false
		default:
			s.m.retries.Inc()
			log.Warn("submitting kafka command; retrying", "attempt", attempt, "retry_in", wait, "err", err)
			t := time.NewTimer(jitter(wait))
			select {
			case <-ctx.Done():
				t.Stop()
				return false
			case <-t.C:
			}
			wait = min(2*wait, s.cfg.RetryMax)
			continue
		}
		s.m.submit.Observe(s.now().Sub(j.fetched).Seconds())
		return true
	}
}

// jitter spreads d over [d/2, d].
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}
