package mqtttest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/packet"
)

// Conn is a raw MQTT client connection: it writes exactly the packets or
// bytes a test gives it and decodes what the server sends with the packet
// codec. Failures are reported on the test that dialled it.
type Conn struct {
	t       testing.TB
	nc      net.Conn
	br      *bufio.Reader
	version byte
}

// Dial opens a TCP connection to addr for the given protocol version
// (packet.Version311 or packet.Version5). It is closed when t ends.
func Dial(t testing.TB, addr string, version byte) *Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatalf("dialling %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	return &Conn{t: t, nc: nc, br: bufio.NewReader(nc), version: version}
}

// Wrap turns an established connection into a Conn (for sockets dialled
// with special options). It is closed when t ends.
func Wrap(t testing.TB, nc net.Conn, version byte) *Conn {
	t.Cleanup(func() { nc.Close() })
	return &Conn{t: t, nc: nc, br: bufio.NewReader(nc), version: version}
}

// NetConn returns the underlying connection (to close it abruptly, tune
// buffers or stop reading).
func (c *Conn) NetConn() net.Conn { return c.nc }

// Version is the protocol version used to encode and decode.
func (c *Conn) Version() byte { return c.version }

// Close closes the TCP connection without sending DISCONNECT.
func (c *Conn) Close() { c.nc.Close() }

// Send encodes p for the connection's version and writes it.
func (c *Conn) Send(p packet.Packet) {
	c.t.Helper()
	b, err := packet.Append(nil, p, c.version)
	if err != nil {
		c.t.Fatalf("encoding %T: %v", p, err)
	}
	c.SendRaw(b)
}

// SendRaw writes b as is. A write error is fatal unless the server has
// already closed the connection, which many edge-case tests expect.
func (c *Conn) SendRaw(b []byte) {
	c.t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(b); err != nil && !isClosed(err) {
		c.t.Fatalf("writing %d bytes: %v", len(b), err)
	}
}

// ReadFrame reads one whole packet (fixed header included) within timeout.
func (c *Conn) ReadFrame(timeout time.Duration) ([]byte, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	first, err := c.br.ReadByte()
	if err != nil {
		return nil, err
	}
	frame := []byte{first}
	var n, mult int
	for i := 0; ; i++ {
		if i == 4 {
			return nil, errors.New("server sent a remaining length over 4 bytes")
		}
		b, err := c.br.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("reading remaining length: %w", err)
		}
		frame = append(frame, b)
		n |= int(b&0x7f) << mult
		mult += 7
		if b&0x80 == 0 {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.br, body); err != nil {
		return nil, fmt.Errorf("reading %d-byte packet body: %w", n, err)
	}
	return append(frame, body...), nil
}

// Read reads and decodes one packet within timeout. The result owns its
// memory.
func (c *Conn) Read(timeout time.Duration) (packet.Packet, error) {
	frame, err := c.ReadFrame(timeout)
	if err != nil {
		return nil, err
	}
	p, err := packet.Decode(frame, c.version)
	if err != nil {
		return nil, fmt.Errorf("decoding server packet % x: %w", head(frame), err)
	}
	return p, nil
}

// Expect reads one packet, failing the test if none arrives in timeout.
func (c *Conn) Expect(timeout time.Duration) packet.Packet {
	c.t.Helper()
	p, err := c.Read(timeout)
	if err != nil {
		c.t.Fatalf("expected a packet from the server within %v: %v", timeout, err)
	}
	return p
}

// ExpectType reads packets until one of type T arrives (skipping none:
// any other packet first is a failure) and returns it.
func ExpectType[T packet.Packet](c *Conn, timeout time.Duration) T {
	c.t.Helper()
	p := c.Expect(timeout)
	v, ok := p.(T)
	if !ok {
		var zero T
		c.t.Fatalf("expected %T from the server, got %s", zero, Describe(p))
	}
	return v
}

