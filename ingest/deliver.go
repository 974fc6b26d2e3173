package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/ingest/deadletter"
	"github.com/sluicehq/sluice/ingest/spool"
	"github.com/sluicehq/sluice/sinks"
)

// Reason codes the pipeline refuses a PUBLISH with.
const (
	codeUnspecified   = 0x80
	codeQuotaExceeded = 0x97
)

// Drop reasons of the pipeline itself.
const (
	// DropRejected: the message was refused to its publisher (spool full
	// past block_timeout, shutting down); a QoS 1/2 publisher got no
	// positive ack and keeps the message, a QoS 0 message is lost.
	DropRejected = "rejected"
	// DropStoreFailed: the spool or dead-letter store failed to write.
	DropStoreFailed = "store_failed"
)

// Deliver implements broker.Consumer: it decodes and routes m, then makes
// it durable according to its mode before acknowledging.
func (p *Pipeline) Deliver(ctx context.Context, m *broker.Message, ack func(error)) {
	p.acct.messages.Add(1)
	if !p.open.Load() || p.closing.Load() {
		p.acct.rejected.Add(1)
		ack(&broker.RejectError{Code: codeUnspecified, Reason: "pipeline not running"})
		return
	}
	if p.router == nil {
		p.acct.unrouted.Add(1)
		ack(nil)
		return
	}
	rt := p.routePool.Get().(*routing)
	defer p.putRouting(rt)
	in := &rt.in
	in.Msg = m
	if p.recycle != nil {
		in.Payload, rt.release, in.DecodeErr = p.recycle.DecodeRecycled(m.Topic, m.Payload)
	} else {
		in.Payload, in.DecodeErr = p.decoder.Decode(m.Topic, m.Payload)
	}
	if p.taps.on.Load() && p.taps.observe(in) {
		rt.release = nil // the tap keeps the payload: never recycled
	}
	if in.DecodeErr != nil {
		p.acct.decodeErrors.Add(1)
		var inv deadLetterer
		if errors.As(in.DecodeErr, &inv) && inv.DeadLetterPayload() {
			p.deadLetterInvalid(m, in.DecodeErr, ack)
			return
		}
	}
	outs := p.router.Route(in, rt.outs[:0])
	rt.outs = outs
	// The outputs are bytes now: the decoded payload can be recycled
	// before the wait for durability below.
	rt.releasePayload()
	if len(outs) == 0 {
		p.acct.unrouted.Add(1)
		ack(nil)
		return
	}

	// Count every output, set aside those bound for the dead-letter store;
	// the live ones are compacted to the front of outs.
	mode := ModeNone
	live := outs[:0]
	liveFlows := rt.flows[:0] // live[i]'s flow, looked up once
	var dead []*deadletter.Entry
	var deadFlows []*flow
	for i := range outs {
		o := &outs[i]
		f := p.acct.flow(o.Rule, o.Sink)
		f.received.Add(1)
		f.buffered.Add(1)
		reason := o.Err
		if reason == "" && p.runners[o.Sink] == nil {
			reason = fmt.Sprintf("unknown sink %q", o.Sink)
		}
		if reason != "" {
			dead = append(dead, &deadletter.Entry{
				Rule: o.Rule, Sink: o.Sink, Topic: m.Topic, ClientID: m.ClientID, Username: m.Username,
				QoS: m.QoS, ReceivedAt: m.ReceivedAt, Payload: m.Payload,
				Record: appendRecord(nil, m, outs[i:i+1]), Error: reason, Attempts: 0,
			})
			deadFlows = append(deadFlows, f)
			continue
		}
		om := o.Mode
		if om == "" {
			om = p.cfg.Durability
		}
		if om.rank() > mode.rank() {
			mode = om
		}
		live = append(live, *o) // never ahead of i: o is read first
		liveFlows = append(liveFlows, f)
	}
	rt.flows = liveFlows
	if len(dead) > 0 {
		if err := p.dlq.Add(dead...); err != nil {
			p.log.Error("writing dead letters", "error", err)
			for _, f := range deadFlows {
				f.drop(DropStoreFailed, 1)
			}
			p.refuse(liveFlows, ack, codeUnspecified, "dead-letter store failed")
			return
		}
		for _, f := range deadFlows {
			f.deadLettered.Add(1)
			f.buffered.Add(-1)
		}
	}
	if len(live) == 0 {
		ack(nil)
		return
	}
	switch mode {
	case ModeSpool:
		p.deliverSpool(ctx, m, live, liveFlows, ack)
	default:
		p.deliverMemory(ctx, m, live, liveFlows, mode, ack)
	}
}

