package republish

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/sinks"
	"github.com/sluicehq/sluice/sinks/sinktest"
)

// startBroker runs a real broker on a free port until the test ends.
func startBroker(t *testing.T) (*broker.Server, string) {
	t.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listeners[0].Address = "127.0.0.1:0"
	cfg.ShutdownTimeout = time.Second
	srv, err := broker.New(cfg, broker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
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
	return srv, srv.Addrs()["default"].String()
}

// subscriber is an MQTT 3.1.1 client (paho.mqtt.golang) collecting what
// arrives on one topic filter, in arrival order.
type subscriber struct {
	mu      sync.Mutex
	msgs    []sinktest.Message
	arrived chan struct{}
}

func subscribe(t *testing.T, addr, filter string) *subscriber {
	t.Helper()
	sub := &subscriber{arrived: make(chan struct{}, 1)}
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("sinktest-sub").SetCleanSession(true).SetOrderMatters(true)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connecting subscriber: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe(filter, 1, func(_ mqtt.Client, m mqtt.Message) {
		sub.mu.Lock()
		sub.msgs = append(sub.msgs, sinktest.Message{Value: append([]byte(nil), m.Payload()...)})
		sub.mu.Unlock()
		select {
		case sub.arrived <- struct{}{}:
		default:
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribing: %v", tok.Error())
	}
	return sub
}

func (s *subscriber) read(ctx context.Context, n int) ([]sinktest.Message, error) {
	for {
		s.mu.Lock()
		got := append([]sinktest.Message(nil), s.msgs...)
		s.mu.Unlock()
		if len(got) >= n {
			return got, nil
		}
		select {
		case <-s.arrived:
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return got, ctx.Err()
		}
	}
}

// TestContract runs the sink contract against the embedded broker, read
// back by an MQTT subscriber. MQTT carries no key, and the broker cannot
// be taken down under the sink (it is in-process), so no outage check.
func TestContract(t *testing.T) {
	sinktest.Run(t, sinktest.Harness{
		NoKeys: true,
		New: func(t *testing.T) *sinktest.Peer {
			srv, addr := startBroker(t)
			sub := subscribe(t, addr, "sinktest/out")
			s, err := New(DefaultConfig(), srv, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return &sinktest.Peer{Sink: s, Topic: "sinktest/out", Read: sub.read}
		},
	})
}

// TestV5Properties checks with an MQTT 5 subscriber (paho.golang) that
// user properties, the hop counter, the content type and QoS arrive.
func TestV5Properties(t *testing.T) {
	srv, addr := startBroker(t)
	got := make(chan *paho.Publish, 4)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{
		Conn: conn,
		OnPublishReceived: []func(paho.PublishReceived) (bool, error){func(pr paho.PublishReceived) (bool, error) {
			got <- pr.Packet
			return true, nil
		}},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: "v5-sub", CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(&paho.Disconnect{})
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "alerts/#", QoS: 2}}}); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{}, srv, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := sinks.Record{Topic: "alerts/high", Value: []byte(`{"t":31}`), QoS: 1, Source: sinks.Source{
		ClientID: "dev1", ContentType: "application/json",
		UserProperties: []sinks.UserProperty{{Name: "site", Value: "north"}, {Name: HopProperty, Value: "2"}},
	}}
	if err := s.Write(ctx, []sinks.Record{rec}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p.Topic != "alerts/high" || string(p.Payload) != `{"t":31}` || p.QoS != 1 {
			t.Fatalf("received %s qos %d %q", p.Topic, p.QoS, p.Payload)
		}
		if p.Properties == nil || p.Properties.ContentType != "application/json" {
			t.Fatalf("properties %+v, want content type application/json", p.Properties)
		}
		want := paho.UserProperties{{Key: "site", Value: "north"}, {Key: HopProperty, Value: "3"}}
		if len(p.Properties.User) != len(want) || p.Properties.User[0] != want[0] || p.Properties.User[1] != want[1] {
			t.Fatalf("user properties %v, want %v", p.Properties.User, want)
		}
	case <-ctx.Done():
		t.Fatal("nothing received")
	}
}
