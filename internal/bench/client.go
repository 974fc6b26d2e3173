package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/broker/packet"
)

// client is one MQTT connection of the load generator. One goroutine
// (readLoop) reads from it; writes go through w under mu, from the
// publisher goroutine, the read loop (acks) and the pinger.
type client struct {
	index   int
	version byte
	nc      net.Conn
	r       *packet.Reader

	mu      sync.Mutex // guards w and ping
	w       *bufio.Writer
	closing atomic.Bool // set before we close nc: read errors are then expected
	dead    atomic.Bool // the connection failed; stop using it

	receiveMax int           // broker's receive maximum (v5), else 65535
	keepAlive  time.Duration // as asked, or the v5 broker's Server Keep Alive
	subacked   chan byte     // first SUBACK code, buffered 1
	kick       chan struct{} // buffered 1: the publisher waits for acks, read now
	errs       *errorLog     // shared
	pub        *publisher    // nil unless publishing
	sub        *tracker      // nil unless subscribing
	subQoS     byte          // QoS of the subscription: above 0, the broker waits for our acks
	dropped    *atomic.Int64 // shared count of connections lost while running
	replyAck   packet.Ack    // reused by readLoop for every ack it sends
}

// dialOptions are the settings every connection of a run shares.
type dialOptions struct {
	addr      string
	version   byte
	username  string
	password  string
	keepAlive time.Duration
	timeout   time.Duration
	bufSize   int
	maxPacket uint32
	coalesce  time.Duration
}

// dial opens a TCP connection and performs the MQTT handshake. The caller
// starts readLoop afterwards.
func dial(ctx context.Context, o *dialOptions, clientID string, index int) (*client, error) {
	d := net.Dialer{Timeout: o.timeout}
	nc, err := d.DialContext(ctx, "tcp", o.addr)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", o.addr, err)
	}
	c := &client{
		index:      index,
		version:    o.version,
		nc:         nc,
		w:          bufio.NewWriterSize(nc, o.bufSize),
		receiveMax: 65535,
		subacked:   make(chan byte, 1),
		kick:       make(chan struct{}, 1),
	}
	c.r = packet.NewReader(&coalescingReader{c: c, delay: o.coalesce}, o.maxPacket)
	c.r.SetVersion(o.version)
	if err := c.handshake(o, clientID); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *client) handshake(o *dialOptions, clientID string) error {
	if err := c.nc.SetDeadline(time.Now().Add(o.timeout)); err != nil {
		return fmt.Errorf("setting handshake deadline: %w", err)
	}
	cp := &packet.Connect{
		ProtocolName: []byte("MQTT"),
		Version:      o.version,
		CleanStart:   true,
		KeepAlive:    uint16(o.keepAlive / time.Second),
		ClientID:     []byte(clientID),
	}
	if o.username != "" {
		cp.UsernameFlag, cp.Username = true, []byte(o.username)
	}
	if o.password != "" {
		cp.PasswordFlag, cp.Password = true, []byte(o.password)
	}
	if err := c.write(cp); err != nil {
		return fmt.Errorf("sending CONNECT: %w", err)
	}
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("sending CONNECT: %w", err)
	}
	pk, err := c.r.ReadPacket()
	if err != nil {
		return fmt.Errorf("reading CONNACK: %w", err)
	}
	ack, ok := pk.(*packet.Connack)
	if !ok {
		return fmt.Errorf("reading CONNACK: got packet type %d", pk.Type())
	}
	if ack.ReasonCode != packet.Success {
		return fmt.Errorf("broker refused the connection: code 0x%02x", byte(ack.ReasonCode))
	}
	if c.version == packet.Version5 && ack.Props.Has(packet.PropReceiveMaximum) && ack.Props.ReceiveMaximum > 0 {
		c.receiveMax = int(ack.Props.ReceiveMaximum)
	}
	c.keepAlive = o.keepAlive
	if c.version == packet.Version5 && ack.Props.Has(packet.PropServerKeepAlive) {
		c.keepAlive = time.Duration(ack.Props.ServerKeepAlive) * time.Second
	}
	if err := c.nc.SetDeadline(time.Time{}); err != nil {
		return fmt.Errorf("clearing handshake deadline: %w", err)
	}
	return nil
}

