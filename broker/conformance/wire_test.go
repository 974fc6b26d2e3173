package conformance

import (
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/packet"
	"github.com/sluicehq/sluice/internal/mqtttest"
)

// Hand-built packets for the unhappy paths. They do not go through the
// packet codec on purpose: a codec refuses to encode most of them, and a
// second, independent encoder keeps the broker's codec honest.

// frame returns a packet with first byte b0 and the given body.
func frame(b0 byte, body ...[]byte) []byte {
	var n int
	for _, p := range body {
		n += len(p)
	}
	out := append([]byte{b0}, vbi(n)...)
	for _, p := range body {
		out = append(out, p...)
	}
	return out
}

// vbi encodes a Variable Byte Integer.
func vbi(n int) []byte {
	var out []byte
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		out = append(out, b)
		if n == 0 {
			return out
		}
	}
}

// str encodes a length-prefixed UTF-8 string (or binary data).
func str(s string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...)
}

func u16b(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// cat concatenates byte slices.
func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Connect flag bits.
const (
	flagReserved   = 0x01
	flagClean      = 0x02
	flagWill       = 0x04
	flagWillQoS1   = 0x08
	flagWillQoS2   = 0x10
	flagWillRetain = 0x20
	flagPassword   = 0x40
	flagUsername   = 0x80
)

// connectBytes builds a CONNECT. For level 5 an empty property block is
// added (and an empty will property block when the will flag is set);
// payload holds the already-encoded payload fields after the client id.
func connectBytes(name string, level, flags byte, keepAlive uint16, clientID string, payload ...[]byte) []byte {
	vh := cat(str(name), []byte{level, flags}, u16b(keepAlive))
	if level == 5 {
		vh = append(vh, 0)
	}
	pl := str(clientID)
	if level == 5 && flags&flagWill != 0 {
		pl = append(pl, 0)
	}
	return frame(0x10, vh, pl, cat(payload...))
}

// v3Connect is a valid 3.1.1 CONNECT with a clean session.
func v3Connect(clientID string) []byte {
	return connectBytes("MQTT", 4, flagClean, 30, clientID)
}

// v5Connect is a valid 5.0 CONNECT with clean start.
func v5Connect(clientID string) []byte {
	return connectBytes("MQTT", 5, flagClean, 30, clientID)
}

// dialRaw connects a raw client with a clean session and checks the
// CONNACK.
func dialRaw(t *testing.T, s *server, version byte, clientID string) *mqtttest.Conn {
	t.Helper()
	c := mqtttest.Dial(t, s.addr, version)
	c.MustConnect(clientID, 30)
	return c
}

// expectRefused asserts the server closes the connection and sends
// nothing but, optionally, one DISCONNECT (v5) whose reason code is one of
// codes (any code >= 0x80 when codes is empty).
func expectRefused(t *testing.T, c *mqtttest.Conn, codes ...packet.ReasonCode) {
	t.Helper()
	got := c.ExpectClosed(wait)
	for _, p := range got {
		d, ok := p.(*packet.Disconnect)
		if !ok || c.Version() != packet.Version5 {
			t.Fatalf("expected only the connection to close (v5: optionally after DISCONNECT), got %s", mqtttest.DescribeAll(got))
		}
		if !codeIn(d.ReasonCode, codes) {
			t.Fatalf("server DISCONNECT reason 0x%02x, want one of % x", byte(d.ReasonCode), codes)
		}
	}
}

// expectDisconnect asserts a v5 server sends DISCONNECT with one of codes
// and then closes the connection.
func expectDisconnect(t *testing.T, c *mqtttest.Conn, codes ...packet.ReasonCode) {
	t.Helper()
	got := c.ExpectClosed(wait)
	if len(got) != 1 {
		t.Fatalf("expected exactly one DISCONNECT (reason % x) before close, got %s", codes, mqtttest.DescribeAll(got))
	}
	d, ok := got[0].(*packet.Disconnect)
	if !ok {
		t.Fatalf("expected DISCONNECT (reason % x) before close, got %s", codes, mqtttest.Describe(got[0]))
	}
	if !codeIn(d.ReasonCode, codes) {
		t.Fatalf("server DISCONNECT reason 0x%02x, want one of % x", byte(d.ReasonCode), codes)
	}
}

func codeIn(rc packet.ReasonCode, codes []packet.ReasonCode) bool {
	if len(codes) == 0 {
		return rc >= 0x80
	}
	for _, c := range codes {
		if rc == c {
			return true
		}
	}
	return false
}

// expectConnackCode reads the raw CONNACK frame and checks its exact
// bytes, then expects the close.
func expectConnackFrame(t *testing.T, c *mqtttest.Conn, want ...[]byte) {
	t.Helper()
	f, err := c.ReadFrame(wait)
	if err != nil {
		t.Fatalf("expected a CONNACK: %v", err)
	}
	ok := false
	for _, w := range want {
		ok = ok || string(f) == string(w)
	}
	if !ok {
		t.Fatalf("CONNACK bytes % x, want one of % x", f, want)
	}
	c.ExpectClosed(wait)
}

// isTimeoutErr reports whether err is a read deadline expiring.
func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// sleep is time.Sleep, named for what the tests use it for: letting a
// broker-side timer run out.
func sleep(d time.Duration) { time.Sleep(d) }
