package webhook

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sinks/sinktest"
)

func TestCloseReleasesGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	rc := newReceiver(t)
	s, err := New(Config{URL: rc.url("/"), Body: BodyObject}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), sinktest.Records("", 4, 20, "goroutines")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rc.close() // the server's side of the connections
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
