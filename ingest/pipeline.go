// Package ingest is Sluice's pipeline: every message the broker accepts is
// decoded, routed by the rules, made durable according to its durability
// mode (spool, sinks or none) and fanned out to one runner per sink. See
// DESIGN.md for the guarantees.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/ingest/deadletter"
	"github.com/sluicehq/sluice/ingest/spool"
	"github.com/sluicehq/sluice/sinks"
)

// Decoder turns a payload into the value rules see as `payload`.
type Decoder interface {
	Decode(topic string, payload []byte) (any, error)
}

// JSONDecoder decodes every payload as JSON.
type JSONDecoder struct{}

// Decode implements Decoder.
func (JSONDecoder) Decode(_ string, payload []byte) (any, error) {
	var v any
	if err := json.Unmarshal(payload, &v); err != nil {
		return nil, fmt.Errorf("decoding JSON payload: %w", err)
	}
	return v, nil
}

// Options carries a Pipeline's collaborators.
type Options struct {
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Registerer receives the pipeline's metrics; nil exports none.
	Registerer prometheus.Registerer
	// Router routes messages; nil routes nothing (every message is
	// counted as unrouted and acknowledged at once).
	Router Router
	// Decoder decodes payloads for the router; default JSONDecoder.
	Decoder Decoder
	// Sinks are the configured sinks by name. The pipeline closes them.
	Sinks map[string]sinks.Sink
}

// Pipeline implements broker.Consumer.
type Pipeline struct {
	cfg     Config
	log     *slog.Logger
	reg     prometheus.Registerer
	router  Router
	decoder Decoder
	recycle RecyclingDecoder // decoder, when it recycles
	acct    *Accounting
	runners map[string]*runner

	sinkMetrics *sinkMetrics

	spool    *spool.Spool
	dlq      *deadletter.Store
	startOff uint64 // spool head at open: records below it are recovered
	cursors  map[string]*spool.Cursor

	open       atomic.Bool
	closing    atomic.Bool
	taps       taps      // live taps (tap.go)
	routePool  sync.Pool // *routing
	appendPool sync.Pool // *spoolAppend
	wg         sync.WaitGroup
}

var _ broker.Consumer = (*Pipeline)(nil)

// New validates cfg and builds a pipeline. It does no I/O.
func New(cfg Config, opts Options) (*Pipeline, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("invalid ingest config: %w", errors.Join(errs...))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Decoder == nil {
		opts.Decoder = JSONDecoder{}
	}
	p := &Pipeline{
		cfg: cfg, log: opts.Logger.With("component", "ingest"), reg: opts.Registerer,
		router: opts.Router, decoder: opts.Decoder, acct: newAccounting(),
		runners: map[string]*runner{}, cursors: map[string]*spool.Cursor{},
		sinkMetrics: newSinkMetrics(),
	}
	p.recycle, _ = p.decoder.(RecyclingDecoder)
	p.routePool.New = newRouting
	p.appendPool.New = func() any { return newSpoolAppend(p) }
	for name, s := range opts.Sinks {
		r := newRunner(name, s, cfg, nil, p.log.With("sink", name))
		r.obs = p.sinkMetrics.observer(name)
		p.runners[name] = r
	}
	return p, nil
}

// Accounting returns the pipeline's counters.
func (p *Pipeline) Accounting() *Accounting { return p.acct }

// DeadLetters returns the dead-letter store (nil before Open).
func (p *Pipeline) DeadLetters() *deadletter.Store { return p.dlq }

// Open opens the spool and the dead-letter store, recovering from a
// crash if needed, and registers metrics. Deliver may be called after it.
func (p *Pipeline) Open() error {
	dlq, err := deadletter.Open(filepath.Join(p.cfg.DataDir, "deadletter"), 0, p.log)
	if err != nil {
		return err
	}
	sp, err := spool.Open(filepath.Join(p.cfg.DataDir, "spool"), spool.Options{
		SegmentBytes:   p.cfg.Spool.SegmentBytes,
		MaxBytes:       p.cfg.Spool.MaxBytes,
		Policy:         spool.Policy(p.cfg.Spool.Policy),
		CommitInterval: p.cfg.Spool.CommitInterval,
		CommitBytes:    p.cfg.Spool.CommitBytes,
		OnDrop:         p.onSpoolDrop,
		OnDropRecord:   p.onSpoolDropRecord,
		Logger:         p.log.With("component", "spool"),
	})
	if err != nil {
		dlq.Close()
		return fmt.Errorf("opening spool: %w", err)
	}
	p.dlq, p.spool = dlq, sp
	p.startOff = sp.Stats().Head
	for name, r := range p.runners {
		r.dlq = dlq
		c, err := sp.Cursor(name)
		if err != nil {
			p.closeStores()
			return fmt.Errorf("opening spool cursor for sink %s: %w", name, err)
		}
		p.cursors[name] = c
	}
	// A sink removed from the config must not hold retention forever.
	for _, name := range sp.Cursors() {
		if _, ok := p.runners[name]; ok {
			continue
		}
		p.log.Warn("removing the spool cursor of a sink no longer configured; its unread records are abandoned", "sink", name)
		if err := sp.RemoveCursor(name); err != nil {
			p.closeStores()
			return fmt.Errorf("removing spool cursor %s: %w", name, err)
		}
	}
	if p.reg != nil {
		if err := errors.Join(p.reg.Register(p.acct), p.reg.Register(sinkCollector{p})); err != nil {
			p.closeStores()
			return fmt.Errorf("registering ingest metrics: %w", err)
		}
	}
	p.open.Store(true)
	return nil
}

