package store_test

import (
	"context"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/listener"
	"github.com/sluicehq/sluice/broker/store"
	"github.com/sluicehq/sluice/broker/topic"
)

// TestMessageExpiryAcrossRestart stores a queued and a retained message
// whose expiry passed while the broker was down, next to fresh ones: after
// the restart only the fresh ones are delivered.
func TestMessageExpiryAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	d, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Minute)
	msg := func(topicName, payload string, at time.Time, expiry uint32, retain bool) *broker.Message {
		return &broker.Message{Topic: topicName, Payload: []byte(payload), QoS: 1, ReceivedAt: at, MessageExpiry: expiry, Retain: retain}
	}
	sess := broker.StoredSession{ClientID: "sub", Expiry: 0xFFFFFFFF,
		Subscriptions: []topic.Sub{{ClientID: "sub", Filter: "q/#", QoS: 1}},
		Queued: []broker.StoredDelivery{
			{Message: msg("q/1", "expired", old, 60, false), QoS: 1, Seq: 0},
			{Message: msg("q/1", "fresh", time.Now(), 3600, false), QoS: 1, Seq: 1},
		}}
	err = d.Save(context.Background(), broker.StoreBatch{Sessions: []broker.StoredSession{sess},
		Retained: []*broker.Message{msg("r/old", "expired", old, 60, true), msg("r/new", "fresh", time.Now(), 0, true)}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := broker.DefaultConfig()
	cfg.Listeners = []broker.ListenerConfig{{Config: listener.Config{Name: "t", Address: "127.0.0.1:0"}, AllowAnonymous: true}}
	cfg.ShutdownTimeout = time.Second
	cfg.SysInterval = 0
	s, err := broker.New(cfg, broker.Options{Store: d})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() {
		cancel()
		<-done
		d.Close()
	}()
	got := make(chan string, 10)
	h := func(_ mqtt.Client, m mqtt.Message) { got <- m.Topic() + "=" + string(m.Payload()) }
	o := mqtt.NewClientOptions().AddBroker("tcp://" + s.Addrs()["t"].String()).SetClientID("sub").
		SetCleanSession(false).SetAutoReconnect(false).SetDefaultPublishHandler(h)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Subscribe("r/#", 1, h); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	want := map[string]bool{"q/1=fresh": true, "r/new=fresh": true}
	timeout := time.After(5 * time.Second)
	for seen := 0; seen < len(want); {
		select {
		case m := <-got:
			if !want[m] {
				t.Fatalf("delivered %s, which expired while the broker was down", m)
			}
			seen++
		case <-timeout:
			t.Fatalf("fresh messages not delivered")
		}
	}
	select {
	case m := <-got:
		t.Fatalf("unexpected %s", m)
	case <-time.After(300 * time.Millisecond):
	}
}