// deadLetterer is implemented by decode errors whose payload must go to
// the dead-letter store instead of the rules (a schema binding's
// on_invalid: dead_letter).
type deadLetterer interface{ DeadLetterPayload() bool }

// Accounting labels of payloads dead-lettered before routing.
const (
	invalidRule = "schemas"
	invalidSink = "dead_letter"
)

// deadLetterInvalid stores an undecodable or invalid message, with the
// reason, before acknowledging it.
func (p *Pipeline) deadLetterInvalid(m *broker.Message, reason error, ack func(error)) {
	f := p.acct.flow(invalidRule, invalidSink)
	f.received.Add(1)
	f.buffered.Add(1)
	err := p.dlq.Add(&deadletter.Entry{
		Rule: invalidRule, Sink: invalidSink, Topic: m.Topic, ClientID: m.ClientID, Username: m.Username,
		QoS: m.QoS, ReceivedAt: m.ReceivedAt, Payload: m.Payload, Error: reason.Error(),
	})
	if err != nil {
		p.log.Error("writing dead letter for an invalid payload", "error", err)
		f.drop(DropStoreFailed, 1)
		p.acct.rejected.Add(1)
		ack(&broker.RejectError{Code: codeUnspecified, Reason: "dead-letter store failed"})
		return
	}
	f.deadLettered.Add(1)
	f.buffered.Add(-1)
	ack(nil)
}

// refuse rejects a message to its publisher after its outputs were
// counted in flows.
func (p *Pipeline) refuse(flows []*flow, ack func(error), code byte, reason string) {
	p.acct.rejected.Add(1)
	for _, f := range flows {
		f.drop(DropRejected, 1)
	}
	ack(&broker.RejectError{Code: code, Reason: reason})
}

// routing is one Deliver call's scratch space, pooled: the router's
// input, its outputs and their flows. Nothing keeps them past Deliver
// (routers copy what they keep; a tap that keeps the decoded payload
// keeps it from being released).
type routing struct {
	in    Input
	outs  []Output
	flows []*flow
	// release gives back the decoded payload's memory once routed (see
	// RecyclingDecoder).
	release Releaser
}

func newRouting() any { return &routing{outs: make([]Output, 0, 8), flows: make([]*flow, 0, 8)} }

// releasePayload gives back the decoded payload's memory, if it has any
// to give back; the payload must be out of use.
func (rt *routing) releasePayload() {
	if rt.release != nil {
		rt.in.Payload = nil
		rt.release.Release()
		rt.release = nil
	}
}

func (p *Pipeline) putRouting(rt *routing) {
	rt.releasePayload()
	rt.in = Input{}
	clear(rt.outs)
	clear(rt.flows)
	p.routePool.Put(rt)
}

// spoolAppend is one message on its way into the spool: its encoded
// record and what the append's done callback needs. Pooled: the spool
// holds the record only until done is called.
type spoolAppend struct {
	p      *Pipeline
	rec    []byte
	flows  []*flow
	ack    func(error)
	qos0   bool
	doneFn func(uint64, error) // sa.done, bound once
}

func newSpoolAppend(p *Pipeline) *spoolAppend {
	sa := &spoolAppend{p: p}
	sa.doneFn = sa.done
	return sa
}

// done runs on the spool's committer once the record is durable (or
// failed): it acknowledges the publisher and recycles sa.
func (sa *spoolAppend) done(_ uint64, err error) {
	p, ack, qos0 := sa.p, sa.ack, sa.qos0
	if err != nil {
		p.log.Error("spool write failed", "error", err)
		p.acct.rejected.Add(1)
		for _, f := range sa.flows {
			f.drop(DropStoreFailed, 1)
		}
	}
	sa.release()
	switch {
	case qos0:
	case err != nil:
		ack(&broker.RejectError{Code: codeUnspecified, Reason: "spool write failed"})
	default:
		ack(nil)
	}
}

