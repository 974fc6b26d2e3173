// Package tracing exports OpenTelemetry spans of sampled messages through
// the pipeline to an OTLP/HTTP receiver, as JSON, without the OpenTelemetry
// SDK. It is off by default and costs nothing then: the wrappers are not
// installed at all.
//
// A message's trace id is a hash of (client id, topic, receive time in
// nanoseconds), which the spool keeps with every record: the consumer, the
// router and the sinks each compute it from what they see, so their spans
// join one trace without carrying context through the spool, and the
// sampling decision (by trace id) agrees everywhere. Spans of a message:
//
//	mqtt.publish   receive → ack (the root; the ack follows durability)
//	├ decode       Deliver → routing (payload decoding, schema checks)
//	├ rules.route  the rules engine
//	├ ingest.durable  routing → ack (spool fsync or sink writes, per mode)
//	└ sink.write   one per attempt of the batch holding the record
package tracing

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/sinks"
)

// Config configures tracing. It is the `admin.tracing` section.
type Config struct {
	// Endpoint is the OTLP/HTTP receiver's base URL; spans are POSTed as
	// JSON to Endpoint + "/v1/traces" (e.g. http://127.0.0.1:4318 for an
	// OpenTelemetry Collector or Jaeger). Empty disables tracing.
	// Default: "".
	Endpoint string `koanf:"endpoint"`
	// SampleRatio is the fraction of messages traced, from 0 to 1.
	// Default: 0.01.
	SampleRatio float64 `koanf:"sample_ratio"`
	// ServiceName is the service.name resource attribute. Default: sluice.
	ServiceName string `koanf:"service_name"`
	// Headers are added to every export request (an API key, say).
	// Default: none.
	Headers map[string]string `koanf:"headers"`
}

// DefaultConfig returns the tracing defaults (disabled).
func DefaultConfig() Config { return Config{SampleRatio: 0.01, ServiceName: "sluice"} }

// Validate reports every problem with its key path below admin.tracing.
func (c Config) Validate() []error {
	var errs []error
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("endpoint: %q is not an http(s) URL", c.Endpoint))
		}
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 || math.IsNaN(c.SampleRatio) {
		errs = append(errs, fmt.Errorf("sample_ratio: %v is not between 0 and 1", c.SampleRatio))
	}
	return errs
}

// Options carries a Tracer's collaborators.
type Options struct {
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Registerer receives the exporter's counters; nil exports none.
	Registerer prometheus.Registerer
}

// Tracer samples messages and exports their spans. A nil *Tracer
// (tracing disabled) returns every wrapped value unchanged.
type Tracer struct {
	threshold uint64 // sampled when the trace id's low half < threshold
	all       bool   // ratio 1
	exp       *exporter
	pending   sync.Map // *broker.Message → *msgState, from Deliver to its ack
}

// New builds a Tracer from cfg; it returns nil when cfg.Endpoint is empty.
// It does no I/O.
func New(cfg Config, opts Options) (*Tracer, error) {
	if cfg.Endpoint == "" {
		return nil, nil
	}
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("validating tracing config: %w", errors.Join(errs...))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "sluice"
	}
	cfg.Endpoint = strings.TrimSuffix(cfg.Endpoint, "/")
	t := &Tracer{all: cfg.SampleRatio >= 1, exp: newExporter(cfg, opts.Logger)}
	if f := math.Ldexp(cfg.SampleRatio, 64); !t.all && f < math.Ldexp(1, 64) {
		t.threshold = uint64(f)
	} else {
		t.all = true
	}
	if opts.Registerer != nil {
		if err := errors.Join(opts.Registerer.Register(t.exp.exported), opts.Registerer.Register(t.exp.dropped)); err != nil {
			return nil, fmt.Errorf("registering tracing metrics: %w", err)
		}
	}
	return t, nil
}

