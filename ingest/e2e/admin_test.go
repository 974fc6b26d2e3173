package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/ingest/spool"
)

// flowStats mirrors one entry of the accounting JSON.
type flowStats struct {
	Rule         string           `json:"rule"`
	Sink         string           `json:"sink"`
	Received     int64            `json:"received"`
	Delivered    int64            `json:"delivered"`
	Retried      int64            `json:"retried"`
	DeadLettered int64            `json:"dead_lettered"`
	Dropped      map[string]int64 `json:"dropped"`
	Buffered     int64            `json:"buffered"`
}

// balanced checks the accounting identity itself rather than trusting
// the API's "balanced" field.
func (f flowStats) balanced() bool {
	out := f.Delivered + f.Buffered + f.DeadLettered
	for _, n := range f.Dropped {
		out += n
	}
	return f.Received == out && f.Buffered >= 0
}

// balanced reports whether every flow balances and the API agrees.
func (s ingestState) balanced() bool {
	for _, f := range s.Accounting.Flows {
		if !f.balanced() {
			return false
		}
	}
	return s.Balanced
}

func (f flowStats) String() string {
	return fmt.Sprintf("%s->%s received %d delivered %d buffered %d dead_lettered %d dropped %v retried %d",
		f.Rule, f.Sink, f.Received, f.Delivered, f.Buffered, f.DeadLettered, f.Dropped, f.Retried)
}

// ingestState mirrors GET /api/v1/ingest.
type ingestState struct {
	Balanced   bool `json:"balanced"`
	Accounting struct {
		Messages     int64       `json:"messages"`
		Unrouted     int64       `json:"unrouted"`
		DecodeErrors int64       `json:"decode_errors"`
		Rejected     int64       `json:"rejected"`
		Flows        []flowStats `json:"flows"`
	} `json:"accounting"`
	Spool struct {
		Bytes          int64
		Segments       int
		BlockedAppends int64
		Appended       uint64
		Fsyncs         uint64
		FsyncTime      int64 // ns
		FsyncMax       int64 // ns
		FsyncBuckets   []uint64
		AvgBatch       float64
	} `json:"spool"`
}

// fsyncTail summarizes the spool's fsync durations: the bucket bounds
// (spool.FsyncBucketBounds) holding the median and the 99th percentile,
// and the longest.
func (s ingestState) fsyncTail() string {
	var total uint64
	for _, c := range s.Spool.FsyncBuckets {
		total += c
	}
	if total == 0 {
		return "no fsync"
	}
	bound := func(q float64) string {
		var seen uint64
		for i, c := range s.Spool.FsyncBuckets {
			seen += c
			if float64(seen) >= q*float64(total) {
				if i < len(spool.FsyncBucketBounds) {
					return "≤" + spool.FsyncBucketBounds[i].String()
				}
				return ">" + spool.FsyncBucketBounds[len(spool.FsyncBucketBounds)-1].String()
			}
		}
		return "?"
	}
	return fmt.Sprintf("fsync p50 %s p99 %s max %v", bound(0.5), bound(0.99), time.Duration(s.Spool.FsyncMax).Round(10*time.Microsecond))
}

// flow returns the (rule, sink) flow, zero when absent.
func (s ingestState) flow(rule, sink string) flowStats {
	for _, f := range s.Accounting.Flows {
		if f.Rule == rule && f.Sink == sink {
			return f
		}
	}
	return flowStats{Rule: rule, Sink: sink}
}

// buffered sums buffered over every flow.
func (s ingestState) buffered() int64 {
	var n int64
	for _, f := range s.Accounting.Flows {
		n += f.Buffered
	}
	return n
}

func (s ingestState) String() string {
	parts := []string{fmt.Sprintf("balanced=%v messages=%d rejected=%d unrouted=%d spool_bytes=%d",
		s.Balanced, s.Accounting.Messages, s.Accounting.Rejected, s.Accounting.Unrouted, s.Spool.Bytes)}
	for _, f := range s.Accounting.Flows {
		parts = append(parts, f.String())
	}
	return strings.Join(parts, "; ")
}

var adminHTTP = &http.Client{Timeout: 10 * time.Second}

// ingest reads the accounting from the admin API.
func (p *proc) ingest() (ingestState, error) {
	var s ingestState
	resp, err := adminHTTP.Get(p.AdminURL + "/api/v1/ingest")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("GET /api/v1/ingest: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return s, fmt.Errorf("decoding /api/v1/ingest: %w", err)
	}
	return s, nil
}

// waitSettled polls the accounting until it balances with nothing
// buffered, and returns it. A test that expects records to stay buffered
// uses waitBalanced instead.
func (p *proc) waitSettled(t testing.TB, timeout time.Duration) ingestState {
	t.Helper()
	return p.waitState(t, timeout, "balanced with buffered 0", func(s ingestState) bool {
		return s.balanced() && s.buffered() == 0
	})
}

// waitBalanced polls until the accounting balances (records may still be
// buffered).
func (p *proc) waitBalanced(t testing.TB, timeout time.Duration) ingestState {
	t.Helper()
	return p.waitState(t, timeout, "balanced", func(s ingestState) bool { return s.balanced() })
}

func (p *proc) waitState(t testing.TB, timeout time.Duration, what string, ok func(ingestState) bool) ingestState {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last ingestState
	var lastErr error
	for time.Now().Before(deadline) {
		last, lastErr = p.ingest()
		if lastErr == nil && ok(last) {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("accounting not %s after %v: %v (last error %v)", what, timeout, last, lastErr)
	return last
}

// eventually polls cond every 50ms until it holds or timeout passes; then
// it fails the test with what cond last said.
func eventually(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after %v: %s", timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkEndpoints expects /healthz and /readyz to answer 200 and /metrics
// to export the same per-flow counters as the JSON accounting st (taken
// at rest, so both reads see the same numbers).
func (p *proc) checkEndpoints(t testing.TB, st ingestState) {
	t.Helper()
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := adminHTTP.Get(p.AdminURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", path, resp.Status)
		}
	}
	resp, err := adminHTTP.Get(p.AdminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range st.Accounting.Flows {
		labels := fmt.Sprintf(`{rule=%q,sink=%q}`, f.Rule, f.Sink)
		for name, want := range map[string]int64{
			"sluice_ingest_received_total":      f.Received,
			"sluice_ingest_delivered_total":     f.Delivered,
			"sluice_ingest_dead_lettered_total": f.DeadLettered,
			"sluice_ingest_buffered":            f.Buffered,
		} {
			line := fmt.Sprintf("%s%s %d\n", name, labels, want)
			if !strings.Contains(string(body), line) {
				t.Errorf("/metrics lacks %q", strings.TrimSpace(line))
			}
		}
	}
}
