package mqtttest

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/listener"
)

// Sluice is Sluice's broker running in-process on a loopback port.
type Sluice struct {
	// Server is the running broker (for Publish, metrics and the like).
	Server *broker.Server

	addr     string
	cancel   context.CancelFunc
	done     chan struct{}
	serveErr error
	stopOnce sync.Once
}

// SluiceConfig returns broker.DefaultConfig with its listeners replaced by
// one anonymous listener "default" on 127.0.0.1:0.
func SluiceConfig() broker.Config {
	cfg := broker.DefaultConfig()
	cfg.Listeners = []broker.ListenerConfig{{Config: listener.Config{Name: "default", Address: "127.0.0.1:0"}, AllowAnonymous: true}}
	return cfg
}

// StartSluice builds, binds and serves a broker with cfg and opts. Its
// first listener must be named "default"; use SluiceConfig for a
// ready-made config. When opts.Logger is nil, broker logs go to t.Log
// at warn level and above. The broker is stopped when t ends.
func StartSluice(t testing.TB, cfg broker.Config, opts broker.Options) *Sluice {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	srv, err := broker.New(cfg, opts)
	if err != nil {
		t.Fatalf("building broker: %v", err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatalf("binding broker: %v", err)
	}
	a, ok := srv.Addrs()["default"]
	if !ok {
		t.Fatalf("broker has no listener named %q: %v", "default", srv.Addrs())
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sluice{Server: srv, addr: a.String(), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.serveErr = srv.Serve(ctx)
	}()
	t.Cleanup(func() {
		if err := s.Stop(10 * time.Second); err != nil {
			t.Errorf("stopping broker: %v", err)
		}
	})
	return s
}

// Addr is the host:port the broker listens on.
func (s *Sluice) Addr() string { return s.addr }

// Stop cancels Serve and waits up to timeout for it to return. It returns
// Serve's error unless that is nil or context.Canceled. Safe to call twice.
func (s *Sluice) Stop(timeout time.Duration) error {
	s.stopOnce.Do(s.cancel)
	select {
	case <-s.done:
	case <-time.After(timeout):
		return errors.New("broker Serve did not return after cancel")
	}
	if s.serveErr != nil && !errors.Is(s.serveErr, context.Canceled) {
		return s.serveErr
	}
	return nil
}

// testWriter sends log output to t.Log; it stops logging once the test
// has finished (t.Log would panic then).
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // log after test end: drop
	w.t.Logf("%s", p)
	return len(p), nil
}
