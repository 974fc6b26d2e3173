// Package listener turns a listener configuration (tcp, tls, ws or wss,
// optionally behind a PROXY protocol load balancer) into a net.Listener
// whose connections carry plain MQTT bytes. Handshakes run off the accept
// path, bounded in time and number; Info reports what each connection's
// handshake learnt (listener, transport, real client address, TLS state,
// client certificate identity). See DESIGN.md.
package listener

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Options carries a listener's dependencies.
type Options struct {
	// Logger receives handshake failures and certificate reloads. Nil
	// discards them.
	Logger *slog.Logger
}

// Listener accepts connections for one listener configuration.
type Listener struct {
	cfg   Config
	log   *slog.Logger
	ln    net.Listener
	certs *certStore  // nil without TLS
	tls   *tls.Config // asks certs for the current configuration
	stats counters

	ready chan net.Conn         // the bounded accept queue
	slots chan struct{}         // one per connection handshaking
	done  chan struct{}         // closed by Close
	wg    sync.WaitGroup        // accept loop and handshakes
	once  sync.Once             // Close
	mu    sync.Mutex            // guards open
	open  map[net.Conn]struct{} // sockets handshaking, closed by Close
}

var _ net.Listener = (*Listener)(nil)

// Listen validates cfg, loads its certificates, binds its address and
// starts accepting. ctx bounds the bind only.
func Listen(ctx context.Context, cfg Config, opts Options) (*Listener, error) {
	cfg = cfg.WithDefaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("validating listener %q: %w", cfg.Name, errors.Join(errs...))
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	l := &Listener{
		cfg:   cfg,
		log:   log.With("listener", cfg.Name),
		ready: make(chan net.Conn, cfg.AcceptQueue),
		slots: make(chan struct{}, cfg.MaxHandshakes),
		done:  make(chan struct{}),
		open:  make(map[net.Conn]struct{}),
	}
	if cfg.isTLS() {
		certs, err := newCertStore(cfg.TLS, l.log, &l.stats)
		if err != nil {
			return nil, fmt.Errorf("listener %q: %w", cfg.Name, err)
		}
		l.certs = certs
		l.tls = certs.serverConfig()
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Address)
	if err != nil {
		return nil, fmt.Errorf("listening on %s (%s): %w", cfg.Address, cfg.Name, err)
	}
	l.ln = ln
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// Accept returns the next connection whose handshake finished. After
// Close it returns net.ErrClosed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, fmt.Errorf("accepting on %s: %w", l.cfg.Name, net.ErrClosed)
	}
}

// Addr returns the bound address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// Config returns the listener's configuration, defaults applied.
func (l *Listener) Config() Config { return l.cfg }

// Close stops accepting, aborts handshakes in progress, closes the
// connections no one accepted yet and waits for the listener's goroutines.
// Accepted connections are the caller's. It is safe to call twice.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.ln.Close()
		l.mu.Lock()
		for c := range l.open {
			c.Close()
		}
		l.mu.Unlock()
		l.wg.Wait() // nothing sends to ready any more
		for len(l.ready) > 0 {
			(<-l.ready).Close()
		}
	})
	return err
}

// needsHandshake reports whether connections need work before Accept.
func (l *Listener) needsHandshake() bool {
	return l.cfg.ProxyProtocol || l.cfg.Type != TCP
}

// acceptLoop accepts sockets and starts a handshake goroutine for each;
// plain tcp sockets go straight to the queue.
func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return
		}
		nc, err := l.ln.Accept()
		if err != nil {
			<-l.slots
			select {
			case <-l.done:
				return
			default:
			}
			// Out of file descriptors and the like: back off, do not spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Warn("accepting connection", "err", err, "retry_in", backoff)
			select {
			case <-time.After(backoff):
			case <-l.done:
				return
			}
			continue
		}
		backoff = 0
		if !l.needsHandshake() {
			tc, _ := nc.(*net.TCPConn)
			l.enqueue(&conn{Conn: nc, tcp: tc, info: ConnInfo{
				Listener: l.cfg.Name, Transport: TCP, RemoteAddr: nc.RemoteAddr(),
			}})
			continue
		}
		if !l.track(nc) {
			<-l.slots
			nc.Close()
			return
		}
		l.stats.handshaking.Add(1)
		l.wg.Add(1)
		go l.handshake(nc)
	}
}

