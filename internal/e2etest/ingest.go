package e2etest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// FlowStats is one (rule, sink) entry of GET /api/v1/ingest.
type FlowStats struct {
	Rule         string           `json:"rule"`
	Sink         string           `json:"sink"`
	Received     int64            `json:"received"`
	Delivered    int64            `json:"delivered"`
	Retried      int64            `json:"retried"`
	DeadLettered int64            `json:"dead_lettered"`
	Dropped      map[string]int64 `json:"dropped"`
	Buffered     int64            `json:"buffered"`
}

// SinkStats is one sink entry of GET /api/v1/ingest.
type SinkStats struct {
	Name        string  `json:"name"`
	Connected   bool    `json:"connected"`
	Writes      int64   `json:"writes"`
	WriteErrors int64   `json:"write_errors"`
	Records     int64   `json:"records"`
	AvgBatch    float64 `json:"avg_batch"`
	AvgLatency  string  `json:"avg_latency"`
	LastError   string  `json:"last_error"`
}

// IngestStats is the part of GET /api/v1/ingest the tests read.
type IngestStats struct {
	Accounting struct {
		Messages     int64       `json:"messages"`
		Unrouted     int64       `json:"unrouted"`
		DecodeErrors int64       `json:"decode_errors"`
		Rejected     int64       `json:"rejected"`
		Corrupt      int64       `json:"corrupt_records"`
		Flows        []FlowStats `json:"flows"`
	} `json:"accounting"`
	Balanced bool        `json:"balanced"`
	Sinks    []SinkStats `json:"sinks"`
}

// Flow returns the accounting of (rule, sink), zero when absent.
func (s IngestStats) Flow(rule, sink string) FlowStats {
	for _, f := range s.Accounting.Flows {
		if f.Rule == rule && f.Sink == sink {
			return f
		}
	}
	return FlowStats{Rule: rule, Sink: sink}
}

// Ingest reads GET /api/v1/ingest.
func (s *Proc) Ingest() (IngestStats, error) {
	var st IngestStats
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(s.AdminURL + "/api/v1/ingest")
	if err != nil {
		return st, fmt.Errorf("getting /api/v1/ingest: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return st, fmt.Errorf("reading /api/v1/ingest: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /api/v1/ingest: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("decoding /api/v1/ingest: %w: %s", err, body)
	}
	return st, nil
}

// WaitIngest polls the accounting until cond holds, failing after
// timeout with the last snapshot.
func (s *Proc) WaitIngest(what string, timeout time.Duration, cond func(IngestStats) bool) IngestStats {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := s.Ingest()
		if err == nil && cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("waiting %v for %s: last accounting %+v, err %v", timeout, what, st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Drained waits until the flow of (rule, sink) has received at least
// want records and holds none, and returns the final accounting.
func (s *Proc) Drained(rule, sink string, want int64, timeout time.Duration) IngestStats {
	s.t.Helper()
	return s.WaitIngest(fmt.Sprintf("%s→%s to drain %d records", rule, sink, want), timeout, func(st IngestStats) bool {
		f := st.Flow(rule, sink)
		return f.Received >= want && f.Buffered == 0
	})
}

// CheckBalanced fails unless the flow of (rule, sink) is settled: every
// record it received delivered or dead-lettered, deadLettered of them
// dead-lettered, none buffered or dropped, no message refused or corrupt,
// and, when jsonPayloads, none undecodable, and the whole accounting
// balanced.
func CheckBalanced(t testing.TB, st IngestStats, rule, sink string, deadLettered int64, jsonPayloads bool) {
	t.Helper()
	if !st.Balanced {
		t.Errorf("accounting not balanced: %+v", st.Accounting)
	}
	f := st.Flow(rule, sink)
	var dropped int64
	for _, n := range f.Dropped {
		dropped += n
	}
	if f.Buffered != 0 || f.DeadLettered != deadLettered || dropped != 0 || f.Delivered != f.Received-deadLettered {
		t.Errorf("flow %s→%s: %+v, want %d dead-lettered and every other received record delivered", rule, sink, f, deadLettered)
	}
	if st.Accounting.Rejected != 0 || st.Accounting.Corrupt != 0 {
		t.Errorf("accounting: rejected %d, corrupt %d, want 0", st.Accounting.Rejected, st.Accounting.Corrupt)
	}
	if jsonPayloads && st.Accounting.DecodeErrors != 0 {
		t.Errorf("accounting: %d decode errors, want 0 (every payload is JSON)", st.Accounting.DecodeErrors)
	}
}
