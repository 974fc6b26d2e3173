package bench

import (
	"context"
	"net"
	"testing"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/listener"
)

// startSluice runs the Sluice broker in-process on a free loopback port
// until the test ends. Its session queues are made large enough that
// full-speed QoS 1 runs are lossless, as they are against mosquitto
// configured with max_queued_messages 0.
func startSluice(t *testing.T) target {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listeners = []broker.ListenerConfig{{Config: listener.Config{Name: "bench", Address: "127.0.0.1:0"}, AllowAnonymous: true}}
	cfg.MaxQueuedMessages = 1 << 20
	cfg.MaxQueuedBytes = 1 << 30
	srv, err := broker.New(cfg, broker.Options{})
	if err != nil {
		t.Fatalf("broker.New: %v", err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return target{port: srv.Addrs()["bench"].(*net.TCPAddr).Port}
}

func TestAgainstSluice(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	runSuite(t, startSluice(t), true)
}
