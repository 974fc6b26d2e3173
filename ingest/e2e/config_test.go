package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// setup describes the sluice config a test runs with: one webhook sink
// "hook" and one rule "dev" routing Topics to it.
type setup struct {
	DataDir      string
	HookURL      string
	Body         string // webhook body mode: array, object or ndjson
	Topics       []string
	Durability   string // default spool
	SpoolMax     string // ingest.spool.max_bytes; "" keeps the default
	SegmentBytes string
	Policy       string
	BlockTimeout time.Duration
	CommitBytes  string        // ingest.spool.commit_bytes; "" keeps the default
	CommitEvery  time.Duration // ingest.spool.commit_interval; 0 keeps the default
	RetryInitial time.Duration // default 20ms
	RetryMax     time.Duration // default 500ms
	Lanes        int
	QueueSize    int    // ingest.queue_size; 0 keeps the default
	BatchRecords int    // ingest.batch.max_records; 0 keeps the default
	LogLevel     string // default info
}

// write renders the config into dir/sluice.yaml and returns its path.
func (s setup) write(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(path, []byte(s.render()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func (s setup) render() string {
	or := func(v, def string) string {
		if v == "" {
			return def
		}
		return v
	}
	dur := func(d, def time.Duration) string {
		if d == 0 {
			d = def
		}
		return d.String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "log:\n  level: %s\n  format: json\n", or(s.LogLevel, "info"))
	b.WriteString("broker:\n  listeners:\n    - name: e2e\n      address: 127.0.0.1:0\n      allow_anonymous: true\n")
	b.WriteString("admin:\n  address: 127.0.0.1:0\n")
	fmt.Fprintf(&b, "ingest:\n  data_dir: %q\n  durability: %s\n", s.DataDir, or(s.Durability, "spool"))
	if s.Lanes > 0 {
		fmt.Fprintf(&b, "  lanes: %d\n", s.Lanes)
	}
	if s.QueueSize > 0 {
		fmt.Fprintf(&b, "  queue_size: %d\n", s.QueueSize)
	}
	if s.BatchRecords > 0 {
		fmt.Fprintf(&b, "  batch:\n    max_records: %d\n", s.BatchRecords)
	}
	fmt.Fprintf(&b, "  retry:\n    initial: %s\n    max: %s\n", dur(s.RetryInitial, 20*time.Millisecond), dur(s.RetryMax, 500*time.Millisecond))
	b.WriteString("  spool:\n")
	if s.SpoolMax != "" {
		fmt.Fprintf(&b, "    max_bytes: %s\n", s.SpoolMax)
	}
	if s.SegmentBytes != "" {
		fmt.Fprintf(&b, "    segment_bytes: %s\n", s.SegmentBytes)
	}
	fmt.Fprintf(&b, "    policy: %s\n", or(s.Policy, "block"))
	fmt.Fprintf(&b, "    block_timeout: %s\n", dur(s.BlockTimeout, 5*time.Second))
	if s.CommitBytes != "" {
		fmt.Fprintf(&b, "    commit_bytes: %s\n", s.CommitBytes)
	}
	if s.CommitEvery > 0 {
		fmt.Fprintf(&b, "    commit_interval: %s\n", s.CommitEvery)
	}
	fmt.Fprintf(&b, "sinks:\n  hook:\n    type: webhook\n    webhook:\n      url: %q\n      body: %s\n      timeout: 5s\n", s.HookURL, or(s.Body, "array"))
	topics := s.Topics
	if len(topics) == 0 {
		topics = []string{"dev/#"}
	}
	b.WriteString("rules:\n  - name: dev\n    topics: [")
	for i, tp := range topics {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", tp)
	}
	b.WriteString("]\n    to:\n      - sink: hook\n")
	return b.String()
}
