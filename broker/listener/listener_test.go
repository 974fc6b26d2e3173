package listener

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
	"time"
)

func TestTCP(t *testing.T) {
	l := listen(t, Config{Name: "plain"})
	c := dial(t, l)
	sc := accept(t, l)
	info := Info(sc)
	if info.Listener != "plain" || info.Transport != TCP || info.RemoteAddr.String() != c.LocalAddr().String() ||
		info.Proxied || info.TLS != nil || info.CertIdentity != "" || info.Subprotocol != "" {
		t.Errorf("Info = %+v", info)
	}
	if tc, ok := TCPConn(sc); !ok || tc.LocalAddr().String() != l.Addr().String() {
		t.Errorf("TCPConn = %v, %v", tc, ok)
	}
	c.Write([]byte("abc"))
	buf := make([]byte, 3)
	if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "abc" {
		t.Errorf("read %q, %v", buf, err)
	}
	if s := l.Stats(); s.Accepted != 1 {
		t.Errorf("stats = %+v", s)
	}
}

func TestInfoForeignConn(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if info := Info(a); info.RemoteAddr != a.RemoteAddr() || info.Listener != "" || info.TLS != nil {
		t.Errorf("Info(pipe) = %+v", info)
	}
	if _, ok := TCPConn(a); ok {
		t.Error("TCPConn(pipe) reports a socket")
	}
}

// TestSlowloris opens connections that never finish their handshake on
// a tls, ws and proxy listener: a good client is still accepted at once,
// and the silent ones are closed at the deadline, counted, and leave no
// goroutine behind.
func TestSlowloris(t *testing.T) {
	ca := newTestCA(t, "ca")
	const timeout = time.Second
	tests := []struct {
		name  string
		cfg   Config
		stage string
		good  func(t *testing.T, addr string) net.Conn
	}{
		{"tls", Config{Type: TLS, TLS: serverFiles(t, ca, "server")}, "tls", func(t *testing.T, addr string) net.Conn {
			c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.pool, ServerName: "localhost"})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}},
		{"ws", Config{Type: WebSocket}, "websocket", func(t *testing.T, addr string) net.Conn {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, upgradeRequest("GET", "/mqtt"))
			return c
		}},
		{"proxy", Config{ProxyProtocol: true}, "proxy", func(t *testing.T, addr string) net.Conn {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, "PROXY UNKNOWN\r\n")
			return c
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := runtime.NumGoroutine()
			tt.cfg.Name, tt.cfg.Address, tt.cfg.HandshakeTimeout = "slow", "127.0.0.1:0", timeout
			l, err := Listen(t.Context(), tt.cfg, Options{Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			const silent = 20
			var idle []net.Conn
			for range silent {
				c, err := net.Dial("tcp", l.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				idle = append(idle, c)
			}
			waitFor(t, "the silent clients to be handshaking", func() bool { return l.Stats().Handshaking == silent })
			start := time.Now()
			good := tt.good(t, l.Addr().String())
			defer good.Close()
			sc := accept(t, l)
			if d := time.Since(start); d > timeout/2 {
				t.Errorf("good client accepted after %v, while %d silent clients handshake", d, silent)
			}
			if Info(sc).Transport != l.Config().Type {
				t.Errorf("accepted %+v", Info(sc))
			}
			for _, c := range idle {
				expectClosed(t, c, 5*time.Second)
			}
			if d := time.Since(start); d < timeout/2 {
				t.Errorf("silent clients closed after %v, before the %v deadline", d, timeout)
			}
			waitFor(t, "the timeouts to be counted", func() bool { return l.Stats().TimedOut == silent })
			if s := l.Stats(); s.Failed[tt.stage] != 0 || s.Handshaking != 0 || s.Accepted != 1 {
				t.Errorf("stats = %+v", s)
			}
			sc.Close()
			l.Close()
			checkGoroutines(t, base)
		})
	}
}

// TestMaxHandshakes fills every handshake slot: the next client waits
// (in the kernel backlog) until a slot frees at the deadline.
func TestMaxHandshakes(t *testing.T) {
	const timeout = 300 * time.Millisecond
	l := listen(t, Config{ProxyProtocol: true, MaxHandshakes: 2, HandshakeTimeout: timeout})
	dial(t, l)
	dial(t, l)
	waitFor(t, "two handshakes", func() bool { return l.Stats().Handshaking == 2 })
	start := time.Now()
	c := dial(t, l)
	io.WriteString(c, "PROXY UNKNOWN\r\n")
	time.Sleep(timeout / 3)
	if s := l.Stats(); s.Handshaking != 2 {
		t.Errorf("%d handshakes with max_handshakes 2", s.Handshaking)
	}
	accept(t, l)
	if d := time.Since(start); d < timeout/2 {
		t.Errorf("third client accepted after %v, before a slot freed", d)
	}
}

