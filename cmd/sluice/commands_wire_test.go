package main

import (
	"context"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/broker/command/status"
	"github.com/sluicehq/sluice/sinks"
)

// TestRuleSinkMetrics: what the rules' "commands" sink counts reaches the
// process registry (sluice_commands_rule_records_total).
func TestRuleSinkMetrics(t *testing.T) {
	cfg := defaultConfig()
	cfg.Commands.Enabled = true
	cfg.Commands.Dir = t.TempDir()
	reg := prometheus.NewRegistry()
	set := map[string]sinks.Sink{}
	if _, err := wireCommands(cfg, set, slog.New(slog.DiscardHandler), reg); err != nil {
		t.Fatal(err)
	}
	sk := set[status.SinkName]
	if sk == nil {
		t.Fatal("no commands sink wired")
	}
	// The service is not running: the submit fails and is counted as
	// retried.
	if err := sk.Write(context.Background(), []sinks.Record{{Rule: "r1", Topic: "devices/d1/commands", Value: []byte("x")}}); err == nil {
		t.Fatal("write to a service that is not running succeeded")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := -1.0
	for _, mf := range mfs {
		if mf.GetName() != "sluice_commands_rule_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "retried" {
					got = m.GetCounter().GetValue()
				}
			}
		}
	}
	if got != 1 {
		t.Errorf("sluice_commands_rule_records_total{result=\"retried\"} = %v in the registry, want 1", got)
	}
}
