package listener

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The idle-connection benchmark measures what an accepted connection
// costs the server once its handshake is over and a goroutine waits in
// Read (as the broker's reader does for TLS and WebSocket connections):
// live heap plus goroutine stacks per connection. The clients run in a
// child process (this test binary, TestIdleDialer) so their memory is
// not counted.
//
//	go test -run XXX -bench IdleConn -benchtime 5000x ./broker/listener/
//
// b.N is the number of connections.

const dialerEnv = "SLUICE_LISTENER_DIALER"

func BenchmarkIdleConnMemory(b *testing.B) {
	ca := newTestCA(b, "ca")
	caFile := filepath.Join(b.TempDir(), "ca.pem")
	writeFile(b, caFile, ca.pem)
	for _, mode := range []struct {
		name string
		cfg  Config
	}{
		{"tcp", Config{}},
		{"tls", Config{Type: TLS, TLS: serverFiles(b, ca, "server")}},
		{"wss", Config{Type: WebSocketTLS, TLS: serverFiles(b, ca, "server")}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			benchIdle(b, mode.cfg, caFile)
		})
	}
}

func benchIdle(b *testing.B, cfg Config, caFile string) {
	cfg.Name, cfg.Address, cfg.HandshakeTimeout = "bench", "127.0.0.1:0", time.Minute
	l, err := Listen(b.Context(), cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	n := b.N

	before := memNow()
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleDialer$")
	cmd.Env = append(os.Environ(), dialerEnv+"="+fmt.Sprintf("%s,%s,%d,%s", l.Config().Type, l.Addr(), n, caFile))
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	b.ResetTimer()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()

	var wg sync.WaitGroup
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := l.Accept()
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf [64]byte
			c.Read(buf[:]) // until Close
		}()
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		b.Fatalf("dialer: %q, %v", line, err)
	}
	b.StopTimer()
	time.Sleep(100 * time.Millisecond) // let every reader reach Read
	after := memNow()
	heap := float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
	stack := float64(after.StackInuse-before.StackInuse) / float64(n)
	b.ReportMetric(heap, "heap-B/conn")
	b.ReportMetric(stack, "stack-B/conn")
	b.ReportMetric(heap+stack, "B/conn")
	b.ReportMetric(0, "ns/op")
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
}

func memNow() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}

// TestIdleDialer is the benchmark's client process: it opens the
// connections, prints "ready" and holds them until stdin closes. It does
// nothing in a normal test run.
func TestIdleDialer(t *testing.T) {
	spec := os.Getenv(dialerEnv)
	if spec == "" {
		t.Skip("only run by BenchmarkIdleConnMemory")
	}
	parts := strings.SplitN(spec, ",", 4)
	typ, addr, caFile := parts[0], parts[1], parts[3]
	n, _ := strconv.Atoi(parts[2])
	var tc *tls.Config
	if typ != TCP {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tc = &tls.Config{RootCAs: pool, ServerName: "localhost"}
	}
	conns := make([]net.Conn, 0, n)
	for i := range n {
		// Spread over source addresses: one holds about 28,000 ports.
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%8))}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if tc != nil {
			t := tls.Client(c, tc)
			if err := t.Handshake(); err != nil {
				panic(err)
			}
			c = t
		}
		if typ == WebSocketTLS {
			io.WriteString(c, upgradeRequest("GET", "/mqtt"))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil || resp.StatusCode != 101 {
				panic(fmt.Sprint(resp, err))
			}
		}
		conns = append(conns, c)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		c.Close()
	}
}
