package main

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/internal/admin"
	"github.com/sluicehq/sluice/sinks"
)

// app is the wired process: broker → pipeline → sinks, plus the admin
// listener. It only connects the pieces; each decides for itself.
type app struct {
	log      *slog.Logger
	reg      *prometheus.Registry
	broker   *broker.Server
	pipeline *ingest.Pipeline
	admin    *admin.Server
}

// newApp builds every component from cfg without doing I/O.
func newApp(cfg Config, log *slog.Logger) (*app, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a := &app{log: log, reg: reg}
	sinkSet := map[string]sinks.Sink{}
	p, err := ingest.New(cfg.Ingest, ingest.Options{
		Logger: log, Registerer: reg, Sinks: sinkSet,
	})
	if err != nil {
		return nil, err
	}
	a.pipeline = p
	srv, err := broker.New(cfg.Broker, broker.Options{
		Logger: log.With("component", "broker"), Registerer: reg, Consumer: p,
	})
	if err != nil {
		return nil, err
	}
	a.broker = srv
	a.admin = admin.New(cfg.Admin, log.With("component", "admin"), reg)
	a.admin.Mount("/api/v1/ingest", p.Handler())
	a.admin.Mount("/api/v1/deadletters", p.Handler())
	a.admin.Mount("/api/v1/deadletters/", p.Handler())
	a.admin.AddCheck("ingest", p.Ready)
	return a, nil
}

// run opens the stores, binds the listeners and serves until ctx ends.
// Shutdown order: the broker drains first (no new messages, pending acks
// settle), then the pipeline flushes its sinks, then the admin listener.
func (a *app) run(ctx context.Context) error {
	if err := a.pipeline.Open(); err != nil {
		return fmt.Errorf("opening pipeline: %w", err)
	}
	pctx, stopPipeline := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPipeline()
	var wg sync.WaitGroup
	var pipeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		pipeErr = a.pipeline.Run(pctx)
	}()
	if err := a.broker.Listen(); err != nil {
		stopPipeline()
		wg.Wait()
		return fmt.Errorf("starting broker: %w", err)
	}
	if err := a.admin.Listen(); err != nil {
		stopPipeline()
		wg.Wait()
		return err
	}
	if addr := a.admin.Addr(); addr != nil {
		a.log.Info("admin listening", "address", addr.String())
	}
	addrs := a.broker.Addrs()
	names := make([]string, 0, len(addrs))
	for name := range addrs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		a.log.Info("mqtt listening", "listener", name, "address", addrs[name].String())
	}
	actx, stopAdmin := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAdmin()
	var adminErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		adminErr = a.admin.Serve(actx)
	}()
	brokerErr := a.broker.Serve(ctx)
	stopPipeline()
	stopAdmin()
	wg.Wait()
	for _, err := range []error{brokerErr, pipeErr, adminErr} {
		if err != nil {
			return err
		}
	}
	return nil
}
