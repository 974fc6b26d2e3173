package command

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's collectors, registered on the injected
// Registerer.
type metrics struct {
	transitions     *prometheus.CounterVec
	pending         prometheus.Gauge
	busy            prometheus.Counter
	storeErrors     prometheus.Counter
	purged          prometheus.Counter
	replies         prometheus.Counter
	outboxBuffered  prometheus.Gauge
	eventsPublished *prometheus.CounterVec
	eventsDropped   *prometheus.CounterVec
	sinkErrors      *prometheus.CounterVec
	flushSeconds    *prometheus.HistogramVec
	flushRecords    *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_commands_transitions_total",
			Help: "Command state transitions, by state entered."}, []string{"state"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_commands_pending",
			Help: "Commands accepted and not yet delivered or finished."}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_commands_refused_busy_total",
			Help: "Commands refused because max_pending commands were pending."}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_commands_store_errors_total",
			Help: "Failed writes of the command store (retried)."}),
		purged: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_commands_purged_total",
			Help: "Command statuses deleted after their retention."}),
		replies: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_commands_replies_total",
			Help: "Device replies matched to a command."}),
		outboxBuffered: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_commands_outbox_events",
			Help: "Status events stored and not yet taken by every sink."}),
		eventsPublished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_commands_events_published_total",
			Help: "Status events handed to a sink."}, []string{"sink"}),
		eventsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_commands_events_dropped_total",
			Help: "Status events a sink never got, by reason (outbox_full, too_old, purged: the command's status was purged first)."}, []string{"sink", "reason"}),
		sinkErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_commands_event_sink_errors_total",
			Help: "Failed attempts to hand status events to a sink (retried)."}, []string{"sink"}),
		flushSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_commands_store_flush_seconds",
			Help:    "Command store writes (one transaction, fsync included), by kind: accept (new commands a Submit waits for) or full (every change).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"kind"}),
		flushRecords: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_commands_store_flush_records",
			Help:    "Command records written per store write, by kind.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8)}, []string{"kind"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.transitions, m.pending, m.busy, m.storeErrors, m.purged, m.replies,
		m.outboxBuffered, m.eventsPublished, m.eventsDropped, m.sinkErrors, m.flushSeconds, m.flushRecords} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering command metrics: %w", err)
		}
	}
	return m, nil
}
