package rules

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the rules engine's Prometheus collectors. Create them once
// (NewMetrics) and pass them to every compile so reloads keep counting.
type Metrics struct {
	matched   *prometheus.CounterVec
	passed    *prometheus.CounterVec
	errors    *prometheus.CounterVec
	eval      *prometheus.HistogramVec
	reloads   *prometheus.CounterVec
	loaded    prometheus.Gauge
	lastLoad  prometheus.Gauge
	unmatched prometheus.Counter
}

// NewMetrics creates the collectors and registers them with reg (nil:
// not registered). It panics if they are already registered with reg, like
// prometheus.MustRegister.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	rule := []string{"rule"}
	m := &Metrics{
		matched: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_rule_matched_total",
			Help: "Messages whose topic matched the rule's filters (the rule was evaluated)."}, rule),
		passed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_rule_passed_total",
			Help: "Messages for which the rule's when condition held (outputs were produced)."}, rule),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_rule_errors_total",
			Help: "Runtime errors evaluating the rule (dead-lettered or skipped per on_error)."}, rule),
		eval: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sluice_rule_eval_seconds",
			Help:    "Time to evaluate the rule for one message (sampled: 1 evaluation in 16).",
			Buckets: []float64{1e-7, 2.5e-7, 5e-7, 1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 1e-4, 1e-3}}, rule),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_rules_reloads_total",
			Help: "Rule set reloads by result (ok, error, unchanged)."}, []string{"result"}),
		loaded: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_rules_loaded",
			Help: "Rules in the active rule set."}),
		lastLoad: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sluice_rules_last_load_timestamp_seconds",
			Help: "When the active rule set was loaded."}),
		unmatched: prometheus.NewCounter(prometheus.CounterOpts{Name: "sluice_rules_unmatched_total",
			Help: "Messages that matched no rule's topic filters."}),
	}
	if reg != nil {
		reg.MustRegister(m.matched, m.passed, m.errors, m.eval, m.reloads, m.loaded, m.lastLoad, m.unmatched)
	}
	return m
}

// ruleMetrics are one rule's collectors, bound once at compile time so the
// hot path does no label lookups.
type ruleMetrics struct {
	matched, passed, errors prometheus.Counter
	eval                    prometheus.Observer
}

func (m *Metrics) bind(name string) ruleMetrics {
	return ruleMetrics{
		matched: m.matched.WithLabelValues(name),
		passed:  m.passed.WithLabelValues(name),
		errors:  m.errors.WithLabelValues(name),
		eval:    m.eval.WithLabelValues(name),
	}
}

// forget deletes the series of rules no longer loaded.
func (m *Metrics) forget(name string) {
	m.matched.DeleteLabelValues(name)
	m.passed.DeleteLabelValues(name)
	m.errors.DeleteLabelValues(name)
	m.eval.DeleteLabelValues(name)
}
