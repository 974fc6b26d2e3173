package broker

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/listener"
	"github.com/sluicehq/sluice/broker/packet"
)

// TestIdleTLSConnections measures the broker's memory per idle TLS
// connection (CONNECT done, keep alive 0). The clients run in a child
// process so only the server side is counted. SLUICE_TLS_IDLE_CONNS sets
// the number (default: skipped).
func TestIdleTLSConnections(t *testing.T) {
	if os.Getenv("SLUICE_TLS_CLIENT_ADDR") != "" {
		tlsIdleClients(t)
		return
	}
	n, _ := strconv.Atoi(os.Getenv("SLUICE_TLS_IDLE_CONNS"))
	if n == 0 {
		t.Skip("set SLUICE_TLS_IDLE_CONNS to measure")
	}
	pki := newTestPKI(t, "c")
	s, _ := startServer(t, func(c *Config) {
		c.Listeners = []ListenerConfig{{Config: listener.Config{Name: "test", Type: listener.TLS, Address: "127.0.0.1:0",
			TLS: listener.TLSConfig{CertFile: pki.certFile, KeyFile: pki.keyFile}}, AllowAnonymous: true}}
	}, Options{})
	before := memNow()
	g0 := runtime.NumGoroutine()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestIdleTLSConnections$")
	cmd.Env = append(os.Environ(), "SLUICE_TLS_CLIENT_ADDR="+s.Addrs()["test"].String(),
		"SLUICE_TLS_CLIENT_N="+strconv.Itoa(n), "SLUICE_TLS_CLIENT_CA="+pki.caFile)
	out, _ := cmd.StdoutPipe()
	cmd.Stdin = nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(out)
	for sc.Scan() && sc.Text() != "READY" {
	}
	waitFor(t, func() bool { return s.Stats().Connections == int64(n) })
	time.Sleep(2 * idleHandoff) // every reader past its idle hand-off
	after := memNow()
	per := float64(after-before) / float64(n)
	t.Logf("%d idle TLS connections: %.0f B/conn (heap+stack), %d goroutines added", n, per, runtime.NumGoroutine()-g0)
}

// memNow returns heap in use plus stacks after a GC.
func memNow() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// tlsIdleClients is the child process: it opens the connections, sends
// CONNECT, prints READY and waits to be killed.
func tlsIdleClients(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SLUICE_TLS_CLIENT_N"))
	ca, err := os.ReadFile(os.Getenv("SLUICE_TLS_CLIENT_CA"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: x509Pool(ca)}
	var conns []*tls.Conn
	for i := range n {
		c, err := tls.Dial("tcp", os.Getenv("SLUICE_TLS_CLIENT_ADDR"), cfg)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		b, _ := packet.Append(nil, &packet.Connect{Version: packet.Version311, ProtocolName: []byte("MQTT"),
			ClientID: []byte(fmt.Sprint("idle-", i)), CleanStart: true}, packet.Version311)
		c.Write(b)
		var ack [4]byte
		if _, err := c.Read(ack[:]); err != nil {
			t.Fatalf("connack %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	fmt.Println("READY")
	time.Sleep(time.Hour)
	_ = conns
}
