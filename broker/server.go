// Package broker is Sluice's embedded MQTT 3.1.1/5.0 broker. Every PUBLISH
// it accepts from a client is handed to a Consumer (the ingest seam) and
// acknowledged to the client only once the consumer accepts it; accepted
// messages are then routed to subscribers. See DESIGN.md for the
// guarantees, goroutine model and lock order.
package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/broker/listener"
	"github.com/sluicehq/sluice/broker/topic"
)

// Server is the embedded MQTT broker.
type Server struct {
	cfg      Config
	log      *slog.Logger
	consumer Consumer // nil: accept every message at once
	stats    stats
	subs     *topic.Tree
	picker   topic.SharedPicker
	retained *topic.Retained[*Message]
	sessions sessionTable
	online   func(clientID string) bool // s.isOnline, bound once
	poller   *idlePoller                // nil: idle connections keep a goroutine
	noPoller bool                       // tests: exercise the goroutine fallback
	store    SessionStore               // nil: state in memory only
	auth     Auth                       // nil: listeners' allow_anonymous, all allowed
	tracker  Tracker                    // nil: tracked messages are not reported
	storeSt  storeState
	limits   connLimits
	version  string    // $SYS/broker/version
	started  time.Time // $SYS/broker/uptime
	idPrefix string
	nextID   atomic.Uint64

	// baseCtx is the context handed to Consumer.Deliver. It is the
	// server's lifetime (like http.Server.BaseContext), cancelled when the
	// shutdown deadline passes; set by Serve before any connection exists.
	baseCtx context.Context

	draining atomic.Bool   // shutdown started: stop reading, drain acks
	drainCh  chan struct{} // closed when shutdown starts
	hardCh   chan struct{} // closed when the shutdown deadline passes

	mu        sync.Mutex // guards the fields below
	listeners []*boundListener
	conns     map[*conn]struct{}
	serving   bool
	stopped   bool           // no new goroutines (timers) may start
	wg        sync.WaitGroup // accept loops, connections, timer callbacks
}

// boundListener is one bound network listener.
type boundListener struct {
	cfg ListenerConfig
	ln  *listener.Listener
}

// New validates cfg and builds a Server. It does no I/O.
func New(cfg Config, opts Options) (*Server, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("validating broker config: %w", errors.Join(errs...))
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		cfg:      cfg,
		log:      log,
		consumer: opts.Consumer,
		store:    opts.Store,
		auth:     opts.Auth,
		tracker:  opts.Tracker,
		version:  opts.Version,
		started:  time.Now(),
		subs:     topic.NewTree(),
		retained: topic.NewRetained[*Message](),
		idPrefix: fmt.Sprintf("sluice-%x-", time.Now().UnixNano()&0xffffffffff),
		baseCtx:  context.Background(),
		drainCh:  make(chan struct{}),
		hardCh:   make(chan struct{}),
		conns:    make(map[*conn]struct{}),
	}
	s.sessions.init()
	s.storeSt = storeState{dirty: make(map[string]*session), deleted: make(map[string]struct{}), retain: make(map[string]struct{}),
		waiters: make(map[*conn]struct{}), kick: make(chan struct{}, 1)}
	s.online = s.isOnline
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(collector{s}); err != nil {
			return nil, fmt.Errorf("registering broker metrics: %w", err)
		}
	}
	return s, nil
}

// Listen binds every configured listener. After it returns, Addrs reports
// the bound addresses (useful with port 0).
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.listeners) > 0 {
		return errors.New("listening: already listening")
	}
	for _, l := range s.cfg.Listeners {
		ln, err := listener.Listen(context.Background(), l.Config, listener.Options{Logger: s.log})
		if err != nil {
			for _, b := range s.listeners {
				b.ln.Close()
			}
			s.listeners = nil
			return err
		}
		s.listeners = append(s.listeners, &boundListener{cfg: l, ln: ln})
	}
	return nil
}

// Addrs returns the bound listener addresses by listener name.
func (s *Server) Addrs() map[string]net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]net.Addr, len(s.listeners))
	for _, l := range s.listeners {
		m[l.cfg.Name] = l.ln.Addr()
	}
	return m
}