// ExpectNothing fails the test if the server sends a packet or closes the
// connection within d.
func (c *Conn) ExpectNothing(d time.Duration) {
	c.t.Helper()
	p, err := c.Read(d)
	switch {
	case err == nil:
		c.t.Fatalf("expected no packet for %v, got %s", d, Describe(p))
	case isTimeout(err):
	default:
		c.t.Fatalf("expected the connection to stay open for %v: %v", d, err)
	}
}

// Closed reads until the server closes the connection or timeout passes.
// It returns the packets received before the close and whether the
// connection was closed in time.
func (c *Conn) Closed(timeout time.Duration) ([]packet.Packet, bool) {
	deadline := time.Now().Add(timeout)
	var got []packet.Packet
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return got, false
		}
		p, err := c.Read(left)
		if err == nil {
			got = append(got, p)
			continue
		}
		return got, !isTimeout(err)
	}
}

// ExpectClosed fails the test unless the server closes the connection
// within timeout. It returns the packets received before the close.
func (c *Conn) ExpectClosed(timeout time.Duration) []packet.Packet {
	c.t.Helper()
	got, closed := c.Closed(timeout)
	if !closed {
		c.t.Fatalf("expected the server to close the connection within %v; it stayed open (received %s)", timeout, DescribeAll(got))
	}
	return got
}

// Connect sends cp and returns the CONNACK, failing the test if another
// packet or nothing arrives.
func (c *Conn) Connect(cp *packet.Connect) *packet.Connack {
	c.t.Helper()
	if cp.ProtocolName == nil {
		cp.ProtocolName = []byte("MQTT")
	}
	if cp.Version == 0 {
		cp.Version = c.version
	}
	c.Send(cp)
	return ExpectType[*packet.Connack](c, 5*time.Second)
}

// MustConnect connects with a clean session and the given client id and
// fails unless the CONNACK reports success.
func (c *Conn) MustConnect(clientID string, keepAlive uint16) *packet.Connack {
	c.t.Helper()
	ack := c.Connect(&packet.Connect{ClientID: []byte(clientID), CleanStart: true, KeepAlive: keepAlive})
	if ack.ReasonCode != packet.Success {
		c.t.Fatalf("CONNACK reason 0x%02x, want success", byte(ack.ReasonCode))
	}
	return ack
}

// Describe formats a packet for failure messages.
func Describe(p packet.Packet) string {
	switch v := p.(type) {
	case nil:
		return "nothing"
	case *packet.Connack:
		return fmt.Sprintf("CONNACK{sp=%v rc=0x%02x}", v.SessionPresent, byte(v.ReasonCode))
	case *packet.Publish:
		return fmt.Sprintf("PUBLISH{topic=%q qos=%d id=%d dup=%v retain=%v payload=%q}", v.Topic, v.QoS, v.PacketID, v.Dup, v.Retain, trunc(v.Payload))
	case *packet.Ack:
		return fmt.Sprintf("%s{id=%d rc=0x%02x}", v.Kind.String(), v.PacketID, byte(v.ReasonCode))
	case *packet.Suback:
		return fmt.Sprintf("SUBACK{id=%d codes=% x}", v.PacketID, v.Codes)
	case *packet.Unsuback:
		return fmt.Sprintf("UNSUBACK{id=%d codes=% x}", v.PacketID, v.Codes)
	case *packet.Disconnect:
		return fmt.Sprintf("DISCONNECT{rc=0x%02x reason=%q}", byte(v.ReasonCode), v.Props.ReasonString)
	default:
		return p.Type().String()
	}
}

// DescribeAll formats a list of packets.
func DescribeAll(ps []packet.Packet) string {
	if len(ps) == 0 {
		return "nothing"
	}
	s := ""
	for i, p := range ps {
		if i > 0 {
			s += ", "
		}
		s += Describe(p)
	}
	return s
}

func trunc(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

func head(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
