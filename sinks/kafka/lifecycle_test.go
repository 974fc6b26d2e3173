package kafka

import (
	"context"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sinks"
	"github.com/sluicehq/sluice/sinks/sinktest"
)

func TestUnresponsiveBroker(t *testing.T) {
	// A broker that accepts connections and never answers: Write must
	// still return when its context ends, with a retryable error.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	s := newSink(t, Config{Brokers: []string{ln.Addr().String()}, Topic: "events"})
	for _, call := range []string{"Connect", "Write"} {
		t.Run(call, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			start := time.Now()
			if call == "Connect" {
				err = s.Connect(ctx)
			} else {
				err = s.Write(ctx, sinktest.Records("", 1, 3, "hang"))
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("%s took %s with a 300ms deadline", call, took)
			}
			if err == nil || sinks.IsPermanent(err) {
				t.Fatalf("%s = %v, want a retryable error", call, err)
			}
		})
	}
}

func TestCloseReleasesGoroutines(t *testing.T) {
	cl := startCluster(t)
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()
	s, err := New(Config{Brokers: []string{cl.addr}, Topic: "events"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeOK(t, s, sinktest.Records("", 3, 30, "goroutines"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
