package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// runConn opens -clients idle connections, holds them for -duration and
// closes them. With -pid it samples the broker's resident memory before
// connecting and at the end of the hold, which gives the broker's memory
// cost per idle connection.
func (r *runner) runConn(ctx context.Context) (*summary, error) {
	cfg := r.cfg
	var rssBefore int64
	if cfg.pid > 0 {
		var err error
		if rssBefore, err = readRSS(cfg.pid); err != nil {
			return nil, err
		}
	}
	// Idle connections write only PINGREQ and DISCONNECT.
	r.opts.bufSize = 64

	var mu sync.Mutex
	opened := 0
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() {
		r.progressLoop(stop, func(elapsed, _ time.Duration) string {
			mu.Lock()
			n := opened
			mu.Unlock()
			return fmt.Sprintf("%5.0fs  connected %s of %s  failed %d  dropped %d",
				elapsed.Seconds(), count(int64(n)), count(int64(cfg.clients)), r.errs.count()-r.dropped.Load(), r.dropped.Load())
		})
	})
	start := time.Now()
	clients := r.connectAll(ctx, cfg.clients, "conn", connectHooks{
		before: func(int, *client) { mu.Lock(); opened++; mu.Unlock() },
	})
	connSecs := time.Since(start).Seconds()
	held := live(clients)
	if len(held) == 0 {
		close(stop)
		bg.Wait()
		_, samples := r.errs.snapshot()
		if len(samples) == 0 {
			samples = []string{"interrupted"}
		}
		return nil, fmt.Errorf("connecting to %s: %s", cfg.addr, samples[0])
	}
	failed := cfg.clients - len(held)

	bg.Go(func() { r.pinger(stop, clients) })
	holdStart := time.Now()
	timer := time.NewTimer(cfg.duration)
	select {
	case <-timer.C:
	case <-ctx.Done():
		timer.Stop()
	}
	heldSecs := time.Since(holdStart).Seconds()
	var rssHeld int64
	var rssErr error
	if cfg.pid > 0 {
		rssHeld, rssErr = readRSS(cfg.pid)
	}
	close(stop)
	bg.Wait()
	r.closeAll(clients)
	if rssErr != nil {
		return nil, rssErr
	}

	st := &connStat{
		Seconds:     connSecs,
		Failed:      failed,
		Latency:     newLatency(&r.connHist),
		HeldSeconds: heldSecs,
		RSSBeforeKB: rssBefore,
		RSSHeldKB:   rssHeld,
	}
	if connSecs > 0 {
		st.Rate = float64(len(held)) / connSecs
	}
	if cfg.pid > 0 {
		st.RSSPerConnKB = float64(rssHeld-rssBefore) / float64(len(held))
	}
	s := &summary{
		Mode:      cfg.mode,
		Broker:    cfg.brokerURL,
		Protocol:  protocolName(cfg.version),
		Connect:   st,
		Clients:   cfg.clients,
		Connected: len(held),
		Dropped:   r.dropped.Load(),
	}
	s.Errors, s.ErrorList = r.errs.snapshot()
	return s, nil
}

// readRSS returns VmRSS of process pid in KiB.
func readRSS(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("reading broker memory: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing VmRSS of pid %d: %w", pid, err)
		}
		return kb, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("reading /proc/%d/status: %w", pid, err)
	}
	return 0, errors.New("no VmRSS in /proc/" + strconv.Itoa(pid) + "/status")
}
