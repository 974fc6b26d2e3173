package broker

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/listener"
	"github.com/sluicehq/sluice/broker/packet"
)

// memSnapshot returns Go heap and stack memory in use after a GC.
func memSnapshot() (heap, stack uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.StackInuse
}

// Idle connections must be cheap: one parked goroutine, no buffers.
func TestIdleConnectionMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens thousands of connections")
	}
	const n = 2000
	s, addr := startServer(t, nil, Options{})
	connect, _ := packet.Append(nil, &packet.Connect{ProtocolName: []byte("MQTT"), Version: 4, CleanStart: true, KeepAlive: 60}, 4)
	heap0, stack0 := memSnapshot()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	buf := make([]byte, 4)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		c.Write(connect)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, func() bool { return s.Stats().Connections == n })
	time.Sleep(idleHandoff + 300*time.Millisecond) // every connection has gone idle
	heap1, stack1 := memSnapshot()
	if f := os.Getenv("IDLE_HEAP_PROFILE"); f != "" {
		out, err := os.Create(f)
		if err != nil {
			t.Fatal(err)
		}
		pprof.Lookup("heap").WriteTo(out, 0)
		out.Close()
	}
	// The client side of each connection lives in this process too: its
	// net.Conn is counted in the heap. Subtract a measured client-only cost.
	perHeap := float64(int64(heap1)-int64(heap0)) / n
	perStack := float64(int64(stack1)-int64(stack0)) / n
	t.Logf("per connection: heap %.0f B, stack %.0f B (client side included in heap)", perHeap, perStack)
	if !raceEnabled && perHeap+perStack > 5000 {
		t.Errorf("idle connection costs %.0f B of heap and stack", perHeap+perStack)
	}
}

// Parked (idle) connections must still be woken by data, keep alive,
// takeover and shutdown.
func TestParkedConnections(t *testing.T) {
	for _, poller := range []bool{true, false} {
		t.Run(fmt.Sprintf("poller=%v", poller), func(t *testing.T) { testParked(t, poller) })
	}
}

func testParked(t *testing.T, poller bool) {
	s, addr := startServerWith(t, nil, Options{}, func(s *Server) { s.noPoller = !poller })
	park := func() { time.Sleep(idleHandoff + 200*time.Millisecond) }

	sub := dialRaw(t, addr, packet.Version5)
	sub.connect(&packet.Connect{ClientID: []byte("parked"), CleanStart: true, KeepAlive: 30})
	subscribe(t, sub, packet.Subscription{Filter: []byte("p")})
	park()
	t.Run("data", func(t *testing.T) {
		sub.send(&packet.Pingreq{})
		if _, ok := sub.read(time.Second).(*packet.Pingresp); !ok {
			t.Fatal("no PINGRESP from a parked connection")
		}
		park()
		s.Publish(&Message{Topic: "p", Payload: []byte("to parked")})
		if p := readPublish(t, sub); string(p.Payload) != "to parked" {
			t.Fatalf("got %q", p.Payload)
		}
	})
	t.Run("takeover", func(t *testing.T) {
		park()
		nw := dialRaw(t, addr, packet.Version5)
		nw.connect(&packet.Connect{ClientID: []byte("parked"), CleanStart: true})
		sub.expectClosed(int(packet.SessionTakenOver))
	})
	t.Run("keep alive", func(t *testing.T) {
		c := dialRaw(t, addr, packet.Version311)
		c.connect(&packet.Connect{ClientID: []byte("ka-parked"), CleanStart: true, KeepAlive: 2})
		start := time.Now()
		c.expectClosed(-1)
		if d := time.Since(start); d < 2900*time.Millisecond || d > 4*time.Second {
			t.Errorf("closed after %v, want ~3s", d)
		}
	})
}

func TestShutdownWakesParked(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listeners = []ListenerConfig{{Config: listener.Config{Name: "test", Address: "127.0.0.1:0"}, AllowAnonymous: true}}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	c := dialRaw(t, s.Addrs()["test"].String(), packet.Version5)
	c.connect(&packet.Connect{ClientID: []byte("p"), CleanStart: true})
	time.Sleep(idleHandoff + 200*time.Millisecond)
	cancel()
	c.expectClosed(int(packet.ServerShuttingDown))
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
}
