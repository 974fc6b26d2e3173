package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/internal/chtest"
	"github.com/sluicehq/sluice/rules"
	"github.com/sluicehq/sluice/sinks"
)

// pipelineRules is the README's example: telemetry topics, transformed
// into the wide table's row.
const pipelineRules = `
- name: line-telemetry
  topics: ["plant/+/line/+/telemetry"]
  let: { site: level(1), line: level(3) }
  transform: '{"ts": received_at, "site": site, "line": line, "device": clientid, "temperature": payload.temp, "rpm": payload.rpm, "state": payload.state ?? "unknown"}'
  to:
    - sink: ch
`

// TestPipeline drives MQTT messages through the rules engine, the spool
// and the runner into ClickHouse (the path the sluice binary takes after
// the broker): rows arrive with the transform's values, a message whose
// row does not fit is dead-lettered with its column and reason while the
// others go in, and messages accepted while the server is down arrive
// once it is back.
func TestPipeline(t *testing.T) {
	srv := chtest.Start(t, chtest.Options{})
	db := srv.Database(t)
	s, err := New(Config{
		Addresses: []string{srv.Addr()}, Database: db, Table: "telemetry",
		CreateTable: true, DDL: "telemetry_wide", DialTimeout: time.Second, WriteTimeout: 2 * time.Second,
		Batch: BatchConfig{Linger: 50 * time.Millisecond},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	engine, errs := rules.CompileBytes("rules.yaml", []byte(pipelineRules), rules.Options{Sinks: []string{"ch"}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	cfg := ingest.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Retry.Initial, cfg.Retry.Max = 20*time.Millisecond, 200*time.Millisecond
	cfg.ShutdownTimeout = 5 * time.Second
	p, err := ingest.New(cfg, ingest.Options{Router: engine, Decoder: rules.JSONDecoder{}, Sinks: map[string]sinks.Sink{"ch": s}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		s.Close()
	}()

	base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	publish := func(n int, payload string) {
		t.Helper()
		m := &broker.Message{
			Topic: fmt.Sprintf("plant/berlin/line/%d/telemetry", n%3), ClientID: fmt.Sprintf("press-%02d", n%5), QoS: 1,
			Payload: []byte(payload), ReceivedAt: base.Add(time.Duration(n) * time.Second),
		}
		acked := make(chan error, 1)
		p.Deliver(context.Background(), m, func(err error) { acked <- err })
		select {
		case err := <-acked:
			if err != nil {
				t.Fatalf("message %d refused: %v", n, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d: no ack", n)
		}
	}
	count := func() int {
		out, err := srv.Query(context.Background(), "SELECT count() FROM "+db+".telemetry FORMAT TSV")
		if err != nil {
			return -1
		}
		var n int
		fmt.Sscan(out, &n)
		return n
	}
	waitCount := func(want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for count() != want {
			if time.Now().After(deadline) {
				t.Fatalf("table holds %d rows, want %d", count(), want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	for n := 0; n < 100; n++ {
		payload := fmt.Sprintf(`{"temp": %d.5, "rpm": %d}`, n, 1000+n)
		if n == 42 {
			payload = `{"temp": "hot", "rpm": 1}` // the transform keeps the string: the row cannot be stored
		}
		publish(n, payload)
	}
	waitCount(99)
	got := rows(t, srv, "SELECT ts, site, line, device, temperature, rpm, state FROM "+db+".telemetry WHERE rpm = 1007")
	if want := "2024-05-01 12:00:07\tberlin\t1\tpress-02\t7.5\t1007\tunknown"; len(got) != 1 || got[0] != want {
		t.Fatalf("row = %q, want %q", got, want)
	}
	entries, err := p.DeadLetters().List(0, 10, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Sink != "ch" || entries[0].Rule != "line-telemetry" ||
		!strings.Contains(entries[0].Error, `column temperature (Nullable(Float32)): want a number for Float32, got string "hot"`) {
		t.Fatalf("dead letters = %+v, want the row with temp \"hot\" naming its column", entries)
	}

	// The server goes away: messages are still acknowledged (spooled) and
	// go in once it is back.
	srv.Stop()
	for n := 100; n < 150; n++ {
		publish(n, fmt.Sprintf(`{"temp": 1, "rpm": %d, "state": "running"}`, 1000+n))
	}
	time.Sleep(300 * time.Millisecond)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitCount(149)
	if got := rows(t, srv, "SELECT uniqExact(rpm), countIf(state = 'running') FROM "+db+".telemetry"); len(got) != 1 || got[0] != "149\t50" {
		t.Fatalf("distinct rpm, running = %q, want 149 and 50", got)
	}
	// The runner counts a delivery just after the insert returns.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var flow ingest.FlowStats
		for _, f := range p.Accounting().Snapshot().Flows {
			if f.Sink == "ch" {
				flow = f
			}
		}
		if flow.Delivered == 149 && flow.DeadLettered == 1 && flow.Balanced() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flow %+v, want 149 delivered and 1 dead-lettered", flow)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
