package main

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"

	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/internal/admin/api"
	"github.com/sluicehq/sluice/sinks"
)

// mountAdminAPI adds the admin API (internal/admin/api), the rule
// statistics and the readiness checks to the admin listener. It refuses
// required sinks that are not configured.
func (a *app) mountAdminAPI() error {
	var errs []error
	for _, name := range a.cfg.Admin.RequiredSinks {
		if _, ok := a.sinks[name]; !ok {
			errs = append(errs, fmt.Errorf("admin.required_sinks: no sink %q is configured", name))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	api.New(api.Options{Broker: a.broker, Sinks: a.pipeline, Logger: a.log.With("component", "admin")}).Register(a.admin)
	a.admin.Handle("GET /api/v1/rules/stats", http.HandlerFunc(a.rulesStats))
	a.admin.AddCheck("broker", a.broker.Ready)
	if len(a.cfg.Admin.RequiredSinks) > 0 {
		a.admin.AddCheck("sinks", a.requiredSinksUp)
	}
	return nil
}

// requiredSinksUp is the readiness of admin.required_sinks: a sink that
// connects must be connected; any other must not have failed its last
// write (the runner marks it connected on success, not on failure).
func (a *app) requiredSinksUp() error {
	stats := map[string]ingest.SinkStats{}
	for _, st := range a.pipeline.SinkStats() {
		stats[st.Name] = st
	}
	var down []string
	for _, name := range a.cfg.Admin.RequiredSinks {
		st := stats[name]
		_, connects := a.sinks[name].(sinks.Connector)
		if st.Connected || (!connects && st.Writes == 0) {
			continue
		}
		msg := name + " down"
		if st.LastError != "" {
			msg += " (" + st.LastError + ")"
		}
		down = append(down, msg)
	}
	if len(down) > 0 {
		return fmt.Errorf("required sinks: %s", strings.Join(down, "; "))
	}
	return nil
}

// ruleStats is one rule's line in GET /api/v1/rules/stats.
type ruleStats struct {
	Name string `json:"name"`
	// Matched, Passed and Errors are the rules engine's counters
	// (sluice_rule_*_total).
	Matched float64 `json:"matched"`
	Passed  float64 `json:"passed"`
	Errors  float64 `json:"errors"`
	// EvalSamples and AvgEvalSeconds come from the sampled evaluation
	// time histogram (sluice_rule_eval_seconds).
	EvalSamples    uint64  `json:"eval_samples"`
	AvgEvalSeconds float64 `json:"avg_eval_seconds"`
	// Outputs is the pipeline's accounting of the rule's outputs by sink.
	Outputs []outputStats `json:"outputs"`
}

// outputStats is the accounting of one (rule, sink) flow.
type outputStats struct {
	ingest.FlowStats
	Balanced bool `json:"balanced"`
}

// rulesStats serves GET /api/v1/rules/stats: every active rule in
// evaluation order with its counters, plus messages no rule matched.
func (a *app) rulesStats(w http.ResponseWriter, _ *http.Request) {
	mfs, err := a.reg.Gather()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": fmt.Sprintf("gathering metrics: %v", err)})
		return
	}
	e := a.rules.Engine()
	byName := map[string]*ruleStats{}
	out := make([]*ruleStats, 0, len(e.Rules()))
	for _, name := range e.Rules() {
		rs := &ruleStats{Name: name, Outputs: []outputStats{}}
		byName[name] = rs
		out = append(out, rs)
	}
	var unmatched float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == "sluice_rules_unmatched_total" {
				unmatched = m.GetCounter().GetValue()
				continue
			}
			rs := byName[label(m, "rule")]
			if rs == nil {
				continue
			}
			switch mf.GetName() {
			case "sluice_rule_matched_total":
				rs.Matched = m.GetCounter().GetValue()
			case "sluice_rule_passed_total":
				rs.Passed = m.GetCounter().GetValue()
			case "sluice_rule_errors_total":
				rs.Errors = m.GetCounter().GetValue()
			case "sluice_rule_eval_seconds":
				h := m.GetHistogram()
				rs.EvalSamples = h.GetSampleCount()
				if rs.EvalSamples > 0 {
					rs.AvgEvalSeconds = h.GetSampleSum() / float64(rs.EvalSamples)
				}
			}
		}
	}
	for _, f := range a.pipeline.Accounting().Snapshot().Flows {
		if rs := byName[f.Rule]; rs != nil {
			rs.Outputs = append(rs.Outputs, outputStats{FlowStats: f, Balanced: f.Balanced()})
		}
	}
	for _, rs := range out {
		slices.SortFunc(rs.Outputs, func(x, y outputStats) int { return strings.Compare(x.Sink, y.Sink) })
	}
	writeJSON(w, http.StatusOK, map[string]any{"version": versionJSON(e.Version()), "unmatched": unmatched, "rules": out})
}

// label returns the value of m's label name, or "".
func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
