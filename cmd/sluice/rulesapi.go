package main

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/rules"
)

// rulesAPI serves the rule set on the admin listener:
//
//	GET  /api/v1/rules         the active version and rule names
//	POST /api/v1/rules/reload  re-read the config and swap the rules in;
//	                           an invalid set is refused (422) with every
//	                           error and the active one keeps running
func (a *app) rulesAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/rules", func(w http.ResponseWriter, _ *http.Request) {
		e := a.rules.Engine()
		writeJSON(w, http.StatusOK, map[string]any{"version": versionJSON(e.Version()), "rules": e.Rules()})
	})
	mux.HandleFunc("POST /api/v1/rules/reload", func(w http.ResponseWriter, _ *http.Request) {
		cfg, opts, err := a.reloadConfig()
		if err == nil {
			err = a.rules.Reload(cfg, opts)
		}
		if err != nil {
			msgs := []string{}
			var re *rules.ReloadError
			var ce ruleErrors
			switch {
			case errors.As(err, &re):
				for _, e := range re.Errs {
					msgs = append(msgs, e.Error())
				}
			case errors.As(err, &ce):
				for _, e := range ce {
					msgs = append(msgs, e.Error())
				}
			default:
				msgs = append(msgs, err.Error())
			}
			a.log.Error("reloading rules through the admin API; keeping the active rules", "err", err)
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": "rule set refused", "errors": msgs})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"version": versionJSON(a.rules.Version())})
	})
	return mux
}

func versionJSON(v rules.Version) map[string]any {
	return map[string]any{"hash": v.Hash, "loaded_at": v.LoadedAt, "rules": v.Rules}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// rulesVersionCollector exports the active rule set's hash as
// sluice_rules_version_info{hash="..."} 1.
type rulesVersionCollector struct{ h *rules.Holder }

var descRulesVersion = prometheus.NewDesc("sluice_rules_version_info", "The active rule set, by the hash of its sources.", []string{"hash"}, nil)

func (c rulesVersionCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descRulesVersion }

func (c rulesVersionCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descRulesVersion, prometheus.GaugeValue, 1, c.h.Version().Hash)
}
