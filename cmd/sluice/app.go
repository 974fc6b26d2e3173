package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/auth"
	"github.com/sluicehq/sluice/broker/store"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/internal/admin"
	"github.com/sluicehq/sluice/internal/admin/tracing"
	"github.com/sluicehq/sluice/rules"
	"github.com/sluicehq/sluice/schemas"
	"github.com/sluicehq/sluice/schemas/sparkplug"
	"github.com/sluicehq/sluice/sinks"
	"github.com/sluicehq/sluice/sinks/clickhouse"
	"github.com/sluicehq/sluice/sinks/republish"
	"github.com/sluicehq/sluice/sinks/sinkconfig"
)

// app is the wired process: broker → pipeline → sinks, plus the admin
// listener. It only connects the pieces; each decides for itself.
type app struct {
	cfg      Config
	path     string
	environ  []string
	rules    *rules.Holder
	log      *slog.Logger
	reg      *prometheus.Registry
	broker   *broker.Server
	auth     *auth.Auth
	store    *lazyStore // nil: broker state in memory
	pipeline *ingest.Pipeline
	admin    *admin.Server
	console  *webConsole // console_wire.go
	sinks    map[string]sinks.Sink
	commands *commands // commands_wire.go; nil: off

	tracer *tracing.Tracer // admin.tracing; nil: off

	// rebirths queues Sparkplug rebirth requests (NCMD) from the decoder
	// for publishRebirths; full, a request is dropped and counted (the
	// decoder asks again on the node's next unknown alias).
	rebirths       chan sparkplug.RebirthRequest
	rebirthDropped prometheus.Counter
}

// brokerRef lets the republish sink exist before the broker it publishes
// into (the broker needs the pipeline, which needs its sinks).
type brokerRef struct{ srv *broker.Server }

func (b *brokerRef) Publish(m *broker.Message) error { return b.srv.Publish(m) }

