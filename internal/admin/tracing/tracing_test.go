package tracing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/internal/mqtttest"
	"github.com/sluicehq/sluice/sinks"
)

// receiver is an OTLP/HTTP receiver: it decodes every export request.
type receiver struct {
	mu      sync.Mutex
	spans   []otlpSpan
	service string
	status  int // answer; 0: 200
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/json" || req.Header.Get("X-Key") != "k" {
		http.Error(w, "bad request "+req.URL.Path, http.StatusBadRequest)
		return
	}
	if r.status != 0 {
		http.Error(w, "unavailable", r.status)
		return
	}
	var got otlpRequest
	if err := json.Unmarshal(body, &got); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, rs := range got.ResourceSpans {
		for _, a := range rs.Resource.Attributes {
			if a.Key == "service.name" && a.Value.String != nil {
				r.service = *a.Value.String
			}
		}
		for _, ss := range rs.ScopeSpans {
			r.spans = append(r.spans, ss.Spans...)
		}
	}
	w.WriteHeader(http.StatusOK)
}

func (r *receiver) byName() map[string][]otlpSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string][]otlpSpan{}
	for _, s := range r.spans {
		m[s.Name] = append(m[s.Name], s)
	}
	return m
}

// memSink records batches; it fails the first write when failFirst is set.
type memSink struct {
	mu        sync.Mutex
	writes    int
	failFirst bool
}

func (s *memSink) Write(_ context.Context, batch []sinks.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.failFirst && s.writes == 1 {
		return errors.New("destination busy")
	}
	return nil
}

func (s *memSink) Close() error { return nil }

// connSink is a memSink that connects.
type connSink struct{ memSink }

func (s *connSink) Connect(context.Context) error { return nil }

