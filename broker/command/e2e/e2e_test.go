package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/command"
	"github.com/sluicehq/sluice/broker/command/kafkasource"
)

// TestKafkaToDeviceRoundTrip: a record produced to Kafka reaches a real
// MQTT 5 device, which acknowledges it and answers; the status events
// read back from Kafka show every transition in order. Records the
// service refuses (no such device) or that name no device end as
// rejected, also on the status topic.
func TestKafkaToDeviceRoundTrip(t *testing.T) {
	st := startStack(t, 1, nil)
	connectDevice(t, st.mqtt, "press-1", func(p *paho.Publish) []byte {
		return []byte(`{"ok":true,"echo":` + string(p.Payload) + `}`)
	}, nil)
	prod := newProducer(t, st.kafka)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs := []*kgo.Record{
		{Key: []byte("press-1"), Value: []byte(`{"sp":21.5}`), Headers: []kgo.RecordHeader{
			{Key: "command-id", Value: []byte("cmd-1")}, {Key: "correlation-id", Value: []byte("mes-42")},
			{Key: "content-type", Value: []byte("application/json")}, {Key: "ttl", Value: []byte("10m")},
		}},
		{Key: []byte("ghost"), Value: []byte(`{"sp":1}`), Headers: []kgo.RecordHeader{{Key: "command-id", Value: []byte("cmd-ghost")}}},
		{Value: []byte(`{"sp":2}`)}, // no key: no device
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	sr := newStatusReader(t, st.kafka)
	sr.until(ctx, t, func(evs map[string][]command.Event) bool {
		last := func(id string) command.State {
			if e := evs[id]; len(e) > 0 {
				return e[len(e)-1].State
			}
			return ""
		}
		return last("cmd-1") == command.Responded && last("cmd-ghost") == command.Rejected && last("commands-0-2") == command.Rejected
	})
	if ctx.Err() != nil {
		t.Fatalf("timed out; events so far: %+v", sr.evs)
	}

	want := []command.State{command.Accepted, command.Queued, command.Sent, command.Delivered, command.Responded}
	evs := sr.evs["cmd-1"]
	if got := states(evs); !slices.Equal(got, want) {
		t.Fatalf("cmd-1 states %v, want %v", got, want)
	}
	for i, e := range evs {
		if e.Device != "press-1" || e.Topic != "devices/press-1/commands" || e.Source != "kafka" || e.CorrelationID != "mes-42" {
			t.Errorf("event %d: %+v", i, e)
		}
		if i > 0 && e.At.Before(evs[i-1].At) {
			t.Errorf("event %d at %s is before event %d at %s", i, e.At, i-1, evs[i-1].At)
		}
	}
	if r := string(evs[4].Response); r != `{"ok":true,"echo":{"sp":21.5}}` {
		t.Errorf("response %q", r)
	}
	for id, reason := range map[string]string{"cmd-ghost": "no such device", "commands-0-2": "neither device nor topic"} {
		e := sr.evs[id]
		if got := states(e); !slices.Equal(got, []command.State{command.Rejected}) && !slices.Equal(got, []command.State{command.Accepted, command.Rejected}) {
			t.Errorf("%s states %v, want rejected", id, got)
			continue
		}
		if !strings.Contains(e[len(e)-1].Reason, reason) {
			t.Errorf("%s reason %q, want it to contain %q", id, e[len(e)-1].Reason, reason)
		}
	}
	got, ok, err := st.svc.Get("cmd-1")
	if err != nil || !ok || got.State != command.Responded {
		t.Fatalf("Get(cmd-1) = %+v, %v, %v", got, ok, err)
	}
}

// TestDevicePublishProperties checks what the device receives: the
// payload, correlation data and response topic, content type and expiry.
func TestDevicePublishProperties(t *testing.T) {
	st := startStack(t, 1, func(c *kafkasource.Config) { c.PayloadField = "cmd" })
	got := make(chan *paho.Publish, 1)
	connectDevice(t, st.mqtt, "oven-3", nil, func(p *paho.Publish) { got <- p })
	prod := newProducer(t, st.kafka)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := &kgo.Record{Key: []byte("oven-3"), Value: []byte(`{"cmd":{"temp":180},"by":"mes"}`), Headers: []kgo.RecordHeader{
		{Key: "command-id", Value: []byte("bake-1")}, {Key: "content-type", Value: []byte("application/json")},
		{Key: "ttl", Value: []byte("120")}, {Key: "qos", Value: []byte("1")},
	}}
	if err := prod.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p.Topic != "devices/oven-3/commands" || string(p.Payload) != `{"temp":180}` || p.QoS != 1 {
			t.Fatalf("received %s qos %d %q", p.Topic, p.QoS, p.Payload)
		}
		pr := p.Properties
		if pr == nil || string(pr.CorrelationData) != "bake-1" || pr.ResponseTopic != "devices/oven-3/replies/bake-1" ||
			pr.ContentType != "application/json" || pr.MessageExpiry == nil || *pr.MessageExpiry < 100 || *pr.MessageExpiry > 120 {
			t.Fatalf("properties %+v", pr)
		}
	case <-ctx.Done():
		t.Fatal("the device received nothing")
	}
}

// TestStaleRecordExpires: a record whose TTL its time in Kafka used up
// (produced 3 s before it is read, ttl 2s) ends expired; the device gets
// only the fresh record produced after it.
func TestStaleRecordExpires(t *testing.T) {
	st := startStack(t, 1, nil)
	got := make(chan *paho.Publish, 4)
	connectDevice(t, st.mqtt, "mixer-2", nil, func(p *paho.Publish) { got <- p })
	prod := newProducer(t, st.kafka)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs := []*kgo.Record{
		{Key: []byte("mixer-2"), Value: []byte("stale"), Timestamp: time.Now().Add(-3 * time.Second),
			Headers: []kgo.RecordHeader{{Key: "command-id", Value: []byte("stale-1")}, {Key: "ttl", Value: []byte("2s")}}},
		{Key: []byte("mixer-2"), Value: []byte("fresh"),
			Headers: []kgo.RecordHeader{{Key: "command-id", Value: []byte("fresh-1")}, {Key: "ttl", Value: []byte("2s")}}},
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if string(p.Payload) != "fresh" {
			t.Fatalf("device got %q, want only the fresh command", p.Payload)
		}
	case <-ctx.Done():
		t.Fatal("the device received nothing")
	}
	sr := newStatusReader(t, st.kafka)
	sr.until(ctx, t, func(evs map[string][]command.Event) bool { return len(evs["stale-1"]) >= 2 })
	if s := states(sr.evs["stale-1"]); !slices.Equal(s, []command.State{command.Accepted, command.Expired}) {
		t.Errorf("stale-1 states %v, want accepted, expired", s)
	}
	select {
	case p := <-got:
		t.Errorf("device got %q too", p.Payload)
	case <-time.After(100 * time.Millisecond):
	}
}
