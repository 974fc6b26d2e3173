package ingest

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// sinkMetrics is the same set of metrics for every sink, labelled by sink:
// what the runner observes, since a sink itself does I/O only.
type sinkMetrics struct {
	latency *prometheus.HistogramVec
	batch   *prometheus.HistogramVec
}

func newSinkMetrics() *sinkMetrics {
	return &sinkMetrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_sink_write_seconds", Help: "Duration of one batch write to a sink.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"sink"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_sink_batch_records", Help: "Records per batch written to a sink.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}, []string{"sink"}),
	}
}

// observer is what one runner reports into.
type observer struct {
	latency prometheus.Observer
	batch   prometheus.Observer
}

func (m *sinkMetrics) observer(sink string) observer {
	return observer{latency: m.latency.WithLabelValues(sink), batch: m.batch.WithLabelValues(sink)}
}

func (o observer) observe(n int, took time.Duration) {
	if o.latency == nil {
		return
	}
	o.latency.Observe(took.Seconds())
	o.batch.Observe(float64(n))
}

var (
	descSinkWrites    = prometheus.NewDesc("sluice_sink_writes_total", "Batch writes attempted.", []string{"sink"}, nil)
	descSinkErrors    = prometheus.NewDesc("sluice_sink_write_errors_total", "Batch writes that failed (wholly or in part).", []string{"sink"}, nil)
	descSinkSent      = prometheus.NewDesc("sluice_sink_sent_records_total", "Records in successful writes.", []string{"sink"}, nil)
	descSinkInflight  = prometheus.NewDesc("sluice_sink_inflight_records", "Records handed to the sink's runner and not yet finished.", []string{"sink"}, nil)
	descSinkConnected = prometheus.NewDesc("sluice_sink_connected", "1 when the last write or connect succeeded.", []string{"sink"}, nil)
)

// sinkCollector exports the runners' counters at scrape time.
type sinkCollector struct{ p *Pipeline }

func (c sinkCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSinkWrites, descSinkErrors, descSinkSent, descSinkInflight, descSinkConnected} {
		ch <- d
	}
	c.p.sinkMetrics.latency.Describe(ch)
	c.p.sinkMetrics.batch.Describe(ch)
}

func (c sinkCollector) Collect(ch chan<- prometheus.Metric) {
	for name, r := range c.p.runners {
		s := r.state
		ch <- prometheus.MustNewConstMetric(descSinkWrites, prometheus.CounterValue, float64(s.writes.Load()), name)
		ch <- prometheus.MustNewConstMetric(descSinkErrors, prometheus.CounterValue, float64(s.writeErrors.Load()), name)
		ch <- prometheus.MustNewConstMetric(descSinkSent, prometheus.CounterValue, float64(s.records.Load()), name)
		ch <- prometheus.MustNewConstMetric(descSinkInflight, prometheus.GaugeValue, float64(r.inflight.Load()), name)
		connected := 0.0
		if s.connected.Load() {
			connected = 1
		}
		ch <- prometheus.MustNewConstMetric(descSinkConnected, prometheus.GaugeValue, connected, name)
	}
	c.p.sinkMetrics.latency.Collect(ch)
	c.p.sinkMetrics.batch.Collect(ch)
}
