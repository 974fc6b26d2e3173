package command

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"
)

// outbox is the durable queue of status events. Events are numbered when
// a transition happens (under Service.mu, so per-command order is seq
// order) and made durable later: a new command's events with it in the
// accept log, all others by the next checkpoint into the store (which
// also copies the logged ones, so the log can go). A sink is handed only
// durable events below the lowest one not durable yet (the floor), each
// sink at its own pace from its own cursor, so it sees them in seq order
// although the log makes later events durable before earlier ones. An
// event leaves the store once every sink has it. Bounded by MaxEvents
// (oldest dropped) and MaxAge (dropped when found older); every drop is
// counted.
type outbox struct {
	cfg   OutboxConfig
	log   *slog.Logger
	met   *metrics
	sinks []namedSink

	mu          sync.Mutex // a leaf: taken under Service.mu
	nextSeq     uint64
	fresh       []seqEvent    // numbered, not durable yet, in seq order
	writing     [2][]seqEvent // fresh ones being written by the log (toLog) and the store (toStore), in seq order
	stored      []seqEvent    // durable (logged or in the store), not yet taken by every sink, in seq order
	inStore     uint64        // the events below it that are kept are in the store (logged ones above it are not yet)
	deleteBelow uint64        // to delete from the store with the next flush
	wake        chan struct{}
}

type namedSink struct {
	name   string
	sink   EventSink
	cursor uint64 // next seq to hand over
}

func newOutbox(cfg OutboxConfig, sinks map[string]EventSink, log *slog.Logger, met *metrics) *outbox {
	o := &outbox{cfg: cfg, log: log, met: met, nextSeq: 1, wake: make(chan struct{})}
	for name, sk := range sinks {
		o.sinks = append(o.sinks, namedSink{name: name, sink: sk, cursor: 1})
	}
	sort.Slice(o.sinks, func(i, j int) bool { return o.sinks[i].name < o.sinks[j].name })
	return o
}

// load restores the events at start: those in the store, then those
// replayed from the accept log (all numbered after the store's).
func (o *outbox) load(inStore, logged []seqEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stored = mergeSeq(inStore, logged)
	if n := len(inStore); n > 0 {
		o.inStore = inStore[n-1].Seq + 1
	}
	if n := len(o.stored); n > 0 {
		o.nextSeq = max(o.nextSeq, o.stored[n-1].Seq+1)
	}
	o.inStore = max(o.inStore, 1)
	for i := range o.sinks {
		o.sinks[i].cursor = o.nextSeq
		if len(o.stored) > 0 {
			o.sinks[i].cursor = o.stored[0].Seq
		}
	}
	o.met.outboxBuffered.Set(float64(len(o.stored)))
}

// add numbers an event, transition idx of its command; nothing is kept
// without sinks.
func (o *outbox) add(ev Event, idx int) {
	if len(o.sinks) == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fresh = append(o.fresh, seqEvent{Seq: o.nextSeq, Idx: idx, Ev: ev})
	o.nextSeq++
	for len(o.fresh)+len(o.stored) > o.cfg.MaxEvents {
		if len(o.stored) > 0 && (len(o.fresh) == 0 || o.stored[0].Seq < o.fresh[0].Seq) {
			o.dropStoredLocked(1, "outbox_full")
		} else {
			o.fresh = o.fresh[1:]
			for _, s := range o.sinks {
				o.met.eventsDropped.WithLabelValues(s.name, "outbox_full").Inc()
			}
		}
	}
}

// countLost counts n events no sink will get (reason: why).
func (o *outbox) countLost(n int, reason string) {
	for _, s := range o.sinks {
		o.met.eventsDropped.WithLabelValues(s.name, reason).Add(float64(n))
	}
}

