package ingest

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Drop reasons.
const (
	DropSpoolFull = "spool_full" // drop_oldest deleted records a sink had not read
	DropNoSink    = "unknown_sink"
	DropShutdown  = "shutdown" // a none-mode record still queued in memory at shutdown
)

// flow counts one (rule, sink) pair. Every routed output is counted in
// received and then in exactly one of delivered, deadLettered or dropped;
// buffered rises with received and falls with each outcome.
type flow struct {
	rule, sink   string
	received     atomic.Int64
	delivered    atomic.Int64
	retried      atomic.Int64
	deadLettered atomic.Int64
	buffered     atomic.Int64
	dropMu       sync.Mutex
	dropped      map[string]int64
}

func (f *flow) drop(reason string, n int64) {
	f.dropMu.Lock()
	if f.dropped == nil {
		f.dropped = make(map[string]int64)
	}
	f.dropped[reason] += n
	f.dropMu.Unlock()
	f.buffered.Add(-n)
}

type flowKey struct{ rule, sink string }

// Accounting holds the pipeline's counters. It is exported to Prometheus
// through a collector that reads the counters at scrape time, so the hot
// path pays only atomic adds.
type Accounting struct {
	mu    sync.RWMutex
	flows map[flowKey]*flow

	messages     atomic.Int64 // messages handed over by the broker
	unrouted     atomic.Int64 // messages no rule matched
	decodeErrors atomic.Int64
	rejected     atomic.Int64 // messages refused to the publisher (spool full, shutdown)
	corrupt      atomic.Int64 // spooled records that could not be decoded
}

func newAccounting() *Accounting {
	return &Accounting{flows: make(map[flowKey]*flow)}
}

