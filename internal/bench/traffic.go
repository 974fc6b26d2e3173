package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sluicehq/sluice/broker/packet"
)

// runTraffic runs the pub, sub, fanin and fanout modes: subscribers
// connect and subscribe first, then publishers connect, then publishers
// send for -duration, then the run drains (acks, then deliveries) and
// every connection is closed before the summary is built.
func (r *runner) runTraffic(ctx context.Context) (*summary, error) {
	cfg := r.cfg
	nPubs, nSubs := cfg.pubs, cfg.subs
	switch cfg.mode {
	case modePub:
		nPubs, nSubs = cfg.clients, 0
	case modeSub:
		nPubs, nSubs = 0, cfg.clients
	}
	combined := nPubs > 0 && nSubs > 0

	// Subscribers of the combined modes accept only this run's messages
	// from its publishers; a standalone subscriber accepts any bench
	// publisher.
	trackRun, trackPubs := r.runID, nPubs
	if !combined {
		trackRun, trackPubs = 0, 1<<16
	}
	trackers := make([]*tracker, nSubs)
	subs := r.connectAll(ctx, nSubs, "sub", connectHooks{
		before: func(i int, c *client) {
			trackers[i] = newTracker(trackRun, trackPubs)
			c.sub, c.subQoS = trackers[i], cfg.qos
		},
		after: func(ctx context.Context, c *client) error {
			return c.subscribe(ctx, expand(cfg.filter, c.index), cfg.qos, cfg.connTimeout)
		},
	})
	pubs := make([]*publisher, nPubs)
	for i := range pubs {
		pubs[i] = newPublisher(cfg, r.runID, i, expand(cfg.topic, i))
	}
	pubClients := r.connectAll(ctx, nPubs, "pub", connectHooks{
		bufSize: func(i int) int { return pubs[i].bufSize() },
		before:  func(i int, c *client) { pubs[i].attach(c) },
	})
	liveSubs, livePubs := live(subs), live(pubClients)
	if len(liveSubs)+len(livePubs) == 0 || (combined && (len(liveSubs) == 0 || len(livePubs) == 0)) {
		r.closeAll(subs, pubClients)
		_, samples := r.errs.snapshot()
		if len(samples) == 0 {
			samples = []string{"interrupted"}
		}
		return nil, fmt.Errorf("connecting to %s: %s", cfg.addr, samples[0])
	}

	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() { r.pinger(stop, subs, pubClients) })
	counts := func() (sent, recv int64) {
		for _, p := range pubs {
			sent += p.sent.Load()
		}
		for _, t := range trackers {
			if t != nil {
				recv += t.recv.Load()
			}
		}
		return sent, recv
	}
	var lastSent, lastRecv int64
	bg.Go(func() {
		r.progressLoop(stop, func(elapsed, dt time.Duration) string {
			sent, recv := counts()
			s := fmt.Sprintf("%5.0fs", elapsed.Seconds())
			if nPubs > 0 {
				s += fmt.Sprintf("  sent %s (%s/s)", count(sent), rate(float64(sent-lastSent)/dt.Seconds()))
			}
			if nSubs > 0 {
				s += fmt.Sprintf("  recv %s (%s/s)", count(recv), rate(float64(recv-lastRecv)/dt.Seconds()))
			}
			lastSent, lastRecv = sent, recv
			return s + fmt.Sprintf("  errors %d", r.errs.count())
		})
	})

	// Publish (or, in sub mode, receive) for the duration.
	start := time.Now()
	stopPubs := make(chan struct{})
	var pubWG sync.WaitGroup
	for _, p := range pubs {
		if p.c != nil {
			pubWG.Go(func() { p.run(stopPubs, start) })
		}
	}
	timer := time.NewTimer(cfg.duration)
	select {
	case <-timer.C:
	case <-ctx.Done():
		timer.Stop()
	}
	close(stopPubs)
	pubWG.Wait()
	pubEnd := time.Now()

	// Drain: first the publishers' windows, then the deliveries.
	if ctx.Err() == nil && nPubs > 0 {
		deadline := pubEnd.Add(cfg.drain)
		r.waitAcks(ctx, pubs, deadline)
		if combined {
			var sent int64
			for _, p := range pubs {
				sent += p.sent.Load()
			}
			r.waitDeliveries(ctx, trackers, sent*int64(len(liveSubs)), deadline)
		}
	}
	close(stop)
	bg.Wait()
	r.closeAll(subs, pubClients)

	return r.trafficSummary(nPubs, nSubs, pubs, trackers, liveSubs, livePubs, start, pubEnd), nil
}