// write encodes a small packet (an ack, a ping) into w. The caller holds
// mu or owns c exclusively.
func (c *client) write(p packet.Packet) error { return c.writeSized(p, 64) }

// writeSized encodes p, whose encoded size is at most size, into w. It
// encodes in place in the writer's free space (flushing first if p would
// not fit), so a packet costs no copy and no allocation as long as the
// writer is at least size bytes.
func (c *client) writeSized(p packet.Packet, size int) error {
	if c.w.Available() < size {
		if err := c.w.Flush(); err != nil {
			return err
		}
	}
	b, err := packet.Append(c.w.AvailableBuffer(), p, c.version)
	if err != nil {
		return fmt.Errorf("encoding packet type %d: %w", p.Type(), err)
	}
	_, err = c.w.Write(b)
	return err
}

// subscribe sends SUBSCRIBE and waits for its SUBACK, which readLoop
// (already running) reports on subacked.
func (c *client) subscribe(ctx context.Context, filter string, qos byte, timeout time.Duration) error {
	sp := &packet.Subscribe{PacketID: 1, Subs: []packet.Subscription{{Filter: []byte(filter), QoS: qos}}}
	c.mu.Lock()
	err := c.write(sp)
	if err == nil {
		err = c.w.Flush()
	}
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("sending SUBSCRIBE: %w", err)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case code := <-c.subacked:
		if code >= 0x80 {
			return fmt.Errorf("subscribing to %q: broker refused with code 0x%02x", filter, code)
		}
		return nil
	case <-t.C:
		return fmt.Errorf("subscribing to %q: no SUBACK within %v", filter, timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readLoop reads packets until the connection closes. It handles acks for
// the publisher and messages for the subscriber, and answers the broker's
// QoS 1/2 flows, flushing its answers once nothing more is buffered.
func (c *client) readLoop() {
	pending := false
	for {
		pk, err := c.r.ReadPacket()
		if err != nil {
			c.fail(fmt.Errorf("reading from broker: %w", err))
			return
		}
		var reply packet.Packet
		switch p := pk.(type) {
		case *packet.Publish:
			reply = c.onPublish(p)
		case *packet.Ack:
			reply = c.onAck(p)
		case *packet.Suback:
			code := byte(0x80)
			if len(p.Codes) > 0 {
				code = byte(p.Codes[0])
			}
			select {
			case c.subacked <- code:
			default:
			}
		case *packet.Pingresp, *packet.Unsuback:
		case *packet.Disconnect:
			c.fail(fmt.Errorf("broker sent DISCONNECT with reason 0x%02x", byte(p.ReasonCode)))
			return
		default:
			c.fail(fmt.Errorf("unexpected packet type %d from broker", pk.Type()))
			return
		}
		if reply != nil {
			c.mu.Lock()
			err = c.write(reply)
			c.mu.Unlock()
			if err != nil {
				c.fail(fmt.Errorf("writing ack: %w", err))
				return
			}
			pending = true
		}
		if pending && c.r.Buffered() == 0 {
			c.mu.Lock()
			err = c.w.Flush()
			c.mu.Unlock()
			if err != nil {
				c.fail(fmt.Errorf("flushing acks: %w", err))
				return
			}
			pending = false
		}
	}
}

// onPublish accounts a delivered message and returns the ack to send.
func (c *client) onPublish(p *packet.Publish) packet.Packet {
	if c.sub != nil {
		c.sub.record(p.Payload, time.Now().UnixNano())
	}
	switch p.QoS {
	case 1:
		return c.ackPacket(packet.PUBACK, p.PacketID)
	case 2:
		return c.ackPacket(packet.PUBREC, p.PacketID)
	}
	return nil
}

// onAck handles PUBACK/PUBREC/PUBCOMP for our publishes and PUBREL for
// QoS 2 deliveries, returning the next packet of the flow if any.
func (c *client) onAck(a *packet.Ack) packet.Packet {
	switch a.Kind {
	case packet.PUBREL:
		return c.ackPacket(packet.PUBCOMP, a.PacketID)
	case packet.PUBACK, packet.PUBCOMP:
		if c.pub != nil {
			if err := c.pub.complete(a.PacketID, a.ReasonCode); err != nil {
				c.errs.add(err)
			}
		}
	case packet.PUBREC:
		if a.ReasonCode >= 0x80 {
			if c.pub != nil {
				if err := c.pub.complete(a.PacketID, a.ReasonCode); err != nil {
					c.errs.add(err)
				}
			}
			return nil
		}
		return c.ackPacket(packet.PUBREL, a.PacketID)
	}
	return nil
}

// ackPacket fills the client's reusable ack. The read loop is its only
// user, and writes it before building the next.
func (c *client) ackPacket(kind packet.Type, id uint16) packet.Packet {
	a := &c.replyAck
	a.Kind, a.PacketID, a.ReasonCode = kind, id, packet.Success
	return a
}

// fail records a connection failure unless we are closing it ourselves.
func (c *client) fail(err error) {
	if c.closing.Load() {
		return
	}
	if c.dead.Swap(true) {
		return
	}
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("broker closed the connection: %w", err)
	}
	c.errs.add(fmt.Errorf("client %d: %w", c.index, err))
	if c.dropped != nil {
		c.dropped.Add(1)
	}
	if c.pub != nil {
		c.pub.wake()
	}
	c.nc.Close()
}

// ping sends PINGREQ unless a writer holds the connection (busy
// connections need no keep alive).
func (c *client) ping() {
	if c.dead.Load() || !c.mu.TryLock() {
		return
	}
	defer c.mu.Unlock()
	if err := c.write(&packet.Pingreq{}); err == nil {
		_ = c.w.Flush()
	}
}

// close sends DISCONNECT and closes the connection; readLoop then ends.
func (c *client) close() {
	if c.closing.Swap(true) {
		return
	}
	if !c.dead.Load() {
		_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		c.mu.Lock()
		if err := c.write(&packet.Disconnect{}); err == nil {
			_ = c.w.Flush()
		}
		c.mu.Unlock()
	}
	c.nc.Close()
}

// coalescingReader batches reads on a busy connection. A broker that
// writes each packet with its own send() makes a fast reader wake up and
// read once per message, which on a small machine costs the load
// generator more CPU than the broker spends on the message. When reads
// come back small and more often than every delay, the next read waits
// delay first, so that it finds a batch. A full read never waits, so
// throughput is not capped; a quiet connection never waits, so latency
// at low rates is untouched; and a connection whose peer may be waiting
// for what this read brings never waits (see mayDelayReads). At high
// rates latency grows by at most delay (about a millisecond: the
// runtime's timer granularity when idle).
type coalescingReader struct {
	c     *client
	delay time.Duration
	last  time.Time // when the previous read returned
	wait  bool      // the previous read was small and soon after the one before
	timer *time.Timer
}

func (r *coalescingReader) Read(b []byte) (int, error) {
	if r.wait && r.c.mayDelayReads() {
		if r.timer == nil {
			r.timer = time.NewTimer(r.delay)
		} else {
			r.timer.Reset(r.delay)
		}
		select {
		case <-r.timer.C:
		case <-r.c.kick:
			r.timer.Stop()
		}
	}
	n, err := r.c.nc.Read(b)
	if r.delay > 0 {
		now := time.Now()
		r.wait = n > 0 && n < len(b)/2 && now.Sub(r.last) < r.delay
		r.last = now
	}
	return n, err
}

// mayDelayReads reports whether delaying the next read slows nobody
// down. A QoS 1/2 subscription's deliveries come in the broker's window,
// which our acks reopen: each delayed read would add a delay per window.
// A publisher whose window is full waits for the acks this read brings;
// one that runs out of window while the read is delayed cuts the delay
// short through kick.
func (c *client) mayDelayReads() bool {
	if c.sub != nil && c.subQoS > 0 {
		return false
	}
	if p := c.pub; p != nil && p.qos > 0 {
		return p.inflight.Load() < p.window
	}
	return true
}

// errorLog counts errors across all clients and keeps the first few.
type errorLog struct {
	mu      sync.Mutex
	n       int64
	samples []string
}

const maxErrorSamples = 5

func (l *errorLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if len(l.samples) < maxErrorSamples {
		l.samples = append(l.samples, err.Error())
	}
}

func (l *errorLog) count() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func (l *errorLog) snapshot() (int64, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n, append([]string(nil), l.samples...)
}
