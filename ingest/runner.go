package ingest

import (
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/ingest/deadletter"
	"github.com/sluicehq/sluice/sinks"
)

// delivery is one output on its way to one sink.
type delivery struct {
	rec  sinks.Record
	flow *flow
	// The message and output a dead-letter entry keeps (re-encoded as a
	// record with this output only) so a replay re-drives exactly it:
	// msg and out on the memory path; on the spool path the record's
	// bytes and the output's index in it, decoded again only then.
	msg      *broker.Message
	out      *Output
	raw      []byte
	outIdx   int
	attempts int
	lastErr  error
	// done is called exactly once, when the delivery has reached its
	// outcome (delivered, dead-lettered or dropped); ok is false only
	// when the runner gave up on it at shutdown.
	done func(ok bool)
}

// runner drives one sink: ordering lanes, batching, retries with backoff,
// dead-lettering and the sink's share of the accounting. It is the one
// generic runner every sink uses; a sink only does I/O.
type runner struct {
	name  string
	sink  sinks.Sink
	cfg   Config
	log   *slog.Logger
	dlq   *deadletter.Store
	lanes []chan *delivery
	seed  maphash.Seed
	state *sinkState
	obs   observer
	// inflight counts deliveries enqueued and not yet finished.
	inflight atomic.Int64
}

// finish ends a delivery.
func (r *runner) finish(d *delivery, ok bool) {
	r.inflight.Add(-1)
	d.done(ok)
}

// batchOverrider is implemented by sinks that want their own batch
// bounds (ClickHouse wants tens of thousands of rows and a long linger).
type batchOverrider interface {
	BatchOverride() (maxRecords, maxBytes int, linger time.Duration)
}

func newRunner(name string, s sinks.Sink, cfg Config, dlq *deadletter.Store, log *slog.Logger) *runner {
	if o, ok := s.(batchOverrider); ok {
		n, b, l := o.BatchOverride()
		if n > 0 {
			cfg.Batch.MaxRecords = n
		}
		if b > 0 {
			cfg.Batch.MaxBytes = b
		}
		if l > 0 {
			cfg.Batch.Linger = l
		}
	}
	r := &runner{name: name, sink: s, cfg: cfg, dlq: dlq, log: log, seed: maphash.MakeSeed(), state: &sinkState{}}
	r.lanes = make([]chan *delivery, cfg.Lanes)
	for i := range r.lanes {
		r.lanes[i] = make(chan *delivery, cfg.QueueSize)
	}
	return r
}

// lane picks the ordering lane for a key: one key, one lane, so one
// client's messages reach the sink in the order they were published.
func (r *runner) lane(key []byte) chan *delivery {
	if len(r.lanes) == 1 {
		return r.lanes[0]
	}
	return r.lanes[maphash.Bytes(r.seed, key)%uint64(len(r.lanes))]
}

// enqueue hands d to its lane, waiting while the lane is full.
func (r *runner) enqueue(ctx context.Context, d *delivery) error {
	r.inflight.Add(1)
	select {
	case r.lane(d.rec.Key) <- d:
		return nil
	default:
	}
	select {
	case r.lane(d.rec.Key) <- d:
		return nil
	case <-ctx.Done():
		r.inflight.Add(-1)
		return ctx.Err()
	}
}

// run connects the sink and serves every lane until ctx ends. Deliveries
// still queued then are returned through their done(false).
func (r *runner) run(ctx context.Context) {
	if c, ok := r.sink.(sinks.Connector); ok {
		r.connect(ctx, c)
	}
	var wg sync.WaitGroup
	for _, ch := range r.lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.serveLane(ctx, ch)
		}()
	}
	wg.Wait()
	for _, ch := range r.lanes {
		r.abandon(ch)
	}
}

func (r *runner) connect(ctx context.Context, c sinks.Connector) {
	for attempt := 0; ; attempt++ {
		err := c.Connect(ctx)
		if err == nil {
			r.state.setConnected(true, nil)
			return
		}
		r.state.setConnected(false, err)
		r.log.Warn("connecting sink", "attempt", attempt+1, "error", err)
		if !sleep(ctx, r.backoff(attempt)) {
			return
		}
	}
}

// abandon drains a lane after shutdown.
func (r *runner) abandon(ch chan *delivery) {
	for {
		select {
		case d := <-ch:
			r.finish(d, false)
		default:
			return
		}
	}
}

func (r *runner) serveLane(ctx context.Context, ch chan *delivery) {
	batch := make([]*delivery, 0, r.cfg.Batch.MaxRecords)
	recs := make([]sinks.Record, 0, r.cfg.Batch.MaxRecords) // reused by write
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		batch = batch[:0]
		select {
		case d := <-ch:
			batch = append(batch, d)
		case <-ctx.Done():
			return
		}
		size := len(batch[0].rec.Value)
		if r.cfg.Batch.Linger > 0 {
			timer.Reset(r.cfg.Batch.Linger)
		}
	fill:
		for len(batch) < r.cfg.Batch.MaxRecords && size < r.cfg.Batch.MaxBytes {
			select {
			case d := <-ch:
				batch = append(batch, d)
				size += len(d.rec.Value)
				continue
			default:
			}
			if r.cfg.Batch.Linger <= 0 {
				break
			}
			select {
			case d := <-ch:
				batch = append(batch, d)
				size += len(d.rec.Value)
			case <-timer.C:
				break fill
			case <-ctx.Done():
				break fill
			}
		}
		timer.Stop()
		if !r.write(ctx, batch, recs) {
			for _, d := range batch {
				if d != nil {
					r.finish(d, false)
				}
			}
			return
		}
	}
}

