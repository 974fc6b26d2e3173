package store

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/topic"
)

func TestDiskRoundTrip(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now().Round(0).UTC()
	msg := &broker.Message{Topic: "a/b", Payload: []byte("p"), QoS: 1, ReceivedAt: now, MessageExpiry: 60,
		UserProperties: []broker.UserProperty{{Name: "k", Value: "v"}}}
	s1 := broker.StoredSession{ClientID: "c1", Expiry: 3600, OfflineSince: now,
		Subscriptions: []topic.Sub{{ClientID: "c1", Filter: "a/#", QoS: 1}},
		Outbound:      []broker.StoredDelivery{{Message: msg, QoS: 1, PacketID: 7}, {Message: msg, QoS: 1}},
		InboundQoS2:   []uint16{3, 9}}
	steps := []struct {
		name         string
		batch        broker.StoreBatch
		wantSessions []string
		wantRetained []string
	}{
		{"insert", broker.StoreBatch{Sessions: []broker.StoredSession{s1, {ClientID: "c2", Expiry: 10}},
			Retained: []*broker.Message{msg}}, []string{"c1", "c2"}, []string{"a/b"}},
		{"delete", broker.StoreBatch{DeletedSessions: []string{"c2"}, DeletedRetained: []string{"a/b"}},
			[]string{"c1"}, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := d.Save(ctx, st.batch); err != nil {
				t.Fatal(err)
			}
			// Reopen: what Load returns comes from the file.
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			if d, err = Open(dir); err != nil {
				t.Fatal(err)
			}
			got, err := d.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var ids, topics []string
			for _, s := range got.Sessions {
				ids = append(ids, s.ClientID)
				if s.ClientID == "c1" && !reflect.DeepEqual(s, s1) {
					t.Errorf("session c1 = %+v, want %+v", s, s1)
				}
			}
			for _, m := range got.Retained {
				topics = append(topics, m.Topic)
			}
			if !reflect.DeepEqual(ids, st.wantSessions) || !reflect.DeepEqual(topics, st.wantRetained) {
				t.Errorf("sessions %v retained %v, want %v %v", ids, topics, st.wantSessions, st.wantRetained)
			}
		})
	}
	d.Close()
	if _, err := Open(dir + "/\x00bad"); err == nil {
		t.Errorf("Open of an invalid directory succeeded")
	}
}

func TestDiskLocked(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d2, err := Open(dir); err == nil {
		d2.Close()
		t.Fatalf("second Open of a held store succeeded")
	}
}
