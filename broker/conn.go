package broker

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/sluicehq/sluice/broker/auth"
	"github.com/sluicehq/sluice/broker/listener"
	"github.com/sluicehq/sluice/broker/packet"
)

// conn is one client network connection. Its reader goroutine (serve) owns
// the socket's read side and the connection's lifetime; a writer goroutine
// exists only while there is something to write (see outbound.go).
type conn struct {
	s   *Server
	nc  net.Conn
	raw syscall.RawConn // nil when nc is not a *net.TCPConn
	fd  int32           // socket fd for the idle poller, -1 if unknown
	r   *packet.Reader
	lis *boundListener

	addrKey   string       // connection limits: the client's host
	pubBucket tokenBucket  // publish_rate, reader goroutine only
	fullSince atomic.Int64 // unix ns since messages for it are dropped (full), 0: not
	rd        countingReader

	id uint64 // connection id for logs and the admin API, set by newConn

	// For the admin API (inspect.go): set while handling CONNECT.
	connectedAt time.Time
	cleanStart  bool

	// Set while handling CONNECT, read-only afterwards.
	version   byte
	clientID  string
	username  string        // Message.Username: verified, else as claimed
	ident     auth.Identity // what ACL checks see
	sess      *session
	keepAlive time.Duration // 0: none
	maxOut    uint32        // client's Maximum Packet Size, 0: unlimited
	window    int           // outbound QoS 1/2 window
	aliasMax  uint16        // client's Topic Alias Maximum
	noProblem bool          // v5 Request Problem Information = 0
	will      *Message      // nil: none, cleared on normal DISCONNECT
	willDelay uint32

	inAliases []string // inbound topic aliases, reader goroutine only

	idleUntil  int64 // parked: keep alive deadline (unix ns), 0 = none
	epollAdded bool  // fd registered with the idle poller

	kicked atomic.Bool          // closed by the server (takeover, shutdown, error)
	paceOn atomic.Pointer[conn] // a subscriber to wait for before reading on

	inMu sync.Mutex // guards in
	in   *inQueue   // allocated on the first PUBLISH handed to a consumer

	durMu   sync.Mutex // guards durAcks; before storeState.mu and outMu
	durAcks []durAck   // acks waiting for a store flush, in order

	outMu sync.Mutex // guards out
	out   outState
	wwg   sync.WaitGroup // the writer goroutine

	done sync.WaitGroup // done when the connection has fully finished
}

// countingReader counts bytes read from the socket.
type countingReader struct {
	nc net.Conn
	st *stats
}

// Read implements io.Reader.
func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.nc.Read(p)
	r.st.bytesIn.Add(uint64(n))
	return n, err
}

func newConn(s *Server, nc net.Conn, l *boundListener) *conn {
	c := &conn{s: s, nc: nc, lis: l, fd: -1, id: s.nextID.Add(1)}
	c.done.Add(1)
	c.rd = countingReader{nc: nc, st: &s.stats}
	c.r = packet.NewReader(&c.rd, s.cfg.MaxPacketSize)
	if tc, ok := listener.TCPConn(nc); ok {
		if raw, err := tc.SyscallConn(); err == nil {
			c.raw = raw
			raw.Control(func(fd uintptr) { c.fd = int32(fd) })
		}
	}
	return c
}

// Errors that end a connection; codeError carries the v5 DISCONNECT
// reason the server sends before closing.
var (
	errClientDisconnect = errors.New("client disconnected")
	errKicked           = errors.New("closed by server")
	errDraining         = errors.New("server shutting down")
	errRefused          = errors.New("connection refused in CONNACK")
)

// codeError is a protocol failure: the server sends DISCONNECT with Code
// (v5) and closes.
type codeError struct {
	Code packet.ReasonCode
	Msg  string
}

// Error implements error.
func (e *codeError) Error() string { return e.Msg }

func protoErr(code packet.ReasonCode, msg string) error { return &codeError{Code: code, Msg: msg} }

// idleHandoff is how long a connection's goroutine waits for data before
// it returns its read buffer, hands the connection to a fresh goroutine
// (whose stack is small, unlike one that has handled packets) and exits.
const idleHandoff = time.Second

// loop's signals that the connection went idle: parked with the idle
// poller (no goroutine), or to be waited for by a fresh goroutine.
var (
	errParked = errors.New("connection parked")
	errIdle   = errors.New("connection idle")
)

// serve runs the connection from CONNECT on. The connection outlives the
// goroutine when it goes idle (see idle); finish marks its end.
func (c *conn) serve() {
	err := c.handshake()
	if c.sess == nil {
		// Refused or failed before a session was attached: flush whatever
		// was queued (a CONNACK) and close.
		c.closeOut(err != nil && !isIOError(err))
		c.finish()
		return
	}
	c.s.stats.connections.Add(1)
	c.run()
}

// run handles packets until the connection ends or goes idle.
func (c *conn) run() {
	err := c.loop()
	switch err {
	case errParked:
		return // another goroutine may own c already
	case errIdle:
		go c.idle()
		return
	}
	c.teardown(err)
	c.s.stats.connections.Add(-1)
	c.finish()
}