// write delivers batch, retrying what fails until every delivery has an
// outcome. It returns false when ctx ended first; the deliveries still
// pending are then set non-nil in batch and everything else is nil. recs
// is scratch space for the records handed to the sink, reused from one
// write to the next (a sink does not keep the slice past Write).
func (r *runner) write(ctx context.Context, batch []*delivery, recs []sinks.Record) bool {
	pending := batch
	for attempt := 0; len(pending) > 0; attempt++ {
		recs = recs[:0]
		for _, d := range pending {
			d.attempts++
			recs = append(recs, d.rec)
		}
		start := time.Now()
		err := r.sink.Write(ctx, recs)
		took := time.Since(start)
		r.state.observe(len(recs), took, err)
		r.obs.observe(len(recs), took)
		if err == nil {
			for i, d := range pending {
				d.flow.delivered.Add(1)
				d.flow.buffered.Add(-1)
				r.finish(d, true)
				pending[i] = nil
			}
			return true
		}
		failed := failures(err, len(pending))
		retry := pending[:0:0]
		failedKeys := map[string]bool{}
		var dead []*delivery
		var wait time.Duration
		for i, d := range pending {
			ferr, bad := failed[i]
			if bad {
				d.lastErr = ferr
			}
			switch {
			case bad && (sinks.IsPermanent(ferr) || (r.cfg.Retry.MaxAttempts > 0 && d.attempts >= r.cfg.Retry.MaxAttempts)):
				dead = append(dead, d)
				r.deadLetterNote(d, ferr)
			case bad:
				failedKeys[string(d.rec.Key)] = true
				retry = append(retry, d)
				var ra *sinks.RetryAfterError
				if errors.As(ferr, &ra) && ra.After > wait {
					wait = ra.After
				}
			case failedKeys[string(d.rec.Key)]:
				// Accepted, but an earlier record with the same key failed:
				// resend it after that one so the key's order holds at
				// the destination (a duplicate, counted as a retry).
				retry = append(retry, d)
			default:
				d.flow.delivered.Add(1)
				d.flow.buffered.Add(-1)
				r.finish(d, true)
			}
		}
		if len(dead) > 0 && !r.deadLetter(ctx, dead) {
			// The dead-letter store refused: keep them pending, retrying.
			retry = append(retry, dead...)
		}
		for _, d := range retry {
			d.flow.retried.Add(1)
		}
		for i := range pending {
			pending[i] = nil
		}
		pending = retry
		if len(pending) == 0 {
			return true
		}
		if d := r.backoff(attempt); d > wait {
			wait = d
		}
		if !sleep(ctx, wait) {
			copy(batch, pending)
			for i := len(pending); i < len(batch); i++ {
				batch[i] = nil
			}
			return false
		}
	}
	return true
}

func (r *runner) deadLetterNote(d *delivery, err error) {
	r.log.Warn("dead-lettering record", "rule", d.rec.Rule, "topic", d.rec.Source.Topic, "client_id", d.rec.Source.ClientID, "attempts", d.attempts, "error", err)
}

// deadLetter stores ds in the dead-letter store. It reports false when the
// store refused them (full, or failing): they stay pending and are retried.
func (r *runner) deadLetter(ctx context.Context, ds []*delivery) bool {
	entries := make([]*deadletter.Entry, len(ds))
	for i, d := range ds {
		entries[i] = &deadletter.Entry{
			Rule: d.rec.Rule, Sink: r.name, Topic: d.rec.Source.Topic, ClientID: d.rec.Source.ClientID,
			Username: d.rec.Source.Username, QoS: d.rec.Source.QoS, ReceivedAt: d.rec.Source.ReceivedAt,
			Attempts: d.attempts, Error: errString(d.lastErr),
		}
		entries[i].Payload, entries[i].Record = d.original()
	}
	if err := r.dlq.Add(entries...); err != nil {
		r.log.Error("writing dead letters; keeping records pending", "error", err)
		return false
	}
	for _, d := range ds {
		d.flow.deadLettered.Add(1)
		d.flow.buffered.Add(-1)
		r.finish(d, true)
	}
	return true
}

// original returns the payload of the message d came from and the
// record of d's output alone, what a dead-letter entry keeps.
func (d *delivery) original() (payload, rec []byte) {
	if d.raw == nil {
		return d.msg.Payload, appendRecord(nil, d.msg, []Output{*d.out})
	}
	full, err := decodeRecord(d.raw)
	if err != nil || d.outIdx >= len(full.outputs) {
		// Decoded once already by the feed: cannot happen. Keep the
		// whole record rather than nothing.
		return nil, d.raw
	}
	return full.msg.Payload, appendRecord(nil, &full.msg, full.outputs[d.outIdx:d.outIdx+1])
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// failures maps the indexes of failed records to their errors.
func failures(err error, n int) map[int]error {
	var be *sinks.BatchError
	m := make(map[int]error)
	if errors.As(err, &be) && len(be.Failed) > 0 {
		for _, f := range be.Failed {
			if f.Index >= 0 && f.Index < n {
				m[f.Index] = f.Err
			}
		}
		return m
	}
	for i := 0; i < n; i++ {
		m[i] = err
	}
	return m
}

// backoff returns the delay before retry attempt n: exponential from
// Retry.Initial, capped at Retry.Max, with full jitter over its upper half.
func (r *runner) backoff(n int) time.Duration {
	d := r.cfg.Retry.Initial
	for i := 0; i < n && d < r.cfg.Retry.Max; i++ {
		d *= 2
	}
	d = min(d, r.cfg.Retry.Max)
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends; it reports whether the full wait passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