// enqueue hands c to Accept, waiting for room, and frees c's slot.
func (l *Listener) enqueue(c net.Conn) {
	defer func() { <-l.slots }()
	select {
	case l.ready <- c:
		l.stats.accepted.Add(1)
	case <-l.done:
		c.Close()
	}
}

// track registers a handshaking socket for Close; false once closed.
func (l *Listener) track(nc net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		return false
	default:
	}
	l.open[nc] = struct{}{}
	return true
}

func (l *Listener) untrack(nc net.Conn) {
	l.mu.Lock()
	delete(l.open, nc)
	l.mu.Unlock()
}

// handshake prepares one connection and queues it for Accept.
func (l *Listener) handshake(nc net.Conn) {
	defer l.wg.Done()
	c, stage, err := l.prepare(nc)
	l.untrack(nc)
	l.stats.handshaking.Add(-1)
	if err != nil {
		nc.Close()
		<-l.slots
		l.handshakeFailed(nc, stage, err)
		return
	}
	l.enqueue(c)
}

// handshakeFailed counts and logs a failed handshake.
func (l *Listener) handshakeFailed(nc net.Conn, stage int, err error) {
	select {
	case <-l.done:
		return // aborted by Close
	default:
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		// Load balancer health checks connect and leave: count, no noise.
		l.stats.aborted.Add(1)
		l.log.Debug("client left during handshake", "remote", nc.RemoteAddr().String(), "stage", stageNames[stage])
		return
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		l.stats.timedOut.Add(1)
		l.log.Info("handshake timed out", "remote", nc.RemoteAddr().String(), "stage", stageNames[stage],
			"timeout", l.cfg.HandshakeTimeout)
		return
	}
	l.stats.failed[stage].Add(1)
	l.log.Info("handshake failed", "remote", nc.RemoteAddr().String(), "stage", stageNames[stage], "err", err)
}

// prepare runs the PROXY, TLS and WebSocket handshakes the listener's
// configuration calls for, under one deadline. On failure it reports the
// stage that failed.
func (l *Listener) prepare(nc net.Conn) (*conn, int, error) {
	deadline := time.Now().Add(l.cfg.HandshakeTimeout)
	nc.SetDeadline(deadline)
	c := &conn{Conn: nc, info: ConnInfo{Listener: l.cfg.Name, Transport: l.cfg.Type, RemoteAddr: nc.RemoteAddr()}}
	c.tcp, _ = nc.(*net.TCPConn)
	if l.cfg.ProxyProtocol {
		addr, err := readProxyHeader(nc)
		if err != nil {
			return nil, stageProxy, err
		}
		if addr != nil {
			c.info.RemoteAddr, c.info.Proxied = addr, true
		}
	}
	if l.tls != nil {
		tc := tls.Server(nc, l.tls)
		if err := tc.Handshake(); err != nil {
			return nil, stageTLS, fmt.Errorf("tls handshake: %w", err)
		}
		st := tc.ConnectionState()
		c.info.TLS = summarizeTLS(&st)
		c.info.CertIdentity = certIdentity(l.cfg.IdentityFromCert, &st)
		c.Conn, c.tcp = tc, nil
	}
	if l.cfg.isWebSocket() {
		proto, rest, err := upgradeWebSocket(c.Conn, l.cfg.WebSocket.Path)
		if err != nil {
			return nil, stageWebSocket, err
		}
		c.info.Subprotocol = proto
		c.Conn, c.tcp = newWSConn(c.Conn, rest), nil
	}
	nc.SetDeadline(time.Time{})
	return c, 0, nil
}