// Run exports spans until ctx ends, then flushes what is queued (for at
// most 2 s). On a nil Tracer it just waits for ctx.
func (t *Tracer) Run(ctx context.Context) error {
	if t == nil {
		<-ctx.Done()
		return nil
	}
	t.exp.run(ctx)
	return nil
}

// traceID derives a message's trace id: FNV-1a over the client id and
// topic, mixed with the receive time. It allocates nothing (it runs for
// every message while tracing is on) and is never all zero.
func traceID(clientID, topic string, received time.Time) [16]byte {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(clientID); i++ {
		h = (h ^ uint64(clientID[i])) * prime
	}
	h = (h ^ 0xff) * prime // separator: ("ab","c") differs from ("a","bc")
	for i := 0; i < len(topic); i++ {
		h = (h ^ uint64(topic[i])) * prime
	}
	// FNV's bits barely move with the last input bytes: mix, so that the
	// sampling decision (on the low half) is uniform.
	lo := fmix64(h ^ fmix64(uint64(received.UnixNano())))
	hi := fmix64(lo ^ h ^ 0x9e3779b97f4a7c15)
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], hi|1<<63)
	binary.BigEndian.PutUint64(id[8:], lo)
	return id
}

// fmix64 is MurmurHash3's 64-bit finaliser.
func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}

// rootID is the id of a trace's root span, derived from the trace id so
// that every part of the pipeline can name it as parent.
func rootID(trace [16]byte) [8]byte {
	var id [8]byte
	for i := range id {
		id[i] = trace[i] ^ trace[i+8]
	}
	id[7] |= 1
	return id
}

func newSpanID() [8]byte {
	var id [8]byte
	binary.BigEndian.PutUint64(id[:], rand.Uint64()|1)
	return id
}

func (t *Tracer) sampled(trace [16]byte) bool {
	return t.all || binary.BigEndian.Uint64(trace[8:]) < t.threshold
}

// msgState is what the spans of one sampled message need between Deliver,
// Route and the ack.
type msgState struct {
	trace      [16]byte
	mu         sync.Mutex
	deliverAt  time.Time
	routeEnd   time.Time
	routed     bool
	outputs    int
	decodeFail string
}

// Consumer wraps the broker's consumer: the root span of each sampled
// message runs from its receipt to its ack.
func (t *Tracer) Consumer(c broker.Consumer) broker.Consumer {
	if t == nil {
		return c
	}
	return &consumer{t: t, next: c}
}

type consumer struct {
	t    *Tracer
	next broker.Consumer
}

// Deliver implements broker.Consumer.
func (c *consumer) Deliver(ctx context.Context, m *broker.Message, ack func(error)) {
	trace := traceID(m.ClientID, m.Topic, m.ReceivedAt)
	if !c.t.sampled(trace) {
		c.next.Deliver(ctx, m, ack)
		return
	}
	st := &msgState{trace: trace, deliverAt: time.Now()}
	c.t.pending.Store(m, st)
	c.next.Deliver(ctx, m, func(err error) {
		c.t.pending.Delete(m)
		c.t.finish(m, st, err)
		ack(err)
	})
}

// finish emits the root span and, when the message was routed, the wait
// for durability.
func (t *Tracer) finish(m *broker.Message, st *msgState, ackErr error) {
	now := time.Now()
	root := rootID(st.trace)
	st.mu.Lock()
	routed, routeEnd, outputs := st.routed, st.routeEnd, st.outputs
	st.mu.Unlock()
	if routed && outputs > 0 {
		t.exp.add(span{trace: st.trace, id: newSpanID(), parent: root, name: "ingest.durable", kind: 1,
			start: routeEnd, end: now, attrs: []attr{num("sluice.outputs", outputs)}})
	}
	s := span{trace: st.trace, id: root, name: "mqtt.publish", kind: 5, start: m.ReceivedAt, end: now,
		attrs: []attr{str("messaging.system", "mqtt"), str("messaging.destination.name", m.Topic),
			str("messaging.client.id", m.ClientID), num("mqtt.qos", int(m.QoS)), num("messaging.message.body.size", len(m.Payload))}}
	if ackErr != nil {
		s.err = ackErr.Error()
	}
	t.exp.add(s)
}

