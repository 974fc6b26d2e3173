package listener

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"io"
	"net/netip"
	"testing"
	"time"
)

// proxyV2 builds a v2 header: command (0 LOCAL, 1 PROXY), family/protocol
// byte and the address block (plus any TLVs).
func proxyV2(cmd, famProto byte, rest []byte) []byte {
	b := append([]byte{}, proxyV2Sig...)
	b = append(b, 0x20|cmd, famProto)
	b = binary.BigEndian.AppendUint16(b, uint16(len(rest)))
	return append(b, rest...)
}

// v2Addrs is the address block of src -> dst.
func v2Addrs(src, dst netip.AddrPort) []byte {
	var b []byte
	b = append(b, src.Addr().AsSlice()...)
	b = append(b, dst.Addr().AsSlice()...)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

// countingReader counts Read calls.
type countingReader struct {
	r     io.Reader
	reads int
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads++
	return c.r.Read(p)
}

func TestReadProxyHeader(t *testing.T) {
	ap := netip.MustParseAddrPort
	v4src, v4dst := ap("203.0.113.7:51234"), ap("10.0.0.1:1883")
	v6src, v6dst := ap("[2001:db8::7]:40000"), ap("[2001:db8::1]:8883")
	tlv := []byte{0x04, 0x00, 0x03, 'a', 'b', 'c'} // PP2_TYPE_NOOP
	tests := []struct {
		name    string
		header  []byte
		want    string // "" for nil (keep the socket's address)
		wantErr bool
	}{
		{"v1 tcp4", []byte("PROXY TCP4 203.0.113.7 10.0.0.1 51234 1883\r\n"), "203.0.113.7:51234", false},
		{"v1 tcp4 shortest", []byte("PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n"), "0.0.0.0:0", false},
		{"v1 tcp6", []byte("PROXY TCP6 2001:db8::7 2001:db8::1 40000 8883\r\n"), "[2001:db8::7]:40000", false},
		{"v1 tcp6 shortest", []byte("PROXY TCP6 :: :: 0 0\r\n"), "[::]:0", false},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), "", false},
		{"v1 unknown with addresses", []byte("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"), "", false},
		{"v1 longest", []byte("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
			"[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", false},
		{"v2 ipv4", proxyV2(1, 0x11, v2Addrs(v4src, v4dst)), "203.0.113.7:51234", false},
		{"v2 ipv4 with tlv", proxyV2(1, 0x11, append(v2Addrs(v4src, v4dst), tlv...)), "203.0.113.7:51234", false},
		{"v2 ipv6", proxyV2(1, 0x21, v2Addrs(v6src, v6dst)), "[2001:db8::7]:40000", false},
		{"v2 local", proxyV2(0, 0x00, nil), "", false},
		{"v2 local with addresses", proxyV2(0, 0x11, v2Addrs(v4src, v4dst)), "", false},
		{"v2 unspec", proxyV2(1, 0x00, tlv), "", false},
		{"v2 unix", proxyV2(1, 0x31, make([]byte, 216)), "", false},

		{"no header", []byte("\x10\x12\x00\x04MQTT\x04\x02\x00\x3c"), "", true},
		{"v1 lowercase", []byte("proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), "", true},
		{"v1 unknown protocol", []byte("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), "", true},
		{"v1 missing field", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), "", true},
		{"v1 extra field", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"), "", true},
		{"v1 bad address", []byte("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"), "", true},
		{"v1 family mismatch", []byte("PROXY TCP4 ::1 5.6.7.8 1 2\r\n"), "", true},
		{"v1 port out of range", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), "", true},
		{"v1 port leading zero", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"), "", true},
		{"v1 port sign", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n"), "", true},
		{"v1 no CRLF", append([]byte("PROXY UNKNOWN "), bytes.Repeat([]byte("x"), 200)...), "", true},
		{"v1 LF only", []byte("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n" + "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"), "", true},
		{"v1 truncated", []byte("PROXY TCP4 1.2.3.4"), "", true},
		{"v2 bad signature", append([]byte("\r\n\r\n\x00\r\nQUIX\n"), 0x21, 0x11, 0, 0), "", true},
		{"v2 version 1", func() []byte { b := proxyV2(1, 0x11, v2Addrs(v4src, v4dst)); b[12] = 0x11; return b }(), "", true},
		{"v2 command 2", proxyV2(2, 0x11, v2Addrs(v4src, v4dst)), "", true},
		{"v2 ipv4 short", proxyV2(1, 0x11, make([]byte, 11)), "", true},
		{"v2 ipv6 short", proxyV2(1, 0x21, make([]byte, 35)), "", true},
		{"v2 datagram", proxyV2(1, 0x12, v2Addrs(v4src, v4dst)), "", true},
		{"v2 family 4", proxyV2(1, 0x41, make([]byte, 12)), "", true},
		{"v2 truncated addresses", proxyV2(1, 0x11, v2Addrs(v4src, v4dst))[:20], "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const after = "\x10\x0cMQTT" // the client's first bytes
			r := bytes.NewReader(append(append([]byte{}, tt.header...), after...))
			addr, err := readProxyHeader(r)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("got %v, want an error", addr)
				}
				return
			}
			if err != nil {
				t.Fatalf("readProxyHeader: %v", err)
			}
			got := ""
			if addr != nil {
				got = addr.String()
			}
			if got != tt.want {
				t.Errorf("address = %q, want %q", got, tt.want)
			}
			if rest, _ := io.ReadAll(r); string(rest) != after {
				t.Errorf("bytes after the header = %q, want %q (read past the header)", rest, after)
			}
		})
	}
}

// TestReadProxyV1Reads checks that a v1 header costs a handful of reads,
// not one per byte.
func TestReadProxyV1Reads(t *testing.T) {
	cr := &countingReader{r: bytes.NewReader([]byte("PROXY TCP4 203.0.113.7 10.0.0.1 51234 1883\r\n"))}
	if _, err := readProxyHeader(cr); err != nil {
		t.Fatal(err)
	}
	if cr.reads > 20 {
		t.Errorf("%d reads for a 46-byte header", cr.reads)
	}
}

func FuzzReadProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 203.0.113.7 10.0.0.1 51234 1883\r\nMQTT"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(proxyV2(1, 0x21, v2Addrs(netip.MustParseAddrPort("[::1]:1"), netip.MustParseAddrPort("[::2]:2"))))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		addr, err := readProxyHeader(r)
		if err != nil {
			return
		}
		// A header that parses parses the same from exactly its bytes.
		n := len(data) - r.Len()
		again, err := readProxyHeader(bytes.NewReader(data[:n]))
		if err != nil || (addr == nil) != (again == nil) || (addr != nil && addr.String() != again.String()) {
			t.Fatalf("header %q: %v then %v (%v)", data[:n], addr, again, err)
		}
	})
}