// idle waits, holding no buffer, until the socket is readable, then runs
// the connection on this goroutine.
func (c *conn) idle() {
	err := c.waitReadable()
	c.r = packet.NewReader(&c.rd, c.s.cfg.MaxPacketSize)
	c.r.SetVersion(c.version)
	if err != nil {
		c.teardown(c.readErr(err))
		c.s.stats.connections.Add(-1)
		c.finish()
		return
	}
	c.run()
}

// resume runs a connection the idle poller woke up.
func (c *conn) resume() {
	c.r = packet.NewReader(&c.rd, c.s.cfg.MaxPacketSize)
	c.r.SetVersion(c.version)
	if c.idleUntil != 0 && time.Now().UnixNano() >= c.idleUntil && c.stopping() == nil {
		c.teardown(protoErr(packet.KeepAliveTimeout, "keep alive timeout"))
		c.s.stats.connections.Add(-1)
		c.finish()
		return
	}
	c.run()
}

// finish releases the connection's hold on the server.
func (c *conn) finish() {
	c.s.release(c)
	c.s.removeConn(c)
	c.done.Done()
	c.s.wg.Done()
}

// loop reads and handles packets until the connection ends (or goes idle:
// errIdle).
func (c *conn) loop() error {
	rm := int(c.s.cfg.ReceiveMaximum)
	var kaDeadline time.Time
	// blocked: a connection without a raw socket (TLS, WebSocket) went
	// idle: it released its read buffer and now blocks in Read until data
	// or its keep alive deadline, without waking every idleHandoff.
	blocked := false
	for {
		if err := c.waitQuota(rm); err != nil {
			return err
		}
		if c.s.consumer != nil {
			if sub := c.paceOn.Swap(nil); sub != nil {
				sub.waitRoom()
			}
		}
		if c.r.Buffered() == 0 && !blocked {
			now := time.Now()
			wait := idleHandoff
			if c.keepAlive > 0 {
				ka := c.keepAlive * 3 / 2
				kaDeadline = now.Add(ka)
				wait = min(wait, ka)
			}
			c.nc.SetReadDeadline(now.Add(wait))
			// Checked after setting the deadline: interrupt sets the flag
			// before its own deadline, so one of the two is seen.
			if err := c.stopping(); err != nil {
				return err
			}
		}
		blocked = false
		p, err := c.r.ReadPacket()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) && c.stopping() == nil &&
				(c.keepAlive == 0 || time.Now().Before(kaDeadline)) {
				if c.r.Buffered() == 0 {
					if c.raw != nil {
						return c.goIdle(kaDeadline)
					}
					// TLS and WebSocket streams resume after a deadline:
					// stay on this goroutine, holding no read buffer.
					c.r.Release()
					blocked = true
				}
				// The idle hand-over deadline passed in the middle of a
				// packet, or a non-raw connection went idle: keep reading
				// until the keep alive deadline (zero: none).
				c.nc.SetReadDeadline(kaDeadline)
				if err := c.stopping(); err != nil {
					return err
				}
				continue
			}
			return c.readErr(err)
		}
		if err := c.handle(p); err != nil {
			return err
		}
	}
}

// goIdle prepares the hand-over to idle: no read buffer, the keep alive
// deadline (if any) still armed.
func (c *conn) goIdle(kaDeadline time.Time) error {
	// Idle connections hold no reader (idle makes a new one) and keep
	// only the keep alive deadline (zero when there is none).
	c.r.Release()
	c.r = nil
	if c.s.poller.park(c, kaDeadline) {
		return errParked
	}
	c.nc.SetReadDeadline(kaDeadline)
	if err := c.stopping(); err != nil {
		return err
	}
	return errIdle
}

// stopping reports whether the server closes the connection.
func (c *conn) stopping() error {
	if c.kicked.Load() {
		return errKicked
	}
	if c.s.draining.Load() {
		return errDraining
	}
	return nil
}

// readErr classifies an error from reading.
func (c *conn) readErr(err error) error {
	switch {
	case c.kicked.Load():
		return errKicked
	case c.s.draining.Load():
		return errDraining
	case errors.Is(err, os.ErrDeadlineExceeded):
		return protoErr(packet.KeepAliveTimeout, "keep alive timeout")
	}
	var pe *packet.Error
	if errors.As(err, &pe) {
		return &codeError{Code: pe.Code, Msg: pe.Error()}
	}
	return err
}

// waitReadable blocks until the socket is readable without holding a read
// buffer: it peeks one byte into a stack array. Idle connections therefore
// hold no buffer. It returns at once for non-TCP connections.
func (c *conn) waitReadable() error {
	if c.raw == nil {
		return nil
	}
	return c.raw.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		return errno != syscall.EAGAIN && errno != syscall.EINTR
	})
}

