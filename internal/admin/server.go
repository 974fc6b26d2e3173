// Package admin serves Sluice's admin HTTP listener: Prometheus metrics,
// health and readiness probes, and the JSON APIs the subsystems mount.
package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluicehq/sluice/internal/admin/tracing"
)

// Config configures the admin listener. It is the `admin` section of the
// Sluice config file.
type Config struct {
	// Address is host:port for the admin HTTP listener; empty disables it.
	// Default: 127.0.0.1:8088.
	Address string `koanf:"address"`
	// Token is, when set, required as "Authorization: Bearer TOKEN" on
	// every /api/ request (probes and /metrics stay open). Default: "".
	Token string `koanf:"token"`
	// RequiredSinks names the sinks that must be up for /readyz to
	// report ready: a sink that connects (kafka, clickhouse) must be
	// connected, any other must not have failed its last write. Other
	// sinks' outages are absorbed by the spool and leave Sluice ready.
	// Default: none.
	RequiredSinks []string `koanf:"required_sinks"`
	// Tracing exports OpenTelemetry spans of sampled messages through the
	// pipeline (receive, decode, rules, durability, sink writes) to an
	// OTLP/HTTP receiver. Default: off.
	Tracing tracing.Config `koanf:"tracing"`
}

// DefaultConfig returns the admin defaults.
func DefaultConfig() Config {
	return Config{Address: "127.0.0.1:8088", Tracing: tracing.DefaultConfig()}
}

// Validate reports every problem with its key path.
func (c Config) Validate() []error {
	var errs []error
	if c.Address != "" {
		if _, _, err := net.SplitHostPort(c.Address); err != nil {
			errs = append(errs, fmt.Errorf("address: %v", err))
		}
	}
	for _, err := range c.Tracing.Validate() {
		errs = append(errs, fmt.Errorf("tracing.%w", err))
	}
	return errs
}

// Check is a named readiness check; it returns nil when ready.
type Check struct {
	Name string
	Fn   func() error
}

// Server is the admin HTTP server.
type Server struct {
	cfg    Config
	log    *slog.Logger
	mux    *http.ServeMux
	checks []Check
	routes []string      // registered patterns, for the OpenAPI check
	reqID  atomic.Uint64 // request ids: idBase + counter
	idBase string
	ln     net.Listener
	srv    *http.Server
}

// New builds the server; gatherer supplies /metrics. It does no I/O.
func New(cfg Config, log *slog.Logger, gatherer prometheus.Gatherer) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, mux: http.NewServeMux(),
		idBase: strconv.FormatInt(time.Now().UnixNano()&0xffffffff, 36) + "-"}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	// Profiles, behind the token like the APIs.
	s.mux.Handle("/debug/pprof/", s.auth(http.HandlerFunc(pprof.Index)))
	s.mux.Handle("/debug/pprof/cmdline", s.auth(http.HandlerFunc(pprof.Cmdline)))
	s.mux.Handle("/debug/pprof/profile", s.auth(http.HandlerFunc(pprof.Profile)))
	s.mux.Handle("/debug/pprof/symbol", s.auth(http.HandlerFunc(pprof.Symbol)))
	s.mux.Handle("/debug/pprof/trace", s.auth(http.HandlerFunc(pprof.Trace)))
	s.Handle("GET /api/openapi.json", http.HandlerFunc(serveOpenAPI))
	return s
}

// Config returns the configuration the server was built with.
func (s *Server) Config() Config { return s.cfg }

// AddCheck registers a readiness check.
func (s *Server) AddCheck(name string, fn func() error) {
	s.checks = append(s.checks, Check{name, fn})
}

// Mount serves h for every path under prefix (e.g. "/api/v1/ingest"),
// behind the bearer token when one is configured.
func (s *Server) Mount(pattern string, h http.Handler) {
	s.Handle(pattern, h)
}

// Handle serves h for pattern (a net/http pattern, e.g.
// "GET /api/v1/clients/{id}") behind the bearer token, and records the
// pattern for Routes.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, s.auth(h))
	s.routes = append(s.routes, pattern)
}

// Routes returns the patterns registered with Handle, Mount and Public,
// sorted.
func (s *Server) Routes() []string {
	out := slices.Clone(s.routes)
	slices.Sort(out)
	return out
}

// Handler returns the server's HTTP handler (for tests over httptest).
func (s *Server) Handler() http.Handler { return s.observe(s.mux) }

// Public serves h at pattern without the bearer token. It is for what
// holds no data, such as the console's static files (a browser cannot
// send the token when it loads a page; the console's scripts send it).
func (s *Server) Public(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	s.routes = append(s.routes, pattern)
}

func (s *Server) auth(h http.Handler) http.Handler {
	if s.cfg.Token == "" {
		return h
	}
	want := []byte("Bearer " + s.cfg.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"missing or wrong bearer token"}` + "\n"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	status := http.StatusOK
	res := map[string]string{}
	for _, c := range s.checks {
		if err := c.Fn(); err != nil {
			status = http.StatusServiceUnavailable
			res[c.Name] = err.Error()
		} else {
			res[c.Name] = "ok"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"ready": status == http.StatusOK, "checks": res})
}

// Listen binds the listener (no-op when disabled).
func (s *Server) Listen() error {
	if s.cfg.Address == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.Address)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	s.ln = ln
	return nil
}

// Addr returns the bound address, or nil when disabled.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Serve serves until ctx ends, then shuts down within a few seconds.
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		<-ctx.Done()
		return nil
	}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// BaseURL returns "http://host:port" of the bound listener.
func (s *Server) BaseURL() string {
	if s.ln == nil {
		return ""
	}
	return "http://" + strings.Replace(s.ln.Addr().String(), "[::]", "127.0.0.1", 1)
}
