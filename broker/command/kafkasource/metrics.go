package kafkasource

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Record results, the values of the result label.
const (
	resultAccepted = "accepted" // submitted and durable (or already known)
	resultRejected = "rejected" // refused by the service (ACL, no such device)
	resultInvalid  = "invalid"  // could not be mapped to a command; recorded as rejected
)

// metrics are the source's collectors.
type metrics struct {
	records      *prometheus.CounterVec
	retries      prometheus.Counter
	commitErrors prometheus.Counter
	submit       prometheus.Histogram
	age          prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_commands_kafka_records_total",
			Help: "Kafka command records handled, by result: accepted, rejected (by the command service) or invalid (not mappable to a command).",
		}, []string{"result"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_commands_kafka_submit_retries_total",
			Help: "Submits of a Kafka command record that failed (not a rejection) and were retried.",
		}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_commands_kafka_commit_errors_total",
			Help: "Offset commits of the command consumer group that failed (retried; records after the last commit are read again).",
		}),
		submit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_commands_kafka_submit_seconds",
			Help:    "Time from fetching a Kafka command record to its command being durable, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		age: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sluice_commands_kafka_record_age_seconds",
			Help:    "Age of a Kafka command record (its timestamp to now) when it is fetched: how far the source is behind.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 20),
		}),
	}
	for _, r := range []string{resultAccepted, resultRejected, resultInvalid} {
		m.records.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.records, m.retries, m.commitErrors, m.submit, m.age} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering kafka command source metrics: %w", err)
		}
	}
	return m, nil
}
