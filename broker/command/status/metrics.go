package status

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Results, the values of the result labels.
const (
	resultWritten  = "written"  // a status event the sink accepted
	resultDropped  = "dropped"  // a status event the sink can never take
	resultAccepted = "accepted" // a rule's command, durable
	resultRejected = "rejected" // a rule's command the service refused
	resultRetried  = "retried"  // a rule's command that failed, left to the runner's retry
)

// Metrics are the collectors of every Publisher and RuleSink of a process.
type Metrics struct {
	events   *prometheus.CounterVec
	commands *prometheus.CounterVec
}

// NewMetrics builds the collectors and registers them with reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_commands_status_events_total",
			Help: "Command status events by sink and result: written, or dropped (the sink can never take them).",
		}, []string{"sink", "result"}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_commands_rule_records_total",
			Help: "Rule outputs turned into commands, by result: accepted, rejected, or retried (submit failed).",
		}, []string{"result"}),
	}
	for _, r := range []string{resultAccepted, resultRejected, resultRetried} {
		m.commands.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.events, m.commands} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering command status metrics: %w", err)
		}
	}
	return m, nil
}
