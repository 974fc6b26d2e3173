package store_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/listener"
	"github.com/sluicehq/sluice/broker/store"
	"github.com/sluicehq/sluice/broker/topic"
)

// TestRestoreManySessions measures how long a broker with many stored
// sessions (10 subscriptions each) takes from start to accepting a
// client whose session is present. SLUICE_RESTORE_SESSIONS sets the
// number (default 2,000; the DESIGN.md figure uses 100,000).
func TestRestoreManySessions(t *testing.T) {
	n := 2000
	if v := os.Getenv("SLUICE_RESTORE_SESSIONS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	d, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fillStart := time.Now()
	const batch = 5000
	for i := 0; i < n; i += batch {
		var b broker.StoreBatch
		for j := i; j < min(n, i+batch); j++ {
			id := fmt.Sprintf("device-%07d", j)
			s := broker.StoredSession{ClientID: id, Expiry: 0xFFFFFFFF}
			for k := range 10 {
				s.Subscriptions = append(s.Subscriptions, topic.Sub{ClientID: id, Filter: fmt.Sprintf("plant/%d/line/%d/#", j%100, k), QoS: 1})
			}
			b.Sessions = append(b.Sessions, s)
		}
		if err := d.Save(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()
	t.Logf("stored %d sessions in %v", n, time.Since(fillStart).Round(time.Millisecond))

	start := time.Now()
	d, err = store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cfg := broker.DefaultConfig()
	cfg.Listeners = []broker.ListenerConfig{{Config: listener.Config{Name: "t", Address: "127.0.0.1:0"}, AllowAnonymous: true}}
	cfg.ShutdownTimeout = time.Second
	s, err := broker.New(cfg, broker.Options{Store: d})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	addr := s.Addrs()["t"].(*net.TCPAddr).String()
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("device-0000001").SetCleanSession(false).
		SetAutoReconnect(false).SetConnectRetry(true).SetConnectRetryInterval(10 * time.Millisecond)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	elapsed := time.Since(start)
	c.Disconnect(0)
	st := s.Stats()
	if st.Sessions != int64(n) || st.Subscriptions != 10*n {
		t.Fatalf("restored %d sessions, %d subscriptions; want %d, %d", st.Sessions, st.Subscriptions, n, 10*n)
	}
	t.Logf("restart with %d sessions (%d subscriptions): serving after %v", n, st.Subscriptions, elapsed.Round(time.Millisecond))
}
