package broker

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluicehq/sluice/broker/listener"
)

func subscribeV5(t *testing.T, c *paho.Client, subs ...paho.SubscribeOptions) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
}

func subscribeV3(t *testing.T, c mqtt.Client, filter string, qos byte) {
	t.Helper()
	if tok := c.Subscribe(filter, qos, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
}

func TestInspectClients(t *testing.T) {
	s, addr := startServer(t, nil, Options{})
	expiry := uint32(300)
	before := time.Now()
	c5, _ := v5Client(t, addr, paho.ClientConfig{ClientID: "dev-5"},
		&paho.Connect{KeepAlive: 20, CleanStart: true, Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry}})
	subscribeV5(t, c5, paho.SubscribeOptions{Topic: "a/+", QoS: 1, NoLocal: true},
		paho.SubscribeOptions{Topic: "$share/g/b/#", QoS: 0})
	c3 := v3Client(t, addr, "dev-3", false, nil)
	subscribeV3(t, c3, "c/#", 2)

	t.Run("details", func(t *testing.T) {
		d, ok := s.Client("dev-5")
		if !ok {
			t.Fatal("dev-5 not found")
		}
		if d.Version != 5 || d.Listener != "test" || d.KeepAlive != 20*time.Second || !d.CleanStart || d.ConnID == 0 {
			t.Errorf("details: %+v", d)
		}
		if d.ConnectedAt.Before(before) || time.Since(d.ConnectedAt) > time.Minute {
			t.Errorf("connected at %v, test started %v", d.ConnectedAt, before)
		}
		if !d.Session.Online || d.Session.ConnID != d.ConnID || d.Session.Expiry != 300 || d.Session.Subscriptions != 2 {
			t.Errorf("session: %+v", d.Session)
		}
		want := []Subscription{
			{ClientID: "dev-5", Filter: "$share/g/b/#", Group: "g", QoS: 0},
			{ClientID: "dev-5", Filter: "a/+", QoS: 1, NoLocal: true},
		}
		if fmt.Sprint(d.Subscriptions) != fmt.Sprint(want) {
			t.Errorf("subscriptions\n got %+v\nwant %+v", d.Subscriptions, want)
		}
		d3, ok := s.Client("dev-3")
		if !ok || d3.Version != 4 || d3.CleanStart || d3.Session.Expiry != expiryNever || d3.ConnID == d.ConnID {
			t.Errorf("dev-3: %+v (found %v)", d3, ok)
		}
		if _, ok := s.Client("nobody"); ok {
			t.Error("unknown client found")
		}
	})

	for _, tc := range []struct {
		name  string
		after string
		limit int
		want  []string
		more  bool
	}{
		{"first page", "", 1, []string{"dev-3"}, true},
		{"second page", "dev-3", 1, []string{"dev-5"}, false},
		{"all", "", 10, []string{"dev-3", "dev-5"}, false},
		{"past the end", "dev-5", 10, nil, false},
		{"between ids", "dev-4", 10, []string{"dev-5"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			page, more := s.ClientPage(tc.after, tc.limit)
			var ids []string
			for _, d := range page {
				ids = append(ids, d.ClientID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.want) || more != tc.more {
				t.Errorf("got %v more=%v, want %v more=%v", ids, more, tc.want, tc.more)
			}
		})
	}
}

func TestInspectDisconnect(t *testing.T) {
	s, addr := startServer(t, nil, Options{})
	wills := newMsgLog()
	w := v3Client(t, addr, "will-watcher", true, nil)
	if tok := w.Subscribe("wills/#", 1, wills.v3Handler); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	t.Run("v5 gets DISCONNECT 0x98, will published, session kept", func(t *testing.T) {
		codes := make(chan byte, 1)
		expiry := uint32(60)
		v5Client(t, addr, paho.ClientConfig{ClientID: "kick-5", OnServerDisconnect: func(d *paho.Disconnect) { codes <- d.ReasonCode }},
			&paho.Connect{KeepAlive: 30, CleanStart: true, Properties: &paho.ConnectProperties{SessionExpiryInterval: &expiry},
				WillMessage: &paho.WillMessage{Topic: "wills/kick-5", QoS: 1, Payload: []byte("gone")}})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		found, err := s.Disconnect(ctx, "kick-5")
		if !found || err != nil {
			t.Fatalf("Disconnect: found=%v err=%v", found, err)
		}
		if _, ok := s.Client("kick-5"); ok {
			t.Error("still listed as connected after Disconnect returned")
		}
		select {
		case code := <-codes:
			if code != 0x98 {
				t.Errorf("DISCONNECT reason 0x%02x, want 0x98", code)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no DISCONNECT received")
		}
		if got := wills.wait(t, 1, 5*time.Second); got[0].Topic != "wills/kick-5" {
			t.Errorf("will: %+v", got)
		}
		info, ok := s.Session("kick-5")
		if !ok || info.Online || info.OfflineSince.IsZero() || !info.ExpiresAt.Equal(info.OfflineSince.Add(time.Minute)) {
			t.Errorf("session after disconnect: %+v (found %v)", info, ok)
		}
	})

	t.Run("v3 connection closed", func(t *testing.T) {
		lost := make(chan error, 1)
		v3Client(t, addr, "kick-3", true, func(err error) { lost <- err })
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if found, err := s.Disconnect(ctx, "kick-3"); !found || err != nil {
			t.Fatalf("Disconnect: found=%v err=%v", found, err)
		}
		select {
		case <-lost:
		case <-time.After(5 * time.Second):
			t.Fatal("paho did not see the connection close")
		}
		if _, ok := s.Session("kick-3"); ok {
			t.Error("clean session outlived its connection")
		}
	})

	t.Run("unknown client", func(t *testing.T) {
		if found, err := s.Disconnect(context.Background(), "nobody"); found || err != nil {
			t.Errorf("found=%v err=%v", found, err)
		}
	})
}

func TestInspectSessions(t *testing.T) {
	s, addr := startServer(t, nil, Options{})
	off := v3Client(t, addr, "offline", false, nil)
	subscribeV3(t, off, "q/#", 1)
	off.Disconnect(100)
	on := v3Client(t, addr, "online", false, nil)
	subscribeV3(t, on, "other/#", 1)
	waitFor(t, func() bool { _, ok := s.Client("offline"); return !ok })
	for i := range 3 {
		if err := s.Publish(&Message{Topic: "q/x", Payload: []byte("12345"), QoS: 1}); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}

	page, more := s.SessionPage("", 10)
	if more || len(page) != 2 {
		t.Fatalf("sessions: %+v more=%v", page, more)
	}
	o := page[0]
	if o.ClientID != "offline" || o.Online || o.Queued != 3 || o.QueuedBytes != 15 || o.Subscriptions != 1 ||
		!o.ExpiresAt.IsZero() || o.OfflineSince.IsZero() {
		t.Errorf("offline session: %+v", o)
	}
	if p := page[1]; p.ClientID != "online" || !p.Online || p.ConnID == 0 || p.Queued != 0 {
		t.Errorf("online session: %+v", p)
	}

	subs, more := s.SubscriptionPage("", 1)
	if len(subs) != 1 || subs[0].ClientID != "offline" || subs[0].Filter != "q/#" || !more {
		t.Errorf("subscription page 1: %+v more=%v", subs, more)
	}
	subs, more = s.SubscriptionPage("offline", 10)
	if len(subs) != 1 || subs[0].ClientID != "online" || more {
		t.Errorf("subscription page 2: %+v more=%v", subs, more)
	}

	for _, tc := range []struct {
		id   string
		want error
	}{
		{"online", ErrOnline},
		{"nobody", ErrNoSession},
		{"offline", nil},
		{"offline", ErrNoSession}, // already gone
	} {
		t.Run("delete "+tc.id, func(t *testing.T) {
			if err := s.DeleteSession(tc.id); !errors.Is(err, tc.want) {
				t.Errorf("DeleteSession(%s) = %v, want %v", tc.id, err, tc.want)
			}
		})
	}
	if _, ok := s.Session("offline"); ok {
		t.Error("deleted session still listed")
	}
	if n := len(s.Subscriptions("offline")); n != 0 {
		t.Errorf("deleted session keeps %d subscriptions", n)
	}
	// A new connection with the id starts from scratch.
	again := v3Client(t, addr, "offline", false, nil)
	_ = again
	if info, _ := s.Session("offline"); info.Queued != 0 || info.Subscriptions != 0 {
		t.Errorf("session after delete and reconnect: %+v", info)
	}
}

func TestInspectRetained(t *testing.T) {
	s, _ := startServer(t, nil, Options{})
	for _, topic := range []string{"a/2", "a/1", "a/1/deep", "b/1", "$internal/x"} {
		if err := s.Publish(&Message{Topic: topic, Payload: []byte(topic), Retain: true}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		filter  string
		limit   int
		want    []string
		more    bool
		invalid bool
	}{
		{filter: "a/+", limit: 10, want: []string{"a/1", "a/2"}},
		{filter: "a/#", limit: 10, want: []string{"a/1", "a/1/deep", "a/2"}},
		{filter: "#", limit: 10, want: []string{"a/1", "a/1/deep", "a/2", "b/1"}},
		{filter: "$internal/#", limit: 10, want: []string{"$internal/x"}},
		{filter: "b/1", limit: 10, want: []string{"b/1"}},
		{filter: "nothing/#", limit: 10},
		{filter: "a/+", limit: 1, more: true},
		{filter: "a/#/b", invalid: true},
		{filter: "$share/g/a", invalid: true},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			msgs, more, err := s.RetainedMessages(tc.filter, tc.limit)
			if tc.invalid {
				if err == nil {
					t.Fatal("invalid filter accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if more != tc.more {
				t.Errorf("more = %v, want %v", more, tc.more)
			}
			if tc.more {
				if len(msgs) != tc.limit {
					t.Errorf("got %d messages, want the limit %d", len(msgs), tc.limit)
				}
				return
			}
			var topics []string
			for _, m := range msgs {
				topics = append(topics, m.Topic)
				if string(m.Payload) != m.Topic || !m.Retain {
					t.Errorf("message %+v", m)
				}
			}
			if fmt.Sprint(topics) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", topics, tc.want)
			}
		})
	}
}

func TestInspectReady(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listeners = []ListenerConfig{{Config: listener.Config{Name: "test", Address: "127.0.0.1:0"}, AllowAnonymous: true}}
	cfg.ShutdownTimeout = time.Second
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Ready() == nil {
		t.Error("ready before Listen")
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	if s.Ready() == nil {
		t.Error("ready before Serve")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	waitFor(t, func() bool { return s.Ready() == nil })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s.Ready() == nil {
		t.Error("ready after shutdown")
	}
}