// TestPipelineSpans publishes with a real MQTT client through a real
// broker and ingest pipeline and checks the trace the receiver gets.
func TestPipelineSpans(t *testing.T) {
	rcv := &receiver{}
	hs := httptest.NewServer(rcv)
	defer hs.Close()
	reg := prometheus.NewRegistry()
	tr, err := New(Config{Endpoint: hs.URL + "/", SampleRatio: 1, ServiceName: "plant-a", Headers: map[string]string{"X-Key": "k"}},
		Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	trDone := make(chan struct{})
	go func() { defer close(trDone); _ = tr.Run(ctx) }()

	sink := &connSink{memSink{failFirst: true}}
	wrapped := tr.Sinks(map[string]sinks.Sink{"mem": sink})
	if _, ok := wrapped["mem"].(sinks.Connector); !ok {
		t.Fatal("the wrapper hides the sink's Connect")
	}
	icfg := ingest.DefaultConfig()
	icfg.DataDir = t.TempDir()
	icfg.Retry.Initial = 5 * time.Millisecond
	router := ingest.RouterFunc(func(in *ingest.Input, dst []ingest.Output) []ingest.Output {
		return append(dst, ingest.Output{Rule: "all", Sink: "mem", Value: in.Msg.Payload})
	})
	p, err := ingest.New(icfg, ingest.Options{Sinks: wrapped, Router: tr.Router(router)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Open(); err != nil {
		t.Fatal(err)
	}
	pctx, stopPipeline := context.WithCancel(context.Background())
	pDone := make(chan error, 1)
	go func() { pDone <- p.Run(pctx) }()
	defer func() {
		stopPipeline()
		<-pDone
		cancel()
		<-trDone
	}()

	b := mqtttest.StartSluice(t, mqtttest.SluiceConfig(), broker.Options{Consumer: tr.Consumer(p)})
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID("press-7"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(50)
	if tok := c.Publish("line/1/press", 1, false, `{"bar": 3}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	var spans map[string][]otlpSpan
	deadline := time.Now().Add(10 * time.Second)
	for {
		spans = rcv.byName()
		if len(spans["mqtt.publish"]) == 1 && len(spans["sink.write"]) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("spans received: %v", spans)
		}
		time.Sleep(20 * time.Millisecond)
	}
	root := spans["mqtt.publish"][0]
	if len(root.TraceID) != 32 || len(root.SpanID) != 16 || root.ParentSpanID != "" || root.Status != nil {
		t.Errorf("root span: %+v", root)
	}
	attrs := map[string]string{}
	for _, a := range root.Attributes {
		if a.Value.String != nil {
			attrs[a.Key] = *a.Value.String
		} else {
			attrs[a.Key] = *a.Value.Int
		}
	}
	if attrs["messaging.destination.name"] != "line/1/press" || attrs["messaging.client.id"] != "press-7" || attrs["mqtt.qos"] != "1" {
		t.Errorf("root attributes: %v", attrs)
	}
	for _, name := range []string{"decode", "rules.route", "ingest.durable", "sink.write"} {
		if len(spans[name]) == 0 {
			t.Errorf("no %s span", name)
		}
		for _, s := range spans[name] {
			if s.TraceID != root.TraceID || s.ParentSpanID != root.SpanID || s.SpanID == root.SpanID {
				t.Errorf("%s span not a child of the root: %+v (root %s/%s)", name, s, root.TraceID, root.SpanID)
			}
			if s.Start > s.End {
				t.Errorf("%s span ends before it starts: %s > %s", name, s.Start, s.End)
			}
		}
	}
	writes := spans["sink.write"]
	failed := 0
	for _, w := range writes {
		if w.Status != nil && w.Status.Code == 2 && w.Status.Message == "destination busy" {
			failed++
		}
	}
	if failed != 1 {
		t.Errorf("want one failed and one good sink.write attempt: %+v", writes)
	}
	if rcv.service != "plant-a" {
		t.Errorf("service.name %q", rcv.service)
	}
	for testutil.ToFloat64(tr.exp.exported) < 6 { // counted after the receiver answers
		if time.Now().After(deadline) {
			t.Fatalf("exported counter %v, want >= 6", testutil.ToFloat64(tr.exp.exported))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSampling(t *testing.T) {
	for _, tc := range []struct {
		ratio    float64
		min, max int // of 10000
	}{
		{0, 0, 0},
		{0.25, 2300, 2700},
		{0.999999999999, 9990, 10000},
		{1, 10000, 10000},
	} {
		t.Run("", func(t *testing.T) {
			tr, err := New(Config{Endpoint: "http://127.0.0.1:1", SampleRatio: tc.ratio}, Options{})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			base := time.Now()
			for i := range 10000 {
				id := traceID("c", "t", base.Add(time.Duration(i)))
				if tr.sampled(id) {
					n++
				}
			}
			if n < tc.min || n > tc.max {
				t.Errorf("ratio %v: %d of 10000 sampled, want %d..%d", tc.ratio, n, tc.min, tc.max)
			}
		})
	}
	a, b := traceID("c", "t", time.Unix(0, 5)), traceID("c", "t", time.Unix(0, 5))
	if a != b || a == traceID("c", "t", time.Unix(0, 6)) || a == traceID("c", "u", time.Unix(0, 5)) {
		t.Error("trace ids are not a function of (client, topic, time)")
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		errs int
	}{
		{"default", DefaultConfig(), 0},
		{"endpoint", Config{Endpoint: "https://otel.example:4318", SampleRatio: 0.5}, 0},
		{"bad scheme", Config{Endpoint: "grpc://otel:4317", SampleRatio: 0.5}, 1},
		{"no host", Config{Endpoint: "http://", SampleRatio: 0.5}, 1},
		{"ratio", Config{SampleRatio: 1.5}, 1},
		{"both", Config{Endpoint: "otel:4318", SampleRatio: -1}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if errs := tc.cfg.Validate(); len(errs) != tc.errs {
				t.Errorf("errors %v, want %d", errs, tc.errs)
			}
		})
	}
	if tr, err := New(DefaultConfig(), Options{}); tr != nil || err != nil {
		t.Errorf("disabled: %v %v", tr, err)
	}
	var off *Tracer
	set := map[string]sinks.Sink{"x": &memSink{}}
	if off.Sinks(set)["x"] != set["x"] || off.Consumer(nil) != nil {
		t.Error("a nil Tracer wraps")
	}
}

func TestExporterDrops(t *testing.T) {
	rcv := &receiver{status: http.StatusServiceUnavailable}
	hs := httptest.NewServer(rcv)
	defer hs.Close()
	tr, err := New(Config{Endpoint: hs.URL, SampleRatio: 1, Headers: map[string]string{"X-Key": "k"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := span{trace: traceID("c", "t", time.Now()), id: newSpanID(), name: "x", start: time.Now(), end: time.Now()}
	for range queueSpans + 10 {
		tr.exp.add(s)
	}
	if got := testutil.ToFloat64(tr.exp.dropped.WithLabelValues("queue_full")); got != 10 {
		t.Errorf("queue_full drops %v, want 10", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Run flushes the queue once and returns
	if err := tr.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(tr.exp.dropped.WithLabelValues("export_failed")); got != queueSpans {
		t.Errorf("export_failed drops %v, want %d", got, queueSpans)
	}
}

// nopConsumer acks at once.
type nopConsumer struct{}

func (nopConsumer) Deliver(_ context.Context, _ *broker.Message, ack func(error)) { ack(nil) }

// BenchmarkConsumer is the tracing cost per message on the Deliver path,
// sampled and not (spans go to the queue; no exporter runs).
func BenchmarkConsumer(b *testing.B) {
	for _, ratio := range []float64{0.01, 1} {
		b.Run(fmt.Sprint("ratio=", ratio), func(b *testing.B) {
			tr, err := New(Config{Endpoint: "http://127.0.0.1:1", SampleRatio: ratio}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			c := tr.Consumer(nopConsumer{})
			m := &broker.Message{Topic: "plant/line1/press7/temp", ClientID: "press-7", Payload: []byte(`{"t":1}`)}
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				m.ReceivedAt = time.Unix(0, int64(i))
				c.Deliver(context.Background(), m, func(error) {})
				if i%queueSpans == 0 {
					for len(tr.exp.queue) > 0 {
						<-tr.exp.queue
					}
				}
			}
		})
	}
}
