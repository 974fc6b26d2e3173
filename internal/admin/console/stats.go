package console

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"github.com/sluicehq/sluice/ingest"
)

// Point is one point of the throughput charts.
type Point struct {
	// T is the sample time in Unix milliseconds.
	T int64 `json:"t"`
	// In is PUBLISH packets accepted from clients per second.
	In float64 `json:"in"`
	// Out is PUBLISH packets queued to subscribers per second.
	Out float64 `json:"out"`
	// ToSinks is records delivered to sinks per second.
	ToSinks float64 `json:"to_sinks"`
}

// Snapshot is one sample of the stats stream: the broker, the pipeline's
// accounting, the sinks and the rules' hit counts.
type Snapshot struct {
	Point
	Connections   int64 `json:"connections"`
	Sessions      int64 `json:"sessions"`
	Subscriptions int   `json:"subscriptions"`
	Retained      int   `json:"retained"`
	PendingAcks   int64 `json:"pending_acks"`
	// Received and Sent are the broker's totals since start.
	Received uint64 `json:"received"`
	Sent     uint64 `json:"sent"`
	// Accounting sums the pipeline's flows (the identity to check).
	Accounting Accounting `json:"accounting"`
	// Flows are the per (rule, sink) counters.
	Flows []ingest.FlowStats `json:"flows"`
	// Sinks are the sinks' health, backlog and rate, by name.
	Sinks []SinkSample `json:"sinks"`
	// Rules are the rules' hit counts (only while someone watches).
	Rules []RuleSample `json:"rules"`
}

// Accounting is the pipeline's accounting summed over every flow:
// Received = Delivered + Buffered + DeadLettered + Dropped when Balanced.
type Accounting struct {
	Messages     int64 `json:"messages"`
	Unrouted     int64 `json:"unrouted"`
	DecodeErrors int64 `json:"decode_errors"`
	Rejected     int64 `json:"rejected"`
	Received     int64 `json:"received"`
	Delivered    int64 `json:"delivered"`
	Buffered     int64 `json:"buffered"`
	DeadLettered int64 `json:"dead_lettered"`
	Dropped      int64 `json:"dropped"`
	Balanced     bool  `json:"balanced"`
}

// SinkSample is one sink's state in a Snapshot.
type SinkSample struct {
	ingest.SinkStats
	// Backlog is the records routed to the sink and not yet delivered,
	// dead-lettered or dropped (the sum of its flows' buffered).
	Backlog int64 `json:"backlog"`
	// Delivered is the records the sink accepted since start.
	Delivered int64 `json:"delivered"`
	// Rate is records delivered per second.
	Rate float64 `json:"rate"`
}

// RuleSample is one rule's counters in a Snapshot.
type RuleSample struct {
	Rule    string  `json:"rule"`
	Matched float64 `json:"matched"`
	Passed  float64 `json:"passed"`
	Errors  float64 `json:"errors"`
	// Rate is messages matched per second.
	Rate float64 `json:"rate"`
}

// sampler keeps what the previous sample needs to compute rates. Only
// the Run goroutine touches it.
type sampler struct {
	at        time.Time
	received  uint64
	sent      uint64
	delivered map[string]int64 // by sink
	rulesAt   time.Time
	matched   map[string]float64
}

// Run samples every Interval until ctx ends and sends each sample to the
// stats streams. When ctx ends, the open streams (stats and taps) end too
// and Run returns nil.
func (c *Console) Run(ctx context.Context) error {
	defer c.doneOnce.Do(func() { close(c.done) })
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	var sm sampler
	c.sample(&sm, time.Now()) // the baseline for the first rates
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			c.sample(&sm, now)
		}
	}
}