// dropStoredLocked drops the n oldest stored events for every sink that
// does not have them yet. Cursors and the store's delete mark move past
// them but never past the floor: an older event still being written is
// handed over (and deleted) normally.
func (o *outbox) dropStoredLocked(n int, reason string) {
	last := o.stored[n-1].Seq
	next := min(last+1, o.floorLocked())
	for i := range o.sinks {
		s := &o.sinks[i]
		if s.cursor <= last {
			lost := 0
			for _, e := range o.stored[:n] {
				if e.Seq >= s.cursor {
					lost++
				}
			}
			o.met.eventsDropped.WithLabelValues(s.name, reason).Add(float64(lost))
			s.cursor = max(s.cursor, next)
		}
	}
	o.stored = o.stored[n:]
	o.deleteBelow = max(o.deleteBelow, next)
	o.met.outboxBuffered.Set(float64(len(o.stored)))
}

// The two writers of events: the accept log and the bbolt checkpoint.
const (
	toLog = iota
	toStore
)

// takeFor hands an accept flush the events of the commands it logs
// (ids); the others stay for the checkpoint.
func (o *outbox) takeFor(ids map[string]struct{}) []seqEvent {
	o.mu.Lock()
	defer o.mu.Unlock()
	var evs []seqEvent
	keep := o.fresh[:0]
	for _, e := range o.fresh {
		if _, ok := ids[e.Ev.ID]; ok {
			evs = append(evs, e)
		} else {
			keep = append(keep, e)
		}
	}
	clear(o.fresh[len(keep):])
	o.fresh = keep
	o.writing[toLog] = evs
	return evs
}

// checkpoint is what a checkpoint writes of the outbox.
type checkpoint struct {
	events      []seqEvent // to put: fresh ones and logged ones not yet in the store
	taken       []seqEvent // the fresh ones among them (stored once written)
	deleteBelow uint64     // delete stored events below this
	mark        uint64     // after the write, every event below it that is still kept is in the store
}

// takeCheckpoint hands a checkpoint the events not yet in the store: the
// fresh ones, except those of commands still waiting for the accept log
// (skip: they are logged with their command), and those only logged
// (seq ≥ o.inStore).
func (o *outbox) takeCheckpoint(skip map[string]struct{}) checkpoint {
	o.mu.Lock()
	defer o.mu.Unlock()
	cp := checkpoint{deleteBelow: o.deleteBelow, mark: o.nextSeq}
	o.deleteBelow = 0
	low := o.nextSeq // logged events every sink already took need not be stored
	for _, sk := range o.sinks {
		low = min(low, sk.cursor)
	}
	from := max(o.inStore, low)
	k := sort.Search(len(o.stored), func(i int) bool { return o.stored[i].Seq >= from })
	cp.events = append(cp.events, o.stored[k:]...)
	keep := o.fresh[:0]
	for _, e := range o.fresh {
		if _, ok := skip[e.Ev.ID]; ok {
			keep = append(keep, e)
			cp.mark = min(cp.mark, e.Seq)
		} else {
			cp.taken = append(cp.taken, e)
		}
	}
	clear(o.fresh[len(keep):])
	o.fresh = keep
	cp.events = mergeSeq(cp.events, cp.taken)
	o.writing[toStore] = cp.taken
	return cp
}

// checkpointed records a committed checkpoint.
func (o *outbox) checkpointed(cp checkpoint) {
	o.mu.Lock()
	o.inStore = max(o.inStore, cp.mark)
	o.mu.Unlock()
	o.markStored(toStore, cp.taken)
}

// requeue gives a failed write's fresh events back.
func (o *outbox) requeue(w int, evs []seqEvent, below uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fresh = mergeSeq(o.fresh, evs)
	o.writing[w] = nil
	o.deleteBelow = max(o.deleteBelow, below)
}

// markStored makes events writer w made durable available to the sinks.
func (o *outbox) markStored(w int, evs []seqEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.writing[w] = nil
	if len(evs) == 0 {
		return
	}
	o.stored = mergeSeq(o.stored, evs)
	o.met.outboxBuffered.Set(float64(len(o.stored)))
	close(o.wake)
	o.wake = make(chan struct{})
}

// floorLocked is the lowest seq not yet written: sinks get only events
// below it. o.mu must be held.
func (o *outbox) floorLocked() uint64 {
	f := o.nextSeq
	if len(o.fresh) > 0 {
		f = min(f, o.fresh[0].Seq)
	}
	for _, w := range o.writing {
		if len(w) > 0 {
			f = min(f, w[0].Seq)
		}
	}
	return f
}