// waitAcks waits until no publisher has a QoS 1/2 flow open, or deadline.
func (r *runner) waitAcks(ctx context.Context, pubs []*publisher, deadline time.Time) {
	for time.Now().Before(deadline) && ctx.Err() == nil {
		open := false
		for _, p := range pubs {
			if p.c != nil && !p.c.dead.Load() && p.inflight.Load() > 0 {
				open = true
				break
			}
		}
		if !open {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitDeliveries waits until the subscribers hold expected distinct
// messages, until nothing has arrived for a second (the rest is lost),
// or until deadline.
func (r *runner) waitDeliveries(ctx context.Context, trackers []*tracker, expected int64, deadline time.Time) {
	const idle = time.Second
	var prev int64 = -1
	lastChange := time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		var unique, recv int64
		for _, t := range trackers {
			if t != nil {
				unique += t.unique.Load()
				recv += t.recv.Load()
			}
		}
		if unique >= expected {
			return
		}
		if recv != prev {
			prev, lastChange = recv, time.Now()
		} else if time.Since(lastChange) >= idle {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *runner) trafficSummary(nPubs, nSubs int, pubs []*publisher, trackers []*tracker,
	liveSubs, livePubs []*client, start, pubEnd time.Time) *summary {
	cfg := r.cfg
	s := &summary{
		Mode:      cfg.mode,
		Broker:    cfg.brokerURL,
		Protocol:  protocolName(cfg.version),
		QoS:       int(cfg.qos),
		Size:      cfg.size,
		Pubs:      nPubs,
		Subs:      nSubs,
		Seconds:   pubEnd.Sub(start).Seconds(),
		Clients:   nPubs + nSubs,
		Connected: len(liveSubs) + len(livePubs),
		Dropped:   r.dropped.Load(),
	}
	for _, p := range pubs {
		s.Sent += p.sent.Load()
		s.Acked += p.acked.Load()
		s.Rejected += p.rejected.Load()
		s.Unacked += int64(p.inflight.Load())
	}
	var hist histogram
	var last int64
	for _, t := range trackers {
		if t == nil {
			continue
		}
		s.Received += t.recv.Load()
		s.Duplicates += t.dups.Load()
		s.Foreign += t.foreign
		hist.merge(&t.hist)
		last = max(last, t.last.Load())
		if nPubs == 0 {
			s.Lost += t.gaps()
		}
	}
	if nPubs > 0 && nSubs > 0 {
		// Every subscriber's filter matches every publisher's topic.
		s.Expected = s.Sent * int64(len(liveSubs))
		for _, t := range trackers {
			if t == nil {
				continue
			}
			for i, p := range pubs {
				s.Lost += p.sent.Load() - t.uniqueFrom(i)
			}
		}
	}
	if s.Seconds > 0 {
		s.SentRate = float64(s.Sent) / s.Seconds
	}
	if nPubs == 0 && s.Seconds > 0 {
		s.RecvRate = float64(s.Received) / s.Seconds
	} else if last > start.UnixNano() {
		s.RecvRate = float64(s.Received) / (float64(last-start.UnixNano()) / 1e9)
	}
	s.Latency = newLatency(&hist)
	s.Errors, s.ErrorList = r.errs.snapshot()
	return s
}

func protocolName(v byte) string {
	if v == packet.Version5 {
		return "5"
	}
	return "3.1.1"
}
