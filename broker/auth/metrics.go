package auth

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Reasons, the values of the reason label of sluice_auth_failures_total.
const (
	reasonUnknownUser         = "unknown_user"
	reasonBadPassword         = "bad_password"
	reasonAnonymous           = "anonymous_not_allowed"
	reasonPasswordWithoutUser = "password_without_username"
)

// metrics are the Auth's Prometheus collectors.
type metrics struct {
	failures    *prometheus.CounterVec
	successes   *prometheus.CounterVec
	rateLimited prometheus.Counter
	evictions   prometheus.Counter
	fileReloads *prometheus.CounterVec
}

// newMetrics creates the collectors and registers them with reg, if any.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_auth_failures_total",
			Help: "Failed logins, by reason.",
		}, []string{"reason"}),
		successes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_auth_successes_total",
			Help: "Successful logins, by method (anonymous, password, certificate).",
		}, []string{"method"}),
		rateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_auth_rate_limited_total",
			Help: "Logins refused without checking the password because their source address failed too often.",
		}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_auth_rate_limit_evictions_total",
			Help: "Source addresses whose recent failures were forgotten because max_tracked_addresses was reached.",
		}),
		fileReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_auth_users_file_loads_total",
			Help: "Loads of the users file, by result (ok, error).",
		}, []string{"result"}),
	}
	for _, r := range []string{reasonUnknownUser, reasonBadPassword, reasonAnonymous, reasonPasswordWithoutUser} {
		m.failures.WithLabelValues(r)
	}
	for _, meth := range []Method{MethodAnonymous, MethodPassword, MethodCertificate} {
		m.successes.WithLabelValues(meth.String())
	}
	m.fileReloads.WithLabelValues("ok")
	m.fileReloads.WithLabelValues("error")
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.failures, m.successes, m.rateLimited, m.evictions, m.fileReloads} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("registering auth metrics: %w", errors.Join(errs...))
	}
	return m, nil
}

// success counts a successful login.
func (m *metrics) success(meth Method) {
	m.successes.WithLabelValues(meth.String()).Inc()
}