func (p *Pipeline) closeStores() {
	for name, r := range p.runners {
		if err := r.sink.Close(); err != nil {
			p.log.Error("closing sink", "sink", name, "error", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.ShutdownTimeout)
	defer cancel()
	if p.spool != nil {
		if err := p.spool.Close(ctx); err != nil {
			p.log.Error("closing spool", "error", err)
		}
	}
	if p.dlq != nil {
		if err := p.dlq.Close(); err != nil {
			p.log.Error("closing dead-letter store", "error", err)
		}
	}
}

// onSpoolDrop is called by the spool when drop_oldest deleted records a
// sink had not read (each was first passed to onSpoolDropRecord).
func (p *Pipeline) onSpoolDrop(cursor string, records uint64, reason string) {
	p.log.Warn("spool dropped unread records", "sink", cursor, "records", records, "reason", reason)
}

// onSpoolDropRecord counts one record a sink lost to drop_oldest against
// the (rule, sink) flows it carried.
func (p *Pipeline) onSpoolDropRecord(cursor string, off uint64, data []byte, reason string) {
	rec, err := decodeRecord(data)
	if err != nil {
		p.acct.corrupt.Add(1)
		return
	}
	for i := range rec.outputs {
		o := &rec.outputs[i]
		if o.Sink != cursor || o.Err != "" {
			continue
		}
		f := p.acct.flow(o.Rule, o.Sink)
		if off < p.startOff {
			// From before this start: not counted as received yet.
			f.received.Add(1)
			f.buffered.Add(1)
		}
		f.drop(reason, 1)
	}
}

// Run feeds every sink from its spool cursor until ctx ends, then drains:
// in-flight writes get ShutdownTimeout to finish, what is left stays in the
// spool (or, for none mode, is counted as dropped), and the stores are
// closed. Call it after Open; stop the broker first so no Deliver races
// the shutdown.
func (p *Pipeline) Run(ctx context.Context) error {
	if !p.open.Load() {
		return errors.New("ingest: Run before Open")
	}
	runCtx, cancelRunners := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRunners()
	var feeders sync.WaitGroup
	for name, r := range p.runners {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			r.run(runCtx)
		}()
		feeders.Add(1)
		go func() {
			defer feeders.Done()
			p.feed(ctx, r, p.cursors[name])
		}()
	}
	<-ctx.Done()
	p.closing.Store(true)
	feeders.Wait()
	// Soft: let queued deliveries flush; hard: after the deadline, cancel.
	deadline := time.NewTimer(p.cfg.ShutdownTimeout)
	defer deadline.Stop()
	for !p.drained() {
		select {
		case <-deadline.C:
			p.log.Warn("shutdown deadline reached with records in flight; they stay in the spool")
			cancelRunners()
			p.wg.Wait()
			p.closeStores()
			return nil
		case <-time.After(5 * time.Millisecond):
		}
	}
	cancelRunners()
	p.wg.Wait()
	p.closeStores()
	return nil
}

func (p *Pipeline) drained() bool {
	for _, r := range p.runners {
		if r.inflight.Load() > 0 {
			return false
		}
	}
	return true
}

func (p *Pipeline) spoolStats() any {
	if p.spool == nil {
		return nil
	}
	return p.spool.Stats()
}

// A Releaser gives back the memory a decoded payload was built in.
type Releaser interface{ Release() }

// RecyclingDecoder is a Decoder that can build payloads in recycled
// memory. The pipeline decodes with DecodeRecycled and calls r.Release
// once routing is over and nothing refers to the value any more (a tap
// that keeps the message keeps it from being released). r is nil when
// there is nothing to release (always on error).
type RecyclingDecoder interface {
	DecodeRecycled(topic string, payload []byte) (v any, r Releaser, err error)
}