// sample takes one snapshot, records it and fans it out.
func (c *Console) sample(sm *sampler, now time.Time) {
	watched := c.watchers() > 0
	s := c.snapshot(sm, now, watched)
	b, err := json.Marshal(s)
	if err != nil {
		c.log.Error("encoding stats sample", "err", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.latest = b
	c.hist.push(s.Point)
	for ch := range c.subs {
		select {
		case ch <- b:
		default:
			c.streamDrops.Add(1) // the stream's reader is slow: it misses a sample
		}
	}
}

func (c *Console) snapshot(sm *sampler, now time.Time, withRules bool) Snapshot {
	bs := c.opts.Broker.Stats()
	acct := c.opts.Pipeline.Accounting().Snapshot()
	s := Snapshot{
		Point:       Point{T: now.UnixMilli()},
		Connections: bs.Connections, Sessions: bs.Sessions, Subscriptions: bs.Subscriptions,
		Retained: bs.Retained, PendingAcks: bs.PendingAcks, Sent: bs.Sent,
		Flows: acct.Flows,
		Accounting: Accounting{Messages: acct.Messages, Unrouted: acct.Unrouted, DecodeErrors: acct.DecodeErrors,
			Rejected: acct.Rejected, Balanced: true},
	}
	if s.Flows == nil {
		s.Flows = []ingest.FlowStats{}
	}
	for _, n := range bs.Received {
		s.Received += n
	}
	delivered := map[string]int64{}
	backlog := map[string]int64{}
	for _, f := range acct.Flows {
		a := &s.Accounting
		a.Received += f.Received
		a.Delivered += f.Delivered
		a.Buffered += f.Buffered
		a.DeadLettered += f.DeadLettered
		for _, n := range f.Dropped {
			a.Dropped += n
		}
		a.Balanced = a.Balanced && f.Balanced()
		delivered[f.Sink] += f.Delivered
		backlog[f.Sink] += f.Buffered
	}
	// The rates divide by the gap between the samples' millisecond
	// timestamps, not the exact one, so a chart that integrates a rate
	// over its points' T gets back the count that arrived.
	dt := float64(now.UnixMilli()-sm.at.UnixMilli()) / 1000
	rate := func(cur, prev float64) float64 {
		if sm.at.IsZero() || dt <= 0 || cur < prev {
			return 0
		}
		return (cur - prev) / dt
	}
	s.In = rate(float64(s.Received), float64(sm.received))
	s.Out = rate(float64(s.Sent), float64(sm.sent))
	var sinkTotal float64
	for _, st := range c.opts.Pipeline.SinkStats() {
		ss := SinkSample{SinkStats: st, Backlog: backlog[st.Name], Delivered: delivered[st.Name]}
		ss.Rate = rate(float64(ss.Delivered), float64(sm.delivered[st.Name]))
		sinkTotal += ss.Rate
		s.Sinks = append(s.Sinks, ss)
	}
	sort.Slice(s.Sinks, func(i, j int) bool { return s.Sinks[i].Name < s.Sinks[j].Name })
	s.ToSinks = sinkTotal
	sm.at, sm.received, sm.sent, sm.delivered = now, s.Received, s.Sent, delivered
	s.Rules = []RuleSample{}
	if withRules && c.opts.Gatherer != nil {
		s.Rules = c.ruleSamples(sm, now)
	}
	return s
}

// ruleSamples reads the rules' counters from the metrics registry.
func (c *Console) ruleSamples(sm *sampler, now time.Time) []RuleSample {
	mfs, err := c.opts.Gatherer.Gather()
	if err != nil {
		c.log.Warn("gathering rule metrics", "err", err)
		return []RuleSample{}
	}
	byRule := map[string]*RuleSample{}
	for _, mf := range mfs {
		var set func(r *RuleSample, v float64)
		switch mf.GetName() {
		case "sluice_rule_matched_total":
			set = func(r *RuleSample, v float64) { r.Matched = v }
		case "sluice_rule_passed_total":
			set = func(r *RuleSample, v float64) { r.Passed = v }
		case "sluice_rule_errors_total":
			set = func(r *RuleSample, v float64) { r.Errors = v }
		default:
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() != "rule" {
					continue
				}
				r := byRule[l.GetValue()]
				if r == nil {
					r = &RuleSample{Rule: l.GetValue()}
					byRule[l.GetValue()] = r
				}
				set(r, m.GetCounter().GetValue())
			}
		}
	}
	out := make([]RuleSample, 0, len(byRule))
	matched := make(map[string]float64, len(byRule))
	dt := now.Sub(sm.rulesAt).Seconds()
	for _, r := range byRule {
		if prev, ok := sm.matched[r.Rule]; ok && dt > 0 && r.Matched >= prev {
			r.Rate = (r.Matched - prev) / dt
		}
		matched[r.Rule] = r.Matched
		out = append(out, *r)
	}
	sm.rulesAt, sm.matched = now, matched
	sort.Slice(out, func(i, j int) bool { return out[i].Rule < out[j].Rule })
	return out
}

// serveStats streams the stats as SSE: a "history" event with the chart
// points kept (Options.History), then a "sample" event (a Snapshot)
// every Interval.
func (c *Console) serveStats(w http.ResponseWriter, r *http.Request) {
	ch, ok := c.subscribe()
	if !ok {
		writeError(w, http.StatusTooManyRequests, "too many stats streams open")
		return
	}
	defer c.unsubscribe(ch)
	c.mu.Lock()
	hist := c.hist.points()
	latest := c.latest
	c.mu.Unlock()
	s, err := startSSE(w)
	if err == nil {
		err = s.json("history", map[string]any{"interval_ms": c.opts.Interval.Milliseconds(), "points": hist})
	}
	if err == nil && latest != nil {
		err = s.event("sample", latest)
	}
	ping := time.NewTicker(heartbeat)
	defer ping.Stop()
	for err == nil {
		select {
		case <-r.Context().Done():
			return
		case <-c.done:
			return
		case b := <-ch:
			err = s.event("sample", b)
		case <-ping.C:
			err = s.ping()
		}
	}
	c.log.Debug("stats stream ended", "err", err)
}

func (c *Console) subscribe() (chan []byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.subs) >= c.opts.MaxStreams {
		return nil, false
	}
	ch := make(chan []byte, 4)
	c.subs[ch] = struct{}{}
	return ch, true
}

func (c *Console) unsubscribe(ch chan []byte) {
	c.mu.Lock()
	delete(c.subs, ch)
	c.mu.Unlock()
}

func (c *Console) watchers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.subs)
}

// ring keeps the last len(buf) chart points.
type ring struct {
	buf  []Point
	next int // where the next point goes
	n    int // points held
}

func (r *ring) push(p Point) {
	r.buf[r.next] = p
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
}

// points returns the points held, oldest first.
func (r *ring) points() []Point {
	out := make([]Point, 0, r.n)
	start := (r.next - r.n + len(r.buf)) % len(r.buf)
	for i := range r.n {
		out = append(out, r.buf[(start+i)%len(r.buf)])
	}
	return out
}