// TestAcceptQueue checks that ready connections wait in the bounded
// queue and that Close closes those never accepted.
func TestAcceptQueue(t *testing.T) {
	base := runtime.NumGoroutine()
	l, err := Listen(t.Context(), Config{Name: "q", Address: "127.0.0.1:0", ProxyProtocol: true, AcceptQueue: 2, MaxHandshakes: 8},
		Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var clients []net.Conn
	for range 5 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "PROXY UNKNOWN\r\n")
		clients = append(clients, c)
	}
	waitFor(t, "the queue to fill", func() bool { s := l.Stats(); return s.Queued == 2 && s.Handshaking == 0 })
	time.Sleep(50 * time.Millisecond)
	if s := l.Stats(); s.Queued != 2 || s.Accepted != 2 {
		t.Errorf("stats = %+v, want 2 queued (the rest waiting for room)", s)
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, c := range clients {
		expectClosed(t, c, 5*time.Second)
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
	}
	checkGoroutines(t, base)
}

// TestCloseAbortsHandshakes closes a listener while clients sit in their
// handshake: Close returns at once, not at the handshake deadline, and
// nothing is counted as a failure.
func TestCloseAbortsHandshakes(t *testing.T) {
	ca := newTestCA(t, "ca")
	base := runtime.NumGoroutine()
	l, err := Listen(t.Context(), Config{Name: "c", Address: "127.0.0.1:0", Type: WebSocketTLS, TLS: serverFiles(t, ca, "s")},
		Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	waitFor(t, "handshakes", func() bool { return l.Stats().Handshaking == 5 })
	pending := acceptAsync(l)
	start := time.Now()
	l.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	if r := <-pending; !errors.Is(r.err, net.ErrClosed) {
		t.Errorf("pending Accept: %v, %v", r.c, r.err)
	}
	if s := l.Stats(); s.TimedOut != 0 || s.Failed["tls"] != 0 || s.Handshaking != 0 {
		t.Errorf("stats = %+v", s)
	}
	checkGoroutines(t, base)
}

func TestListenErrors(t *testing.T) {
	l := listen(t, Config{})
	tests := []struct {
		name string
		cfg  Config
	}{
		{"invalid", Config{Name: "x", Address: "nope"}},
		{"port in use", Config{Name: "x", Address: l.Addr().String()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if l, err := Listen(t.Context(), tt.cfg, Options{}); err == nil {
				l.Close()
				t.Fatal("Listen succeeded")
			}
		})
	}
}

// TestHandshakeAborted connects and leaves, as load balancer health
// checks do: counted as aborted, not as a failure.
func TestHandshakeAborted(t *testing.T) {
	ca := newTestCA(t, "ca")
	tests := []struct {
		name string
		cfg  Config
		send string
	}{
		{"proxy", Config{ProxyProtocol: true}, ""},
		{"proxy half header", Config{ProxyProtocol: true}, "PROXY TCP4 1.2.3.4 "},
		{"tls", Config{Type: TLS, TLS: serverFiles(t, ca, "s")}, ""},
		{"ws", Config{Type: WebSocket}, ""},
		{"ws half request", Config{Type: WebSocket}, "GET /mqtt HTTP/1.1\r\nHost: x\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := listen(t, tt.cfg)
			c := dial(t, l)
			waitFor(t, "the handshake to start", func() bool { return l.Stats().Handshaking == 1 })
			io.WriteString(c, tt.send)
			c.Close()
			waitFor(t, "the abort to be counted", func() bool { return l.Stats().Aborted == 1 })
			s := l.Stats()
			for stage, n := range s.Failed {
				if n != 0 {
					t.Errorf("%d %s failures", n, stage)
				}
			}
		})
	}
}

// TestBadInputNoLeak sends a mix of bad handshakes and checks that every
// goroutine ends and the heap comes back once the listener closed them.
func TestBadInputNoLeak(t *testing.T) {
	ca := newTestCA(t, "ca")
	cfgs := []Config{
		{ProxyProtocol: true},
		{Type: TLS, TLS: serverFiles(t, ca, "s")},
		{Type: WebSocket},
	}
	bad := []string{
		"GET / HTTP/1.1\r\n\r\n",
		"\x16\x03\x01\x00\x05hello",
		"PROXY TCP4 a b c d\r\n",
		"\x10\x12\x00\x04MQTT\x04\x02\x00\x3c",
	}
	base := runtime.NumGoroutine()
	before := memNow()
	const rounds = 50
	for i, cfg := range cfgs {
		cfg.Name, cfg.Address = fmt.Sprintf("bad%d", i), "127.0.0.1:0"
		l, err := Listen(t.Context(), cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for r := range rounds {
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, bad[r%len(bad)])
			expectClosed(t, c, 5*time.Second)
			c.Close()
		}
		waitFor(t, "every failure to be counted", func() bool {
			s := l.Stats()
			var n uint64
			for _, f := range s.Failed {
				n += f
			}
			return n+s.Aborted == rounds && s.Handshaking == 0
		})
		l.Close()
	}
	checkGoroutines(t, base)
	after := memNow()
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 512<<10 {
		t.Errorf("heap grew by %d bytes after %d bad connections", grown, rounds*len(cfgs))
	}
}