func TestProxyListener(t *testing.T) {
	t.Run("tcp v1", func(t *testing.T) {
		l := listen(t, Config{ProxyProtocol: true})
		c := dial(t, l)
		io.WriteString(c, "PROXY TCP4 203.0.113.7 10.0.0.1 51234 1883\r\nhello")
		sc := accept(t, l)
		info := Info(sc)
		if got := sc.RemoteAddr().String(); got != "203.0.113.7:51234" || info.RemoteAddr.String() != got || !info.Proxied {
			t.Errorf("RemoteAddr = %s, Info = %+v", got, info)
		}
		tc, ok := TCPConn(sc)
		if !ok || tc.RemoteAddr().String() != c.LocalAddr().String() {
			t.Fatalf("TCPConn = %v, %v: want the raw socket", tc, ok)
		}
		// The bytes after the header are still in the socket, not in a
		// user-space buffer: the broker may wait on the fd.
		buf := make([]byte, 5)
		if _, err := io.ReadFull(tc, buf); err != nil || string(buf) != "hello" {
			t.Errorf("read %q, %v from the socket after the header", buf, err)
		}
	})
	t.Run("tcp v2 local keeps the socket address", func(t *testing.T) {
		l := listen(t, Config{ProxyProtocol: true})
		c := dial(t, l)
		c.Write(proxyV2(0, 0, nil))
		sc := accept(t, l)
		if info := Info(sc); info.Proxied || info.RemoteAddr.String() != c.LocalAddr().String() {
			t.Errorf("Info = %+v, want the socket's peer %s", info, c.LocalAddr())
		}
	})
	t.Run("tls v2", func(t *testing.T) {
		ca := newTestCA(t, "ca")
		l := listen(t, Config{Type: TLS, ProxyProtocol: true, TLS: serverFiles(t, ca, "server")})
		c := dial(t, l)
		src := netip.MustParseAddrPort("[2001:db8::7]:40000")
		c.Write(proxyV2(1, 0x21, v2Addrs(src, netip.MustParseAddrPort("[2001:db8::1]:8883"))))
		tc := tls.Client(c, &tls.Config{RootCAs: ca.pool, ServerName: "localhost"})
		go tc.Handshake()
		sc := accept(t, l)
		info := Info(sc)
		if info.RemoteAddr.String() != src.String() || info.TLS == nil || info.Transport != TLS {
			t.Errorf("Info = %+v", info)
		}
		if _, ok := TCPConn(sc); ok {
			t.Error("TCPConn reports a raw socket for a TLS connection")
		}
	})
	malformed := []struct {
		name string
		send []byte
	}{
		{"no header", []byte("\x10\x12\x00\x04MQTT\x04\x02\x00\x3c\x00\x06client")},
		{"bad v1", []byte("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n")},
		{"bad v2 version", []byte("\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c")},
	}
	for _, m := range malformed {
		t.Run("malformed "+m.name, func(t *testing.T) {
			l := listen(t, Config{ProxyProtocol: true})
			c := dial(t, l)
			c.Write(m.send)
			expectClosed(t, c, 5*time.Second)
			waitFor(t, "the failure to be counted", func() bool { return l.Stats().Failed["proxy"] == 1 })
			if s := l.Stats(); s.Accepted != 0 || s.TimedOut != 0 {
				t.Errorf("stats = %+v", s)
			}
		})
	}
	t.Run("silent client times out", func(t *testing.T) {
		l := listen(t, Config{ProxyProtocol: true, HandshakeTimeout: 100 * time.Millisecond})
		c := dial(t, l)
		c.Write([]byte("PROXY TCP4 ")) // and nothing more
		start := time.Now()
		expectClosed(t, c, 5*time.Second)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("closed after %v, deadline 100ms", d)
		}
		waitFor(t, "the timeout to be counted", func() bool { return l.Stats().TimedOut == 1 })
	})
}