// mergeSeq merges evs (in seq order) into dst (in seq order). Usually
// evs all come after dst: an append.
func mergeSeq(dst, evs []seqEvent) []seqEvent {
	if len(evs) == 0 {
		return dst
	}
	k := sort.Search(len(dst), func(i int) bool { return dst[i].Seq > evs[0].Seq })
	if k == len(dst) {
		return append(dst, evs...)
	}
	tail := append([]seqEvent(nil), dst[k:]...)
	dst = dst[:k]
	i, j := 0, 0
	for i < len(tail) && j < len(evs) {
		if tail[i].Seq < evs[j].Seq {
			dst = append(dst, tail[i])
			i++
		} else {
			dst = append(dst, evs[j])
			j++
		}
	}
	dst = append(dst, tail[i:]...)
	return append(dst, evs[j:]...)
}

// run drains the outbox to every sink until ctx ends.
func (o *outbox) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range o.sinks {
		wg.Go(func() { o.drain(ctx, i) })
	}
	wg.Wait()
}

// next returns the batch for sink i (or a channel to wait on).
func (o *outbox) next(i int) ([]Event, uint64, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cfg.MaxAge > 0 {
		cut := time.Now().Add(-o.cfg.MaxAge)
		n := 0
		for n < len(o.stored) && o.stored[n].Ev.At.Before(cut) {
			n++
		}
		if n > 0 {
			o.dropStoredLocked(n, "too_old")
		}
	}
	s := &o.sinks[i]
	j := sort.Search(len(o.stored), func(k int) bool { return o.stored[k].Seq >= s.cursor })
	floor := o.floorLocked()
	end := j
	for end < len(o.stored) && end-j < o.cfg.BatchSize && o.stored[end].Seq < floor {
		end++
	}
	if end == j {
		return nil, 0, o.wake
	}
	evs := make([]Event, 0, end-j)
	for _, e := range o.stored[j:end] {
		evs = append(evs, e.Ev)
	}
	return evs, o.stored[end-1].Seq, nil
}

// done advances sink i past last and trims what every sink has.
func (o *outbox) done(i int, last uint64, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := &o.sinks[i]
	if last >= s.cursor {
		s.cursor = last + 1
	}
	o.met.eventsPublished.WithLabelValues(s.name).Add(float64(n))
	low := s.cursor
	for _, x := range o.sinks {
		low = min(low, x.cursor)
	}
	k := sort.Search(len(o.stored), func(k int) bool { return o.stored[k].Seq >= low })
	if k > 0 {
		o.stored = append(o.stored[:0:0], o.stored[k:]...)
		o.deleteBelow = max(o.deleteBelow, low)
		o.met.outboxBuffered.Set(float64(len(o.stored)))
	}
}

// drain hands events to sink i, retrying with backoff.
func (o *outbox) drain(ctx context.Context, i int) {
	name, sink := o.sinks[i].name, o.sinks[i].sink
	var backoff time.Duration
	for {
		evs, last, wait := o.next(i)
		if wait != nil {
			select {
			case <-ctx.Done():
				return
			case <-wait:
			case <-time.After(time.Second): // MaxAge checks
			}
			continue
		}
		if err := sink.PublishEvents(ctx, evs); err != nil {
			if ctx.Err() != nil {
				return
			}
			o.met.sinkErrors.WithLabelValues(name).Inc()
			backoff = min(max(2*backoff, o.cfg.RetryInitial), o.cfg.RetryMax)
			d := backoff/2 + rand.N(backoff/2+1)
			o.log.Warn("publishing command status events", "sink", name, "events", len(evs), "err", err, "retry_in", d)
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
			continue
		}
		backoff = 0
		o.done(i, last, len(evs))
	}
}

// sortSeq sorts events by seq.
func sortSeq(evs []seqEvent) {
	sort.Slice(evs, func(i, j int) bool { return evs[i].Seq < evs[j].Seq })
}