func (a *Accounting) flow(rule, sink string) *flow {
	k := flowKey{rule, sink}
	a.mu.RLock()
	f := a.flows[k]
	a.mu.RUnlock()
	if f != nil {
		return f
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if f = a.flows[k]; f == nil {
		// The names may alias a spooled record's bytes: keep copies.
		rule, sink = strings.Clone(rule), strings.Clone(sink)
		f = &flow{rule: rule, sink: sink}
		a.flows[flowKey{rule, sink}] = f
	}
	return f
}

// FlowStats is the accounting of one (rule, sink) pair. Received always
// equals Delivered + Buffered + DeadLettered + the sum of Dropped.
type FlowStats struct {
	Rule         string           `json:"rule"`
	Sink         string           `json:"sink"`
	Received     int64            `json:"received"`
	Delivered    int64            `json:"delivered"`
	Retried      int64            `json:"retried"`
	DeadLettered int64            `json:"dead_lettered"`
	Dropped      map[string]int64 `json:"dropped"`
	Buffered     int64            `json:"buffered"`
}

// Balanced reports whether the accounting identity holds.
func (s FlowStats) Balanced() bool {
	var dropped int64
	for _, n := range s.Dropped {
		dropped += n
	}
	return s.Received == s.Delivered+s.Buffered+s.DeadLettered+dropped
}

// Stats is a snapshot of the pipeline's accounting.
type Stats struct {
	Messages     int64       `json:"messages"`
	Unrouted     int64       `json:"unrouted"`
	DecodeErrors int64       `json:"decode_errors"`
	Rejected     int64       `json:"rejected"`
	Corrupt      int64       `json:"corrupt_records"`
	Flows        []FlowStats `json:"flows"`
}

// Snapshot returns the current counters, flows sorted by rule then sink.
// Counters are read one by one while traffic flows, so a snapshot taken
// mid-stream may be off by the records in transit between two reads; at
// rest it balances exactly.
func (a *Accounting) Snapshot() Stats {
	s := Stats{
		Messages:     a.messages.Load(),
		Unrouted:     a.unrouted.Load(),
		DecodeErrors: a.decodeErrors.Load(),
		Rejected:     a.rejected.Load(),
		Corrupt:      a.corrupt.Load(),
	}
	a.mu.RLock()
	for _, f := range a.flows {
		fs := FlowStats{
			Rule: f.rule, Sink: f.sink,
			// Read outcomes before received so a snapshot taken under
			// load never shows more outcomes than arrivals.
			Delivered:    f.delivered.Load(),
			DeadLettered: f.deadLettered.Load(),
			Retried:      f.retried.Load(),
			Dropped:      map[string]int64{},
		}
		f.dropMu.Lock()
		for r, n := range f.dropped {
			fs.Dropped[r] = n
		}
		f.dropMu.Unlock()
		fs.Buffered = f.buffered.Load()
		fs.Received = f.received.Load()
		s.Flows = append(s.Flows, fs)
	}
	a.mu.RUnlock()
	sort.Slice(s.Flows, func(i, j int) bool {
		if s.Flows[i].Rule != s.Flows[j].Rule {
			return s.Flows[i].Rule < s.Flows[j].Rule
		}
		return s.Flows[i].Sink < s.Flows[j].Sink
	})
	return s
}

var (
	descFlowReceived  = prometheus.NewDesc("sluice_ingest_received_total", "Records routed to a sink by a rule.", []string{"rule", "sink"}, nil)
	descFlowDelivered = prometheus.NewDesc("sluice_ingest_delivered_total", "Records the sink accepted.", []string{"rule", "sink"}, nil)
	descFlowRetried   = prometheus.NewDesc("sluice_ingest_retried_total", "Write attempts retried.", []string{"rule", "sink"}, nil)
	descFlowDLQ       = prometheus.NewDesc("sluice_ingest_dead_lettered_total", "Records sent to the dead-letter store.", []string{"rule", "sink"}, nil)
	descFlowDropped   = prometheus.NewDesc("sluice_ingest_dropped_total", "Records dropped, by reason.", []string{"rule", "sink", "reason"}, nil)
	descFlowBuffered  = prometheus.NewDesc("sluice_ingest_buffered", "Records received and not yet delivered, dead-lettered or dropped.", []string{"rule", "sink"}, nil)
	descMessages      = prometheus.NewDesc("sluice_ingest_messages_total", "Messages handed to the pipeline by the broker.", nil, nil)
	descUnrouted      = prometheus.NewDesc("sluice_ingest_unrouted_total", "Messages no rule routed anywhere.", nil, nil)
	descDecodeErrors  = prometheus.NewDesc("sluice_ingest_decode_errors_total", "Payloads that could not be decoded.", nil, nil)
	descRejected      = prometheus.NewDesc("sluice_ingest_rejected_total", "Messages refused to the publisher (spool full, shutting down).", nil, nil)
	descCorrupt       = prometheus.NewDesc("sluice_ingest_corrupt_records_total", "Spooled records that could not be decoded and were skipped.", nil, nil)
)

// Describe implements prometheus.Collector.
func (a *Accounting) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFlowReceived, descFlowDelivered, descFlowRetried, descFlowDLQ, descFlowDropped, descFlowBuffered, descMessages, descUnrouted, descDecodeErrors, descRejected, descCorrupt} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (a *Accounting) Collect(ch chan<- prometheus.Metric) {
	s := a.Snapshot()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descMessages, s.Messages)
	counter(descUnrouted, s.Unrouted)
	counter(descDecodeErrors, s.DecodeErrors)
	counter(descRejected, s.Rejected)
	counter(descCorrupt, s.Corrupt)
	for _, f := range s.Flows {
		counter(descFlowReceived, f.Received, f.Rule, f.Sink)
		counter(descFlowDelivered, f.Delivered, f.Rule, f.Sink)
		counter(descFlowRetried, f.Retried, f.Rule, f.Sink)
		counter(descFlowDLQ, f.DeadLettered, f.Rule, f.Sink)
		for r, n := range f.Dropped {
			counter(descFlowDropped, n, f.Rule, f.Sink, r)
		}
		ch <- prometheus.MustNewConstMetric(descFlowBuffered, prometheus.GaugeValue, float64(f.Buffered), f.Rule, f.Sink)
	}
}
