package status

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/command"
	"github.com/sluicehq/sluice/sinks"
	"github.com/sluicehq/sluice/sinks/kafka"
	"github.com/sluicehq/sluice/sinks/webhook"
)

func events() []command.Event {
	at := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	var evs []command.Event
	for i, st := range []command.State{command.Accepted, command.Queued, command.Sent, command.Delivered, command.Responded} {
		for _, id := range []string{"c1", "c2"} {
			ev := command.Event{ID: id, State: st, At: at.Add(time.Duration(i) * time.Millisecond), Device: "press-" + id, Topic: "cmd/" + id, Source: "kafka"}
			if st == command.Responded {
				ev.Response = []byte(`{"ok":true}`)
			}
			evs = append(evs, ev)
		}
	}
	return evs
}

// TestPublisherKafka writes events through a real Kafka sink and reads
// them back with a real consumer: one record per event, keyed by command
// id, each command's events in order.
func TestPublisherKafka(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "command-status"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	cfg := kafka.DefaultConfig()
	cfg.Brokers = []string{addr}
	sk, err := kafka.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Close()
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	p := New(sk, "command-status", Options{Name: "events", Metrics: m})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	want := events()
	if err := p.PublishEvents(ctx, want[:4]); err != nil {
		t.Fatal(err)
	}
	if err := p.PublishEvents(ctx, want[4:]); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("command-status"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string][]command.Event{}
	n := 0
	for n < len(want) {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d events: %v", n, len(want), err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			var ev command.Event
			if err := json.Unmarshal(r.Value, &ev); err != nil {
				t.Fatalf("record %q: %v", r.Value, err)
			}
			if string(r.Key) != ev.ID {
				t.Errorf("record key %q, want the command id %q", r.Key, ev.ID)
			}
			got[ev.ID] = append(got[ev.ID], ev)
			n++
		})
	}
	for _, id := range []string{"c1", "c2"} {
		var states []string
		for _, ev := range got[id] {
			states = append(states, string(ev.State))
		}
		if s := strings.Join(states, ","); s != "accepted,queued,sent,delivered,responded" {
			t.Errorf("command %s: states %s", id, s)
		}
		last := got[id][len(got[id])-1]
		if string(last.Response) != `{"ok":true}` || last.Device != "press-"+id || !last.At.Equal(want[8].At) {
			t.Errorf("command %s: last event %+v", id, last)
		}
	}
	if v := testutil.ToFloat64(m.events.WithLabelValues("events", resultWritten)); v != float64(len(want)) {
		t.Errorf("written = %v, want %d", v, len(want))
	}
}

// TestPublisherWebhook writes events through a real webhook sink to an
// httptest server.
func TestPublisherWebhook(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies []string
		fail   = true
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if fail {
			fail = false
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		bodies = append(bodies, string(b))
	}))
	defer srv.Close()
	cfg := webhook.DefaultConfig()
	cfg.URL = srv.URL + "/status"
	sk, err := webhook.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Close()
	p := New(sk, "", Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	evs := events()[:2]
	if err := p.PublishEvents(ctx, evs); err == nil {
		t.Fatal("a 503 answer returned nil: the service would not retry")
	}
	if err := p.PublishEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 1 {
		t.Fatalf("%d requests accepted, want 1", len(bodies))
	}
	// The webhook sink's envelope (sinks/README.md) holds the event as
	// its payload.
	var got []struct {
		Rule    string        `json:"rule"`
		Key     string        `json:"key"`
		Payload command.Event `json:"payload"`
	}
	if err := json.Unmarshal([]byte(bodies[0]), &got); err != nil {
		t.Fatalf("body %s: %v", bodies[0], err)
	}
	if len(got) != 2 || got[0].Payload.ID != "c1" || got[0].Key != "c1" || got[0].Payload.State != command.Accepted ||
		got[1].Payload.ID != "c2" || got[0].Rule != "command-status" {
		t.Fatalf("body %s", bodies[0])
	}
}

// scriptedSink answers each Write with the next error of its script.
type scriptedSink struct {
	errs    []error
	batches [][]sinks.Record
}

func (s *scriptedSink) Write(_ context.Context, batch []sinks.Record) error {
	s.batches = append(s.batches, batch)
	if len(s.errs) == 0 {
		return nil
	}
	err := s.errs[0]
	s.errs = s.errs[1:]
	return err
}

func (s *scriptedSink) Close() error { return nil }

func TestPublisherFailures(t *testing.T) {
	perm := sinks.Permanent(errors.New("too large"))
	tests := []struct {
		name        string
		err         error
		wantErr     bool
		wantWritten float64
		wantDropped float64
	}{
		{name: "accepted", err: nil, wantWritten: 3},
		{name: "whole batch retryable", err: errors.New("connection refused"), wantErr: true},
		{name: "whole batch permanent", err: perm, wantDropped: 3},
		{name: "one permanent", err: &sinks.BatchError{Failed: []sinks.ItemError{{Index: 1, Err: perm}}}, wantWritten: 2, wantDropped: 1},
		{name: "permanent and retryable", err: &sinks.BatchError{Failed: []sinks.ItemError{
			{Index: 0, Err: perm}, {Index: 2, Err: errors.New("leader moved")},
		}}, wantErr: true, wantWritten: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sk := &scriptedSink{errs: []error{tt.err}}
			m, _ := NewMetrics(nil)
			p := New(sk, "status", Options{Name: "s", Metrics: m})
			err := p.PublishEvents(context.Background(), events()[:3])
			if (err != nil) != tt.wantErr {
				t.Fatalf("PublishEvents = %v, want error %v", err, tt.wantErr)
			}
			if v := testutil.ToFloat64(m.events.WithLabelValues("s", resultWritten)); v != tt.wantWritten {
				t.Errorf("written = %v, want %v", v, tt.wantWritten)
			}
			if v := testutil.ToFloat64(m.events.WithLabelValues("s", resultDropped)); v != tt.wantDropped {
				t.Errorf("dropped = %v, want %v", v, tt.wantDropped)
			}
			r := sk.batches[0][1]
			if r.Topic != "status" || string(r.Key) != "c2" || r.Source.ContentType != ContentType {
				t.Errorf("record %+v", r)
			}
		})
	}
}