// newApp builds every component from cfg without doing I/O. path and
// environ are kept to re-read the config on reload.
func newApp(cfg Config, path string, environ []string, log *slog.Logger) (*app, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	a := &app{cfg: cfg, path: path, environ: environ, log: log, reg: reg,
		rebirths: make(chan sparkplug.RebirthRequest, 64),
		rebirthDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_schemas_rebirth_requests_dropped_total",
			Help: "Sparkplug rebirth requests not sent because the queue to the broker was full.",
		})}
	reg.MustRegister(a.rebirthDropped)
	ref := &brokerRef{}
	sinkSet := map[string]sinks.Sink{}
	specs := map[string]sinkconfig.Spec(cfg.Sinks)
	if _, ok := specs[rules.RepublishSink]; !ok {
		specs = maps.Clone(specs)
		specs[rules.RepublishSink] = sinkconfig.Spec{Type: sinkconfig.TypeRepublish, Republish: republish.DefaultConfig()}
	}
	for name, spec := range specs {
		sk, err := sinkconfig.New(name, spec, sinkconfig.Deps{Logger: log, Broker: ref})
		if err != nil {
			closeSinks(sinkSet)
			return nil, err
		}
		sinkSet[name] = sk
	}
	cmds, err := wireCommands(cfg, sinkSet, log, reg)
	if err != nil {
		closeSinks(sinkSet)
		return nil, err
	}
	a.commands = cmds
	decoders, err := schemas.New(cfg.Schemas, schemas.Options{
		Logger: log.With("component", "schemas"), Registerer: reg,
		// Payloads decode only the fields the rules read; the holder is
		// built next (it needs the decoders' encoders) and before any decode.
		PayloadKeys: func() ([]string, bool) { return a.rules.PayloadKeys() },
		// Sparkplug rebirth requests (NCMD) go out through the broker,
		// off the decoding goroutine (publishRebirths); the decoder
		// rate-limits them per node.
		Rebirth: a.queueRebirth,
	})
	if err != nil {
		closeSinks(sinkSet)
		return nil, err
	}
	holder, errs := rules.NewHolder(cfg.rulesConfig(), rules.Options{
		Sinks: cfg.sinkNames(), ConfigFile: path, Metrics: rules.NewMetrics(reg), Logger: log.With("component", "rules"),
		Encoders: decoders, // rule targets with encoding: protobuf
	})
	if len(errs) > 0 {
		closeSinks(sinkSet)
		return nil, ruleErrors(errs)
	}
	a.rules = holder
	wireRuleColumns(sinkSet, holder)
	a.sinks = sinkSet
	reg.MustRegister(rulesVersionCollector{holder})
	tracer, err := tracing.New(cfg.Admin.Tracing, tracing.Options{Logger: log.With("component", "tracing"), Registerer: reg})
	if err != nil {
		closeSinks(sinkSet)
		return nil, err
	}
	a.tracer = tracer
	p, err := ingest.New(cfg.Ingest, ingest.Options{
		Logger: log, Registerer: reg, Sinks: tracer.Sinks(sinkSet), Router: tracer.Router(holder), Decoder: decoders,
	})
	if err != nil {
		closeSinks(sinkSet)
		return nil, err
	}
	a.pipeline = p
	au, err := auth.New(cfg.Auth, auth.Options{Logger: log.With("component", "auth"), Registerer: reg})
	if err != nil {
		closeSinks(sinkSet)
		return nil, err
	}
	a.auth = au
	if cfg.Broker.Store.Type == broker.StoreDisk {
		dir := cfg.Broker.Store.Dir
		if dir == "" {
			dir = filepath.Join(cfg.Ingest.DataDir, "broker")
		}
		a.store = &lazyStore{dir: dir}
	}
	var bstore broker.SessionStore // a nil *lazyStore must stay a nil interface
	if a.store != nil {
		bstore = a.store
	}
	srv, err := broker.New(cfg.Broker, broker.Options{
		Logger: log.With("component", "broker"), Registerer: reg, Consumer: tracer.Consumer(cmds.consumer(p)), Auth: au, Store: bstore,
		Tracker: cmds.tracker(),
		Version: versionString(),
	})
	if err != nil {
		closeSinks(sinkSet)
		return nil, err
	}
	a.broker = srv
	ref.srv = srv
	a.admin = admin.New(cfg.Admin, log.With("component", "admin"), reg)
	a.admin.Mount("/api/v1/ingest", p.Handler())
	a.admin.Mount("/api/v1/deadletters", p.Handler())
	a.admin.Mount("/api/v1/deadletters/", p.Handler())
	a.admin.Mount("/api/v1/rules", a.rulesAPI())
	a.admin.Mount("/api/v1/rules/", a.rulesAPI())
	a.admin.AddCheck("ingest", p.Ready)
	cmds.mount(a)
	if err := a.mountAdminAPI(); err != nil {
		closeSinks(sinkSet)
		return nil, err
	}
	if err := a.mountConsole(); err != nil {
		closeSinks(sinkSet)
		return nil, err
	}
	return a, nil
}

// run opens the stores, binds the listeners and serves until ctx ends.
// Shutdown order: the broker drains first (no new messages, pending acks
// settle), then the pipeline flushes its sinks, then the admin listener.
func (a *app) run(ctx context.Context) error {
	if err := a.auth.LoadUsersFile(); err != nil {
		return fmt.Errorf("loading users file: %w", err)
	}
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
	wg.Go(func() { _ = a.console.Run(actx) })
	wg.Go(func() { _ = a.tracer.Run(actx) })
	wg.Add(4)
	go func() {
		defer wg.Done()
		a.publishRebirths(actx)
	}()
	go func() {
		defer wg.Done()
		_ = a.auth.Run(actx)
	}()
	go func() {
		defer wg.Done()
		_ = a.rules.Watch(actx, rules.WatchOptions{Load: a.reloadConfig})
	}()
	go func() {
		defer wg.Done()
		a.reloadOnHangup(actx)
	}()
	cctx, stopCommands := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCommands()
	waitCommands := a.commands.start(cctx, a.broker)
	brokerErr := a.broker.Serve(ctx)
	if err := a.store.Close(); err != nil && brokerErr == nil {
		brokerErr = err
	}
	stopCommands()
	if err := waitCommands(); err != nil && brokerErr == nil {
		brokerErr = err
	}
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

// queueRebirth hands a Sparkplug rebirth request to publishRebirths
// without blocking the decoder.
func (a *app) queueRebirth(r sparkplug.RebirthRequest) {
	select {
	case a.rebirths <- r:
	default:
		a.rebirthDropped.Inc()
		a.log.Warn("Sparkplug rebirth request dropped: queue full", "topic", r.Topic)
	}
}

// publishRebirths publishes queued rebirth requests through the broker
// until ctx ends.
func (a *app) publishRebirths(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-a.rebirths:
			if err := a.broker.Publish(&broker.Message{Topic: r.Topic, Payload: r.Payload, ReceivedAt: time.Now()}); err != nil {
				a.log.Warn("publishing Sparkplug rebirth request", "topic", r.Topic, "err", err)
			}
		}
	}
}