// Serve accepts connections until ctx is cancelled, then shuts down:
// stops accepting, sends DISCONNECT 0x8B to v5 clients, waits for pending
// acks up to a deadline and closes every connection. Listen must be called
// first.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	if len(s.listeners) == 0 {
		s.mu.Unlock()
		return errors.New("serving: Listen was not called")
	}
	if s.serving {
		s.mu.Unlock()
		return errors.New("serving: already serving")
	}
	s.serving = true
	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	s.baseCtx = base
	storeStop := make(chan struct{})
	if s.store != nil {
		if err := s.restore(ctx); err != nil {
			for _, l := range s.listeners {
				l.ln.Close()
			}
			s.mu.Unlock()
			return fmt.Errorf("loading broker state: %w", err)
		}
		s.wg.Add(1)
		go s.runStore(storeStop)
	}
	if s.noPoller {
		// Idle connections wait on goroutines.
	} else if p, err := newIdlePoller(s); err != nil {
		s.log.Warn("idle connection poller unavailable, idle connections keep a goroutine", "err", err)
	} else if p != nil {
		s.poller = p
		s.wg.Add(1)
		go p.run()
	}
	for _, l := range s.listeners {
		s.wg.Add(1)
		go s.accept(l)
	}
	if s.cfg.SysInterval > 0 {
		s.wg.Add(1)
		go s.runSys(s.drainCh)
	}
	s.mu.Unlock()

	<-ctx.Done()
	s.shutdown(cancel, storeStop)
	return nil
}

// accept runs one listener's accept loop.
func (s *Server) accept(l *boundListener) {
	defer s.wg.Done()
	var backoff time.Duration
	for {
		nc, err := l.ln.Accept()
		if err != nil {
			if s.draining.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off, do not spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accepting connection", "listener", l.cfg.Name, "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-s.drainCh:
				return
			}
			continue
		}
		backoff = 0
		key, ok := s.admit(nc)
		if !ok {
			nc.Close()
			continue
		}
		c := newConn(s, nc, l)
		c.addrKey = key
		s.mu.Lock()
		if s.draining.Load() {
			s.mu.Unlock()
			nc.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

// shutdown drains and closes everything; it returns when every goroutine
// the server started has ended.
func (s *Server) shutdown(cancel context.CancelFunc, storeStop chan struct{}) {
	s.mu.Lock()
	s.draining.Store(true)
	close(s.drainCh)
	for _, l := range s.listeners {
		l.ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.interrupt()
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, c := range conns {
			c.done.Wait()
		}
	}()
	t := time.NewTimer(s.cfg.ShutdownTimeout)
	select {
	case <-done:
		t.Stop()
	case <-t.C:
		s.log.Warn("shutdown deadline passed, closing connections", "connections", len(conns))
		close(s.hardCh)
		cancel()
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
			s.poller.wake(c)
		}
		s.mu.Unlock()
		<-done
	}

	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.sessions.each(func(ss *session) { ss.stopTimers(s) })
	close(storeStop) // the final flush sees every connection's last state
	s.poller.stop()
	s.wg.Wait()
	s.poller.close()
	cancel()
}

// removeConn forgets a finished connection.
func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// startTimerFunc reports whether a timer callback may run, registering it
// with the server's WaitGroup; the caller must call s.wg.Done when it
// returns true. After shutdown no callback runs.
func (s *Server) startTimerFunc() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.wg.Add(1)
	return true
}

// isOnline reports whether clientID has a connected session.
func (s *Server) isOnline(clientID string) bool {
	ss := s.sessions.get(clientID)
	return ss != nil && ss.conn.Load() != nil
}

// Publish injects a message as if published by a client (used by the
// republish sink and downstream commands). It is routed to subscribers
// without passing through the Consumer. A Retain message updates the
// retained store (an empty payload clears it). m is not modified or kept;
// its byte slices are, so the caller must not change them afterwards.
func (s *Server) Publish(m *Message) error {
	if m == nil {
		return errors.New("publishing: nil message")
	}
	if !topic.ValidName([]byte(m.Topic)) {
		return fmt.Errorf("publishing: invalid topic name %q", m.Topic)
	}
	if m.QoS > 2 {
		return fmt.Errorf("publishing: invalid QoS %d", m.QoS)
	}
	cp := *m
	if cp.ReceivedAt.IsZero() {
		cp.ReceivedAt = time.Now()
	}
	s.deliverAccepted(&cp, "", true, nil)
	return nil
}

// deliverAccepted applies an accepted message: it updates the retained
// store and routes the message to subscribers. from is the publishing
// client id (for No Local), "" for server-injected messages. wait and
// pacer say how QoS 0 routing paces the caller (see route). It reports
// whether the message changed durable state (a retained message, a queue
// of an offline session) while a store is configured: a QoS 1/2 ack then
// waits for the next store flush.
func (s *Server) deliverAccepted(m *Message, from string, wait bool, pacer *conn) bool {
	durable := false
	if m.Retain {
		if len(m.Payload) == 0 {
			s.retained.Delete(m.Topic)
		} else {
			s.retained.Set(m.Topic, m)
		}
		s.markRetained(m.Topic)
		durable = s.store != nil
	}
	return s.route(m, from, wait, pacer) || durable
}