// Router wraps the rules: the decode span (from Deliver to routing) and
// the rules.route span of each sampled message.
func (t *Tracer) Router(r ingest.Router) ingest.Router {
	if t == nil {
		return r
	}
	return ingest.RouterFunc(func(in *ingest.Input, dst []ingest.Output) []ingest.Output {
		v, ok := t.pending.Load(in.Msg)
		if !ok {
			return r.Route(in, dst)
		}
		st := v.(*msgState)
		start := time.Now()
		n := len(dst)
		dst = r.Route(in, dst)
		end := time.Now()
		root := rootID(st.trace)
		dec := span{trace: st.trace, id: newSpanID(), parent: root, name: "decode", kind: 1, start: st.deliverAt, end: start}
		if in.DecodeErr != nil {
			dec.err = in.DecodeErr.Error()
		}
		t.exp.add(dec)
		outs := dst[n:]
		attrs := []attr{num("sluice.outputs", len(outs))}
		seen := map[string]bool{}
		for _, o := range outs {
			if !seen[o.Rule] {
				seen[o.Rule] = true
				attrs = append(attrs, str("sluice.rule", o.Rule))
			}
		}
		t.exp.add(span{trace: st.trace, id: newSpanID(), parent: root, name: "rules.route", kind: 1, start: start, end: end, attrs: attrs})
		st.mu.Lock()
		st.routed, st.routeEnd, st.outputs = true, end, len(outs)
		st.mu.Unlock()
		return dst
	})
}

// Sinks wraps every sink: one sink.write span per attempt for each
// sampled record of a batch.
func (t *Tracer) Sinks(set map[string]sinks.Sink) map[string]sinks.Sink {
	if t == nil {
		return set
	}
	out := make(map[string]sinks.Sink, len(set))
	for name, s := range set {
		ts := &tracedSink{t: t, name: name, next: s}
		if c, ok := s.(sinks.Connector); ok {
			out[name] = &tracedConnector{tracedSink: ts, c: c}
		} else {
			out[name] = ts
		}
	}
	return out
}

type tracedSink struct {
	t    *Tracer
	name string
	next sinks.Sink
}

var _ sinks.Sink = (*tracedSink)(nil)

// Write implements sinks.Sink.
func (s *tracedSink) Write(ctx context.Context, batch []sinks.Record) error {
	start := time.Now()
	err := s.next.Write(ctx, batch)
	end := time.Now()
	failed := map[int]error{}
	var be *sinks.BatchError
	if errors.As(err, &be) {
		for _, f := range be.Failed {
			failed[f.Index] = f.Err
		}
	}
	for i := range batch {
		r := &batch[i]
		trace := traceID(r.Source.ClientID, r.Source.Topic, r.Source.ReceivedAt)
		if !s.t.sampled(trace) {
			continue
		}
		sp := span{trace: trace, id: newSpanID(), parent: rootID(trace), name: "sink.write", kind: 3, start: start, end: end,
			attrs: []attr{str("sluice.sink", s.name), str("sluice.rule", r.Rule), num("sluice.batch_records", len(batch))}}
		switch {
		case be != nil && failed[i] != nil:
			sp.err = failed[i].Error()
		case err != nil && be == nil:
			sp.err = err.Error()
		}
		s.t.exp.add(sp)
	}
	return err
}

// Close implements sinks.Sink.
func (s *tracedSink) Close() error { return s.next.Close() }

// tracedConnector keeps a wrapped sink's Connect visible to the runner.
type tracedConnector struct {
	*tracedSink
	c sinks.Connector
}

// Connect implements sinks.Connector.
func (s *tracedConnector) Connect(ctx context.Context) error { return s.c.Connect(ctx) }
