// Package console is Sluice's live web console: static pages embedded in
// the binary (no CDN, no build step; it works offline), a stats stream
// that samples the broker, the pipeline and the rules once a second, and
// the live tap, which shows the messages matching a topic filter with
// each rule's decision. Both streams are Server-Sent Events behind the
// admin token; see DESIGN.md.
package console

import (
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/rules"
)

//go:embed assets
var assets embed.FS

// Broker is what the console reads of the broker.
type Broker interface {
	Stats() broker.Stats
}

// Pipeline is what the console reads of the pipeline.
type Pipeline interface {
	Accounting() *ingest.Accounting
	SinkStats() []ingest.SinkStats
	OpenTap(filter string, buffer int) (*ingest.Tap, error)
}

// Decider explains a message rule by rule (rules.Holder).
type Decider interface {
	Decide(in *ingest.Input) []rules.Decision
}

// Mounter is where the console's routes go (admin.Server): Mount puts a
// handler behind the admin token, Public serves it without.
type Mounter interface {
	Mount(pattern string, h http.Handler)
	Public(pattern string, h http.Handler)
}

// Options configure a Console.
type Options struct {
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Broker, Pipeline and Rules are read for the streams. Required.
	Broker   Broker
	Pipeline Pipeline
	Rules    Decider
	// Gatherer supplies the rules' hit counts (sluice_rule_*_total).
	// Default: nil (no rule counts).
	Gatherer prometheus.Gatherer
	// Interval is the stats sampling period. Default: 1s.
	Interval time.Duration
	// History is the number of chart points kept. Default: 600 (ten
	// minutes at the default interval).
	History int
	// MaxStreams is the most stats streams open at once. Default: 16.
	MaxStreams int
	// TapBuffer is each tap's buffer of messages; when the browser falls
	// behind, messages are dropped and counted. Default: 256.
	TapBuffer int
	// TapRate is the most messages a tap sends per second; beyond it,
	// messages are skipped (counted, not explained) so that a busy topic
	// costs the pipeline no CPU. Default: 100.
	TapRate int
	// PreviewBytes bounds payload and output previews. Default: 1024.
	PreviewBytes int
}

// Console serves the console's pages and streams.
type Console struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	subs   map[chan []byte]struct{} // stats streams
	latest []byte                   // the last sample, JSON
	hist   ring

	streamDrops atomic.Int64 // samples a slow stats stream missed

	// done is closed when Run returns: the streams end then, so the
	// admin listener's graceful shutdown does not wait on them.
	done     chan struct{}
	doneOnce sync.Once
}

// New checks opts and builds a console. It does no I/O; call Run to
// sample.
func New(opts Options) (*Console, error) {
	if opts.Broker == nil || opts.Pipeline == nil || opts.Rules == nil {
		return nil, errors.New("console: Broker, Pipeline and Rules are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.History <= 0 {
		opts.History = 600
	}
	if opts.MaxStreams <= 0 {
		opts.MaxStreams = 16
	}
	if opts.TapBuffer <= 0 {
		opts.TapBuffer = 256
	}
	if opts.TapRate <= 0 {
		opts.TapRate = 100
	}
	if opts.PreviewBytes <= 0 {
		opts.PreviewBytes = 1024
	}
	return &Console{
		opts: opts, log: opts.Logger, subs: map[chan []byte]struct{}{},
		hist: ring{buf: make([]Point, opts.History)}, done: make(chan struct{}),
	}, nil
}

// Mount registers the console's routes:
//
//	GET /                      redirects to /console/ (public)
//	GET /console/              the pages (public: they hold no data)
//	GET /api/v1/stats/stream   the stats stream (SSE, token)
//	GET /api/v1/tap?filter=F   the live tap (SSE, token)
func (c *Console) Mount(m Mounter) {
	m.Public("GET /{$}", http.RedirectHandler("/console/", http.StatusFound))
	m.Public("GET /console/", c.Assets())
	m.Mount("GET /api/v1/stats/stream", http.HandlerFunc(c.serveStats))
	m.Mount("GET /api/v1/tap", http.HandlerFunc(c.serveTap))
}

// Assets serves the embedded pages under /console/.
func (c *Console) Assets() http.Handler {
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		panic(err) // the embedded tree always has assets/
	}
	files := http.StripPrefix("/console/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Everything the pages load comes from this listener.
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// StreamDrops is the number of samples slow stats streams missed.
func (c *Console) StreamDrops() int64 { return c.streamDrops.Load() }
