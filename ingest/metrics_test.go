package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/sluicehq/sluice/sinks"
)

func TestMetricsExported(t *testing.T) {
	cfg := testConfig(t)
	reg := prometheus.NewRegistry()
	sink := &memSink{}
	p, err := New(cfg, Options{Router: routeAll("mem"), Sinks: map[string]sinks.Sink{"mem": sink}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	h := &harness{t: t, p: p}
	for i := 0; i < 3; i++ {
		if err := waitAck(t, h.publish("c", i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "delivered", func() bool { return len(sink.records()) == 3 })
	eventually(t, "counted", func() bool { return flowOf(p.Accounting().Snapshot(), "all", "mem").Delivered == 3 })
	for name, want := range map[string]float64{
		"sluice_ingest_messages_total":   3,
		"sluice_ingest_received_total":   3,
		"sluice_ingest_delivered_total":  3,
		"sluice_sink_sent_records_total": 3,
		"sluice_sink_connected":          1,
	} {
		if got := gatherValue(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "sluice_sink_write_seconds"); err != nil || n != 1 {
		t.Errorf("sluice_sink_write_seconds series = %d, %v", n, err)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}

func gatherValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
		return sum
	}
	t.Errorf("metric %s not exported", name)
	return -1
}
