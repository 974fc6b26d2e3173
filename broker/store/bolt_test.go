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

// TestDiskQueueIncremental saves a session's queue in steps, as the
// broker does, and checks Load returns the merged queue.
func TestDiskQueueIncremental(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	q := func(seqs ...uint64) []broker.StoredDelivery {
		var out []broker.StoredDelivery
		for _, n := range seqs {
			out = append(out, broker.StoredDelivery{Message: &broker.Message{Topic: "t", Payload: []byte{byte(n)}}, QoS: 1, Seq: n})
		}
		return out
	}
	steps := []struct {
		name string
		sess broker.StoredSession
		want []uint64
	}{
		{"first", broker.StoredSession{ClientID: "c", Queued: q(0, 1, 2)}, []uint64{0, 1, 2}},
		{"append and send one", broker.StoredSession{ClientID: "c", QueueHead: 1, Queued: q(3)}, []uint64{1, 2, 3}},
		{"all sent", broker.StoredSession{ClientID: "c", QueueHead: 4}, nil},
		{"full rewrite", broker.StoredSession{ClientID: "c", QueueHead: 4, QueueFull: true, Queued: q(4, 5)}, []uint64{4, 5}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if err := d.Save(ctx, broker.StoreBatch{Sessions: []broker.StoredSession{st.sess}}); err != nil {
				t.Fatal(err)
			}
			got, err := d.Load(ctx)
			if err != nil || len(got.Sessions) != 1 {
				t.Fatalf("Load: %v %+v", err, got)
			}
			var seqs []uint64
			for _, sd := range got.Sessions[0].Queued {
				seqs = append(seqs, sd.Seq)
				if sd.Message.Payload[0] != byte(sd.Seq) {
					t.Errorf("seq %d holds payload %d", sd.Seq, sd.Message.Payload[0])
				}
			}
			if !reflect.DeepEqual(seqs, st.want) {
				t.Errorf("queue %v, want %v", seqs, st.want)
			}
		})
	}
	if err := d.Save(ctx, broker.StoreBatch{DeletedSessions: []string{"c"}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.Load(ctx); len(got.Sessions) != 0 {
		t.Errorf("deleted session still stored: %+v", got.Sessions)
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
