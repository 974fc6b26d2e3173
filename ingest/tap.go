package ingest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/broker/topic"
)

// Tap limits.
const (
	// MaxTaps is the most taps open at once; OpenTap refuses more with
	// ErrTooManyTaps.
	MaxTaps = 8
	// MaxTapBuffer bounds a tap's buffer (events held for a slow reader).
	MaxTapBuffer = 1024
)

// ErrTooManyTaps is returned by OpenTap when MaxTaps taps are open.
var ErrTooManyTaps = errors.New("too many taps open")

// TapEvent is one message a tap saw, as the rules saw it. Its message and
// decoded payload are immutable and shared with the pipeline: read them,
// never modify them.
type TapEvent struct {
	Input
	// At is when the pipeline saw the message.
	At time.Time
	// DeadLettered reports that a schema binding sent the message to the
	// dead-letter store before the rules (on_invalid: dead_letter).
	DeadLettered bool
}

// Tap is a subscription to the messages passing through the pipeline
// whose topic matches a filter. It never slows the pipeline: events are
// handed over without blocking into a bounded buffer, and dropped and
// counted when the reader falls behind.
type Tap struct {
	taps    *taps
	filter  string
	ch      chan TapEvent
	dropped atomic.Int64
	once    sync.Once
}

// Events is the tap's buffer. It is never closed: stop reading on Close
// or on your own context.
func (t *Tap) Events() <-chan TapEvent { return t.ch }

// Filter is the tap's topic filter.
func (t *Tap) Filter() string { return t.filter }

// Dropped is the number of events dropped because the buffer was full.
func (t *Tap) Dropped() int64 { return t.dropped.Load() }

// Close detaches the tap; it is safe to call twice.
func (t *Tap) Close() { t.once.Do(func() { t.taps.remove(t) }) }

// taps is the pipeline's set of open taps. Deliver reads it with one
// atomic load; with no tap open that is all it costs.
type taps struct {
	on   atomic.Bool
	list atomic.Pointer[[]*Tap] // copy on write, under mu

	mu sync.Mutex

	seen    atomic.Int64 // events handed to taps
	dropped atomic.Int64 // events dropped by full tap buffers
}

// OpenTap opens a tap on the messages whose topic matches filter (an MQTT
// topic filter), with a buffer of the given size (1 to MaxTapBuffer).
func (p *Pipeline) OpenTap(filter string, buffer int) (*Tap, error) {
	if !topic.ValidFilter([]byte(filter)) {
		return nil, fmt.Errorf("opening tap: invalid topic filter %q", filter)
	}
	buffer = min(max(buffer, 1), MaxTapBuffer)
	ts := &p.taps
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var cur []*Tap
	if l := ts.list.Load(); l != nil {
		cur = *l
	}
	if len(cur) >= MaxTaps {
		return nil, fmt.Errorf("opening tap: %w (%d)", ErrTooManyTaps, MaxTaps)
	}
	t := &Tap{taps: ts, filter: filter, ch: make(chan TapEvent, buffer)}
	next := append(append(make([]*Tap, 0, len(cur)+1), cur...), t)
	ts.list.Store(&next)
	ts.on.Store(true)
	return t, nil
}

func (ts *taps) remove(t *Tap) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	cur := *ts.list.Load()
	next := make([]*Tap, 0, len(cur))
	for _, o := range cur {
		if o != t {
			next = append(next, o)
		}
	}
	ts.list.Store(&next)
	ts.on.Store(len(next) > 0)
}

// observe hands in to every open tap whose filter matches its topic and
// reports whether one kept it (its decoded payload must then stay as it
// is). Deliver calls it, after decoding, only when ts.on is set.
func (ts *taps) observe(in *Input) (kept bool) {
	l := ts.list.Load()
	if l == nil {
		return false
	}
	var ev *TapEvent
	for _, t := range *l {
		if !topic.Match(t.filter, in.Msg.Topic) {
			continue
		}
		if len(t.ch) == cap(t.ch) { // full: drop before building the event
			t.dropped.Add(1)
			ts.dropped.Add(1)
			continue
		}
		if ev == nil {
			ev = &TapEvent{Input: *in, At: time.Now()}
			var inv deadLetterer
			ev.DeadLettered = in.DecodeErr != nil && errors.As(in.DecodeErr, &inv) && inv.DeadLetterPayload()
		}
		select {
		case t.ch <- *ev:
			ts.seen.Add(1)
			kept = true
		default:
			t.dropped.Add(1)
			ts.dropped.Add(1)
		}
	}
	return kept
}

// TapCollector exports the taps' counters: sluice_tap_open,
// sluice_tap_events_total and sluice_tap_dropped_total. Register it
// where a console serves taps.
func (p *Pipeline) TapCollector() prometheus.Collector { return tapCollector{&p.taps} }

type tapCollector struct{ ts *taps }

var (
	descTapOpen    = prometheus.NewDesc("sluice_tap_open", "Live taps open.", nil, nil)
	descTapEvents  = prometheus.NewDesc("sluice_tap_events_total", "Messages handed to live taps.", nil, nil)
	descTapDropped = prometheus.NewDesc("sluice_tap_dropped_total", "Messages a live tap dropped because its reader was slow.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c tapCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTapOpen
	ch <- descTapEvents
	ch <- descTapDropped
}

// Collect implements prometheus.Collector.
func (c tapCollector) Collect(ch chan<- prometheus.Metric) {
	n := 0
	if l := c.ts.list.Load(); l != nil {
		n = len(*l)
	}
	ch <- prometheus.MustNewConstMetric(descTapOpen, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(descTapEvents, prometheus.CounterValue, float64(c.ts.seen.Load()))
	ch <- prometheus.MustNewConstMetric(descTapDropped, prometheus.CounterValue, float64(c.ts.dropped.Load()))
}