// handle dispatches one packet read after CONNECT.
func (c *conn) handle(p packet.Packet) error {
	switch p := p.(type) {
	case *packet.Publish:
		return c.handlePublish(p)
	case *packet.Ack:
		return c.handleAck(p)
	case *packet.Subscribe:
		return c.handleSubscribe(p)
	case *packet.Unsubscribe:
		return c.handleUnsubscribe(p)
	case *packet.Pingreq:
		c.sendRaw(pingresp[:])
		return nil
	case *packet.Disconnect:
		return c.handleDisconnect(p)
	case *packet.Connect:
		return protoErr(packet.ProtocolError, "second CONNECT")
	case *packet.Auth:
		return protoErr(packet.ProtocolError, "AUTH without an authentication method")
	default:
		return protoErr(packet.ProtocolError, "unexpected packet type from client")
	}
}

var pingresp = [2]byte{byte(packet.PINGRESP) << 4, 0}

// handleDisconnect processes a client's DISCONNECT.
func (c *conn) handleDisconnect(p *packet.Disconnect) error {
	if c.version == packet.Version5 {
		if p.Props.Has(packet.PropSessionExpiry) {
			ss := c.sess
			ss.mu.Lock()
			zero := ss.connectExpiry == 0
			if !zero {
				ss.expiry = c.s.capExpiry(p.Props.SessionExpiry)
			}
			ss.mu.Unlock()
			c.s.markDirty(ss)
			if zero && p.Props.SessionExpiry != 0 {
				return protoErr(packet.ProtocolError, "session expiry set on DISCONNECT after 0 on CONNECT")
			}
		}
		if p.ReasonCode == packet.DisconnectWithWill {
			return errClientDisconnect
		}
	}
	c.will = nil
	return errClientDisconnect
}

// interrupt makes the reader goroutine notice shutdown: it wakes a read
// blocked on the socket and a wait for consumer acks.
func (c *conn) interrupt() {
	c.nc.SetReadDeadline(time.Now())
	c.s.poller.wake(c)
	c.inMu.Lock()
	if c.in != nil {
		c.in.wakeLocked()
	}
	c.inMu.Unlock()
}

// kick closes the connection from the server side: v5 clients get a
// DISCONNECT with code (when code is not 0), then the socket is closed once
// queued data is written. The reader goroutine then tears down.
func (c *conn) kick(code packet.ReasonCode) {
	if c.kicked.Swap(true) {
		return
	}
	if code != 0 && c.version == packet.Version5 {
		c.sendDisconnect(code)
	}
	c.outMu.Lock()
	c.out.closed = true
	c.out.closeAfter = true
	c.startWriterLocked()
	c.outMu.Unlock()
	c.interrupt()
}

// teardown ends a connection whose session is attached: it tells the
// client why (v5), flushes, closes, and detaches the session.
func (c *conn) teardown(err error) {
	var code packet.ReasonCode
	var ce *codeError
	sendWill := true
	switch {
	case errors.Is(err, errKicked):
	case errors.Is(err, errClientDisconnect):
		sendWill = c.will != nil
	case errors.Is(err, errDraining):
		c.drainAcks()
		code = packet.ServerShuttingDown
	case errors.As(err, &ce):
		code = ce.Code
	}
	c.s.log.Debug("client disconnected", "conn_id", c.id, "client_id", c.clientID, "reason", err)
	if code != 0 && c.version == packet.Version5 {
		c.sendDisconnect(code)
	}
	c.closeOut(!isIOError(err))
	if !sendWill {
		c.will = nil
	}
	c.s.detach(c)
}

// drainAcks waits, during shutdown, until every message handed to the
// consumer has been acked (so its PUBACK can still be sent) or the
// shutdown deadline passes.
func (c *conn) drainAcks() {
	for {
		c.inMu.Lock()
		if c.in == nil || c.in.n == 0 {
			c.inMu.Unlock()
			c.drainDurableAcks()
			return
		}
		ch := c.in.waitCh()
		c.inMu.Unlock()
		select {
		case <-ch:
		case <-c.s.hardCh:
			return
		}
	}
}

// closeOut stops accepting outbound data, flushes what is queued when flush
// is set, closes the socket and waits for the writer goroutine.
func (c *conn) closeOut(flush bool) {
	c.outMu.Lock()
	c.out.closed = true
	if !flush {
		c.out.dead = true
	}
	c.out.closeAfter = true
	c.startWriterLocked()
	c.outMu.Unlock()
	if !flush {
		c.nc.Close()
	}
	c.wwg.Wait()
	c.nc.Close()
	if c.r != nil {
		c.r.Release()
	}
}

// isIOError reports whether err is a transport failure (the peer is gone
// or the socket broke), after which flushing is pointless. Errors the
// broker itself classified are not.
func isIOError(err error) bool {
	if err == nil {
		return false
	}
	var ce *codeError
	var pe *packet.Error
	return !errors.As(err, &ce) && !errors.As(err, &pe) && !errors.Is(err, errClientDisconnect) &&
		!errors.Is(err, errKicked) && !errors.Is(err, errDraining) && !errors.Is(err, errRefused)
}
