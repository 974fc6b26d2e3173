package rules

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/ingest"
)

// Holder holds the active Engine and replaces it atomically on reload. It
// implements ingest.Router: each Route call loads the engine once, so a
// message is evaluated entirely by one rule set, never by two.
type Holder struct {
	cur atomic.Pointer[Engine]

	mu   sync.Mutex // serializes reloads; guards cfg, opts and seen
	cfg  Config
	opts Options
	seen string // fingerprint of the files as of the last (attempted) load
}

var _ ingest.Router = (*Holder)(nil)

// ReloadError is returned when a new rule set is refused; the previous
// one stays active.
type ReloadError struct {
	// Errs are every problem found in the new rules.
	Errs []error
}

func (e *ReloadError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return fmt.Sprintf("reloading rules: %d error(s), keeping the active rules:\n%s", len(e.Errs), strings.Join(msgs, "\n"))
}

// Unwrap returns the individual errors.
func (e *ReloadError) Unwrap() []error { return e.Errs }

// NewHolder compiles cfg and returns a Holder serving it. opts.Metrics is
// created (unregistered) when nil, so that reloads share it.
func NewHolder(cfg Config, opts Options) (*Holder, []error) {
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	seen := fingerprint(cfg, opts.ConfigFile) // before reading: a change during the load is seen later
	e, errs := Compile(cfg, opts)
	if errs != nil {
		return nil, errs
	}
	h := &Holder{cfg: cfg, opts: opts, seen: seen}
	h.cur.Store(e)
	h.loaded(e)
	return h, nil
}

// Route routes in with the active engine.
func (h *Holder) Route(in *ingest.Input, dst []ingest.Output) []ingest.Output {
	return h.cur.Load().Route(in, dst)
}

// Engine returns the active engine.
func (h *Holder) Engine() *Engine { return h.cur.Load() }

// Version returns the active rule set's version.
func (h *Holder) Version() Version { return h.cur.Load().Version() }

// Reload compiles cfg aside and, if it is valid, makes it active. An
// invalid rule set is refused with a *ReloadError and the active one is
// kept. opts.Metrics, opts.Logger and opts.Encoders default to the
// holder's.
func (h *Holder) Reload(cfg Config, opts Options) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if opts.Metrics == nil {
		opts.Metrics = h.opts.Metrics
	}
	if opts.Logger == nil {
		opts.Logger = h.opts.Logger
	}
	if opts.Encoders == nil {
		opts.Encoders = h.opts.Encoders
	}
	log := logger(opts.Logger)
	h.seen = fingerprint(cfg, opts.ConfigFile)
	e, errs := Compile(cfg, opts)
	if errs != nil {
		opts.Metrics.reloads.WithLabelValues("error").Inc()
		return &ReloadError{Errs: errs}
	}
	old := h.cur.Swap(e)
	h.cfg, h.opts = cfg, opts
	opts.Metrics.reloads.WithLabelValues("ok").Inc()
	keep := map[string]bool{}
	for _, r := range e.rules {
		keep[r.cfg.Name] = true
	}
	for _, r := range old.rules {
		if !keep[r.cfg.Name] {
			opts.Metrics.forget(r.cfg.Name)
		}
	}
	h.loaded(e)
	log.Info("rules reloaded", "rules", len(e.rules), "version", e.version.Hash[:12],
		"previous", old.version.Hash[:12])
	return nil
}

// loaded updates the rule-set gauges.
func (h *Holder) loaded(e *Engine) {
	h.opts.Metrics.loaded.Set(float64(len(e.rules)))
	h.opts.Metrics.lastLoad.Set(float64(e.version.LoadedAt.UnixNano()) / 1e9)
}

// WatchOptions configure Watch.
type WatchOptions struct {
	// Interval is how often file modification times are polled.
	// Default: 1s.
	Interval time.Duration
	// Load returns the configuration to reload with when a watched file
	// changes. cmd sets it to re-read the main config file; the default
	// reuses the current Config (rule files are re-read, inline rules
	// are not).
	Load func() (Config, Options, error)
}

// Watch polls the main config file and the rule files (re-expanding globs
// and directories, so new and deleted files count) every interval and
// reloads when any changed. Refused reloads are logged and the watch goes
// on. Watch blocks until ctx is cancelled and then returns nil.
func (h *Holder) Watch(ctx context.Context, wo WatchOptions) error {
	if wo.Interval <= 0 {
		wo.Interval = time.Second
	}
	t := time.NewTicker(wo.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		h.mu.Lock()
		cfg, opts, seen := h.cfg, h.opts, h.seen
		h.mu.Unlock()
		if fingerprint(cfg, opts.ConfigFile) == seen {
			continue
		}
		log := logger(opts.Logger)
		if wo.Load != nil {
			var err error
			if cfg, opts, err = wo.Load(); err != nil {
				log.Error("reloading rules: loading config", "err", err)
				h.mu.Lock()
				h.seen = fingerprint(h.cfg, h.opts.ConfigFile) // retry on the next change, not every tick
				h.mu.Unlock()
				continue
			}
		}
		if err := h.Reload(cfg, opts); err != nil {
			var re *ReloadError
			if errors.As(err, &re) {
				for _, e := range re.Errs {
					log.Error("rule error, keeping the active rules", "err", e)
				}
				continue
			}
			log.Error("reloading rules", "err", err)
		}
	}
}

// fingerprint describes the files a configuration reads: names, sizes
// and modification times.
func fingerprint(cfg Config, configFile string) string {
	files, _ := expandFiles(cfg.Files, baseDir(configFile))
	if configFile != "" {
		files = append(files, configFile)
	}
	var b strings.Builder
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			fmt.Fprintf(&b, "%s:missing\n", f)
			continue
		}
		fmt.Fprintf(&b, "%s:%d:%d\n", f, st.Size(), st.ModTime().UnixNano())
	}
	return b.String()
}