// reloadConfig re-reads the config file for a rules reload.
func (a *app) reloadConfig() (rules.Config, rules.Options, error) {
	cfg, err := loadConfig(a.path, a.environ)
	if err != nil {
		return rules.Config{}, rules.Options{}, err
	}
	rc, opts := a.rulesFrom(cfg)
	return rc, opts, nil
}

// rulesFrom is the rules part of a re-read config, as Reload takes it.
func (a *app) rulesFrom(cfg Config) (rules.Config, rules.Options) {
	opts := cfg.rulesOptions(a.path)
	opts.Logger = a.log.With("component", "rules")
	return cfg.rulesConfig(), opts
}

// reloadOnHangup reloads the rules on SIGHUP until ctx ends. An invalid
// rule set is refused with its errors and the running one stays.
func (a *app) reloadOnHangup(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		// One read of the file serves both reloads.
		cfg, err := loadConfig(a.path, a.environ)
		if err != nil {
			a.log.Error("reloading on SIGHUP; keeping the active users, ACL and rules", "err", err)
			continue
		}
		a.reloadAuth(cfg.Auth)
		if err := a.rules.Reload(a.rulesFrom(cfg)); err != nil {
			a.log.Error("reloading rules on SIGHUP; keeping the active rules", "err", err)
			continue
		}
		v := a.rules.Version()
		a.log.Info("rules reloaded", "version", v.Hash)
	}
}

// lazyStore opens the broker's disk store on Load (New does no I/O) and
// closes it when the app ends.
type lazyStore struct {
	dir  string
	disk *store.Disk
}

// Load implements broker.SessionStore.
func (l *lazyStore) Load(ctx context.Context) (broker.StoredState, error) {
	if l.disk == nil {
		d, err := store.Open(l.dir)
		if err != nil {
			return broker.StoredState{}, err
		}
		l.disk = d
	}
	return l.disk.Load(ctx)
}

// Save implements broker.SessionStore.
func (l *lazyStore) Save(ctx context.Context, b broker.StoreBatch) error { return l.disk.Save(ctx, b) }

// Close closes the store if it was opened.
func (l *lazyStore) Close() error {
	if l == nil || l.disk == nil {
		return nil
	}
	return l.disk.Close()
}

// reloadAuth applies a re-read auth section (users, ACL, limits) and
// revokes the subscriptions the new ACL denies; an invalid one is refused
// and the active one stays.
func (a *app) reloadAuth(cfg auth.Config) {
	if err := a.auth.Reload(cfg); err != nil {
		a.log.Error("reloading auth on SIGHUP; keeping the active users and ACL", "err", err)
		return
	}
	revoked := a.broker.RevokeDenied()
	a.log.Info("auth reloaded", "subscriptions_revoked", revoked)
}

func closeSinks(set map[string]sinks.Sink) {
	for _, s := range set {
		_ = s.Close()
	}
}

// checkSinks tries every sink that connects once, in parallel, before
// anything listens: a configuration the destination proves wrong (a
// ClickHouse table that does not fit the mapping) refuses to start; an
// unreachable destination is only logged, the runner keeps retrying.
func (a *app) checkSinks(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for name, s := range a.sinks {
		c, ok := s.(sinks.Connector)
		if !ok {
			continue
		}
		wg.Go(func() {
			err := c.Connect(ctx)
			var ce *clickhouse.ConfigError
			switch {
			case err == nil:
			case errors.As(err, &ce):
				mu.Lock()
				errs = append(errs, fmt.Errorf("sink %s: %w", name, err))
				mu.Unlock()
			default:
				a.log.Warn("sink not reachable at start; retrying in the background", "sink", name, "err", err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
