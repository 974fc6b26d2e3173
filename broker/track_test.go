package broker

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// trackLog records tracker events.
type trackLog struct {
	mu  sync.Mutex
	evs []TrackEvent
}

func (l *trackLog) Track(ev TrackEvent) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

func (l *trackLog) kinds(id string) []TrackKind {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []TrackKind
	for _, e := range l.evs {
		if e.CommandID == id {
			out = append(out, e.Kind)
		}
	}
	return out
}

func (l *trackLog) wait(t *testing.T, id string, want ...TrackKind) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(l.kinds(id), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: steps %v, want %v", id, l.kinds(id), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTrackedDelivery(t *testing.T) {
	tl := &trackLog{}
	s, addr := startServer(t, nil, Options{Tracker: tl})
	ctx := context.Background()
	sub := func(id string, clean bool, qos byte) mqtt.Client {
		c := v3Client(t, addr, id, clean, nil)
		if tok := c.Subscribe("cmd/"+id, qos, func(mqtt.Client, mqtt.Message) {}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		return c
	}
	sub("on1", true, 1)
	sub("on2", true, 2)
	sub("on0", true, 0)
	offline := func(c mqtt.Client, id string) {
		c.Disconnect(50)
		for deadline := time.Now().Add(5 * time.Second); s.isOnline(id); time.Sleep(2 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s still online", id)
			}
		}
	}
	offline(sub("off", false, 1), "off")

	cases := []struct {
		name, topic, id string
		qos             byte
		want            []TrackKind
	}{
		{"qos1 online", "cmd/on1", "c1", 1, []TrackKind{TrackSent, TrackDelivered}},
		{"qos2 online", "cmd/on2", "c2", 2, []TrackKind{TrackSent, TrackDelivered}},
		{"qos0 subscription", "cmd/on0", "c0", 1, []TrackKind{TrackSent}},
		{"offline", "cmd/off", "c3", 1, []TrackKind{TrackQueued}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			matched, err := s.PublishCommand(ctx, &Message{Topic: c.topic, Payload: []byte("x"), QoS: c.qos, CommandID: c.id})
			if err != nil || len(matched) != 1 {
				t.Fatalf("matched %v, err %v", matched, err)
			}
			tl.wait(t, c.id, c.want...)
		})
	}
	t.Run("no subscriber", func(t *testing.T) {
		matched, err := s.PublishCommand(ctx, &Message{Topic: "cmd/nobody", QoS: 1, CommandID: "c4"})
		if err != nil || len(matched) != 0 {
			t.Fatalf("matched %v, err %v", matched, err)
		}
	})
	t.Run("resubmit is not queued twice", func(t *testing.T) {
		if !s.CommandPending("off", "c3") {
			t.Fatal("c3 not pending")
		}
		matched, err := s.PublishCommand(ctx, &Message{Topic: "cmd/off", QoS: 1, CommandID: "c3"})
		if err != nil || len(matched) != 1 {
			t.Fatalf("matched %v, err %v", matched, err)
		}
		tl.wait(t, "c3", TrackQueued)
	})
	t.Run("session ended by clean start", func(t *testing.T) {
		v3Client(t, addr, "off", true, nil)
		tl.wait(t, "c3", TrackQueued, TrackFailed)
		if s.CommandPending("off", "c3") {
			t.Fatal("c3 still pending")
		}
	})
	t.Run("expired in the queue", func(t *testing.T) {
		offline(sub("exp", false, 1), "exp")
		if _, err := s.PublishCommand(ctx, &Message{Topic: "cmd/exp", QoS: 1, MessageExpiry: 1, CommandID: "c6"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1100 * time.Millisecond)
		sub("exp", false, 1)
		tl.wait(t, "c6", TrackQueued, TrackExpired)
	})
	t.Run("retained refused", func(t *testing.T) {
		if _, err := s.PublishCommand(ctx, &Message{Topic: "cmd/on1", Retain: true, CommandID: "c5"}); err == nil {
			t.Fatal("retained command accepted")
		}
	})
}
