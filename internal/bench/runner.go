package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/broker/packet"
)

// runner executes one bench run. It owns every goroutine it starts: the
// connection read loops (readers), the pinger and the progress line.
type runner struct {
	cfg      *config
	stderr   io.Writer
	progress bool
	runID    uint32
	opts     dialOptions
	errs     errorLog
	dropped  atomic.Int64
	readers  sync.WaitGroup
	connHist histogram  // conn mode: handshake durations
	histMu   sync.Mutex // guards connHist
}

func newRunner(cfg *config, stderr io.Writer, progress bool) *runner {
	var b [4]byte
	_, _ = rand.Read(b[:])
	id := binary.LittleEndian.Uint32(b[:]) | 1 // never 0, which means "any run"
	return &runner{
		cfg:      cfg,
		stderr:   stderr,
		progress: progress,
		runID:    id,
		opts: dialOptions{
			addr:      cfg.addr,
			version:   cfg.version,
			username:  cfg.username,
			password:  cfg.password,
			keepAlive: cfg.keepAlive,
			timeout:   cfg.connTimeout,
			bufSize:   4 << 10,
			maxPacket: uint32(max(packet.DefaultMaxPacketSize, cfg.size+1<<10)),
			coalesce:  cfg.coalesce,
		},
	}
}

func (r *runner) run(ctx context.Context) (*summary, error) {
	if r.cfg.mode == modeConn {
		return r.runConn(ctx)
	}
	return r.runTraffic(ctx)
}

// connectHooks customise connectAll per role.
type connectHooks struct {
	bufSize func(i int) int                            // write buffer for client i
	before  func(i int, c *client)                     // before its readLoop starts
	after   func(ctx context.Context, c *client) error // after (e.g. subscribe)
}

// connectAll opens n connections named role-i, at most cfg.connRate per
// second and 64 handshakes at a time. Failed slots are nil in the result.
func (r *runner) connectAll(ctx context.Context, n int, role string, h connectHooks) []*client {
	out := make([]*client, n)
	jobs := make(chan int)
	var workers sync.WaitGroup
	for range min(64, n) {
		workers.Go(func() {
			for i := range jobs {
				out[i] = r.connectOne(ctx, i, role, h)
			}
		})
	}
	start := time.Now()
feed:
	for i := range n {
		if r.cfg.connRate > 0 {
			due := start.Add(time.Duration(float64(i) / r.cfg.connRate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					break feed
				}
			}
		}
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	workers.Wait()
	return out
}

func (r *runner) connectOne(ctx context.Context, i int, role string, h connectHooks) *client {
	o := r.opts
	if h.bufSize != nil {
		o.bufSize = h.bufSize(i)
	}
	id := fmt.Sprintf("%s-%08x-%s-%d", r.cfg.prefix, r.runID, role, i)
	t0 := time.Now()
	c, err := dial(ctx, &o, id, i)
	if err != nil {
		r.errs.add(fmt.Errorf("%s %d: %w", role, i, err))
		return nil
	}
	if r.cfg.mode == modeConn {
		r.histMu.Lock()
		r.connHist.record(int64(time.Since(t0)))
		r.histMu.Unlock()
	}
	c.errs, c.dropped = &r.errs, &r.dropped
	if h.before != nil {
		h.before(i, c)
	}
	r.readers.Go(c.readLoop)
	if h.after != nil {
		if err := h.after(ctx, c); err != nil {
			r.errs.add(fmt.Errorf("%s %d: %w", role, i, err))
			c.close()
			return nil
		}
	}
	return c
}

// closeAll disconnects every client and waits for their read loops.
func (r *runner) closeAll(groups ...[]*client) {
	for _, g := range groups {
		for _, c := range g {
			if c != nil {
				c.close()
			}
		}
	}
	r.readers.Wait()
}

// pinger sends PINGREQ on idle connections every half keep alive (the
// shortest any connection has) until stop is closed.
func (r *runner) pinger(stop <-chan struct{}, groups ...[]*client) {
	var ka time.Duration
	for _, g := range groups {
		for _, c := range g {
			if c != nil && c.keepAlive > 0 && (ka == 0 || c.keepAlive < ka) {
				ka = c.keepAlive
			}
		}
	}
	if ka == 0 {
		return
	}
	t := time.NewTicker(ka / 2)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			for _, g := range groups {
				for _, c := range g {
					if c != nil {
						c.ping()
					}
				}
			}
		}
	}
}

// progressLoop redraws a one-line status on stderr once per second until
// stop is closed, then clears it. line builds the text from the elapsed
// time and the seconds since the previous call.
func (r *runner) progressLoop(stop <-chan struct{}, line func(elapsed, dt time.Duration) string) {
	if !r.progress {
		return
	}
	start := time.Now()
	prev := start
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			fmt.Fprint(r.stderr, "\r\033[K")
			return
		case now := <-t.C:
			fmt.Fprintf(r.stderr, "\r\033[K%s", line(now.Sub(start), now.Sub(prev)))
			prev = now
		}
	}
}

// live returns the clients that connected.
func live(cs []*client) []*client {
	out := cs[:0:0]
	for _, c := range cs {
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}