// release clears sa's references and pools it (a record buffer grown by a
// large message is dropped rather than kept).
func (sa *spoolAppend) release() {
	clear(sa.flows)
	sa.flows = sa.flows[:0]
	sa.ack = nil
	if cap(sa.rec) > 16<<10 {
		sa.rec = nil
	}
	sa.p.appendPool.Put(sa)
}

func (p *Pipeline) deliverSpool(ctx context.Context, m *broker.Message, outs []Output, flows []*flow, ack func(error)) {
	sa := p.appendPool.Get().(*spoolAppend)
	sa.rec = appendRecord(sa.rec[:0], m, outs)
	sa.flows = append(sa.flows[:0], flows...)
	sa.ack = ack
	// A QoS 0 message has nobody to acknowledge: it is accepted once
	// queued, on the publisher's own goroutine, so the broker can pace the
	// publisher to its subscribers there instead of routing (and perhaps
	// dropping) from the committer goroutine.
	qos0 := m.QoS == 0
	sa.qos0 = qos0
	err := p.spool.AppendWait(ctx, sa.rec, p.cfg.Spool.BlockTimeout, sa.doneFn)
	if err == nil && qos0 {
		ack(nil)
	}
	if err != nil {
		sa.release() // never queued: done will not run
		code, reason := byte(codeUnspecified), "spool unavailable"
		if errors.Is(err, spool.ErrWaitTimeout) || errors.Is(err, context.DeadlineExceeded) {
			code, reason = codeQuotaExceeded, "spool full"
		}
		p.refuse(flows, ack, code, reason)
	}
}

// memDelivery is a delivery of the memory path with its own copy of the
// output (the spool path's deliveries point into their decoded record).
type memDelivery struct {
	delivery
	out Output
}

// deliverMemory hands outputs straight to their runners: mode sinks acks
// once every output is accepted, mode none at once.
func (p *Pipeline) deliverMemory(ctx context.Context, m *broker.Message, outs []Output, flows []*flow, mode Mode, ack func(error)) {
	var remaining atomic.Int32
	var lost atomic.Bool
	remaining.Store(int32(len(outs)))
	for i := range outs {
		f := flows[i]
		md := &memDelivery{out: outs[i]} // outs is Deliver's scratch: copied
		o := &md.out
		md.delivery = delivery{msg: m, out: o, rec: toRecord(m, o), flow: f}
		d := &md.delivery
		d.done = func(ok bool) {
			if !ok {
				lost.Store(true)
				f.drop(DropShutdown, 1)
			}
			if remaining.Add(-1) == 0 && mode == ModeSinks {
				if lost.Load() {
					ack(&broker.RejectError{Code: codeUnspecified, Reason: "shutting down"})
				} else {
					ack(nil)
				}
			}
		}
		if err := p.runners[o.Sink].enqueue(ctx, d); err != nil {
			// The publisher went away while pushed back: count what was
			// not handed over as refused, and answer the ack (exactly
			// once in every mode; outputs already handed over finish on
			// their own without acking, as remaining cannot reach zero).
			p.refuse(flows[i:], ack, codeUnspecified, "publisher gone")
			return
		}
	}
	if mode == ModeNone {
		ack(nil)
	}
}

// toRecord builds the sink's view of one output.
func toRecord(m *broker.Message, o *Output) sinks.Record {
	r := sinks.Record{
		Rule: o.Rule, Topic: o.Topic, Key: o.Key, Value: o.Value, QoS: o.QoS, Retain: o.Retain,
		Source: sinks.Source{
			Topic: m.Topic, ClientID: m.ClientID, Username: m.Username, QoS: m.QoS, Retain: m.Retain,
			ContentType: m.ContentType, ReceivedAt: m.ReceivedAt,
		},
	}
	if r.Key == nil && m.ClientID != "" {
		// Sinks only read keys, so the client id's bytes are shared.
		r.Key = unsafe.Slice(unsafe.StringData(m.ClientID), len(m.ClientID))
	}
	if r.Value == nil {
		r.Value = m.Payload
	}
	if len(m.UserProperties) > 0 {
		r.Source.UserProperties = make([]sinks.UserProperty, len(m.UserProperties))
		for i, up := range m.UserProperties {
			r.Source.UserProperties[i] = sinks.UserProperty{Name: up.Name, Value: up.Value}
		}
	}
	return r
}
