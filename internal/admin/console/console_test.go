package console

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/internal/admin"
	"github.com/sluicehq/sluice/internal/e2etest"
	"github.com/sluicehq/sluice/internal/mqtttest"
	"github.com/sluicehq/sluice/rules"
	"github.com/sluicehq/sluice/sinks"
)

const testToken = "t0ken"

// testRules: "hot" routes temperatures above 50 with a transform and a
// rendered topic, "all" routes everything under plant/.
func testRules() rules.Config {
	return rules.Config{Rules: []rules.RuleConfig{
		{Name: "hot", Topics: []string{"plant/+/temp"}, When: "payload.temp > 50",
			Transform: `{"site": level(1), "temp": payload.temp}`,
			To:        []rules.TargetConfig{{Sink: "mem", Topic: "alerts.{{ level(1) }}"}}},
		{Name: "all", Topics: []string{"plant/#"}, To: []rules.TargetConfig{{Sink: "mem"}}},
	}}
}

// countSink accepts every record and counts them.
type countSink struct {
	mu sync.Mutex
	n  int
}

func (s *countSink) Write(_ context.Context, batch []sinks.Record) error {
	s.mu.Lock()
	s.n += len(batch)
	s.mu.Unlock()
	return nil
}

func (s *countSink) Close() error { return nil }

// rig is a broker, a pipeline with real rules and the admin listener
// serving a console, all in-process.
type rig struct {
	url  string
	mqtt string
	con  *Console
}

func startRig(t *testing.T, opts Options) *rig {
	t.Helper()
	reg := prometheus.NewRegistry()
	holder, errs := rules.NewHolder(testRules(), rules.Options{Metrics: rules.NewMetrics(reg)})
	if errs != nil {
		t.Fatal(errs)
	}
	icfg := ingest.DefaultConfig()
	icfg.DataDir = t.TempDir()
	p, err := ingest.New(icfg, ingest.Options{Router: holder, Registerer: reg, Sinks: map[string]sinks.Sink{"mem": &countSink{}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Open(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = p.Run(ctx) })
	b := mqtttest.StartSluice(t, mqtttest.SluiceConfig(), broker.Options{Consumer: p})
	opts.Broker, opts.Pipeline, opts.Rules, opts.Gatherer = b.Server, p, holder, reg
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	con, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := admin.New(admin.Config{Address: "127.0.0.1:0", Token: testToken}, nil, reg)
	con.Mount(srv)
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { _ = srv.Serve(ctx) })
	wg.Go(func() { _ = con.Run(ctx) })
	t.Cleanup(func() {
		b.Stop(10 * time.Second) // the broker stops before the pipeline
		cancel()
		wg.Wait()
	})
	return &rig{url: srv.BaseURL(), mqtt: b.Addr(), con: con}
}

// event is one Server-Sent Event.
type event struct {
	name string
	data string
}

// openStream GETs an SSE path with the token and returns its events; the
// stream is closed when the test ends.
func (r *rig) openStream(t *testing.T, path string) (<-chan event, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ch := make(chan event, 1024)
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); res.Body.Close(); <-done })
	go func() {
		defer close(done)
		defer close(ch)
		if res.StatusCode != http.StatusOK {
			return
		}
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		var ev event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				ev.name = line[7:]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[6:]
			case line == "" && ev.name != "":
				select {
				case ch <- ev:
				default: // the test stopped reading
				}
				ev = event{}
			}
		}
	}()
	return ch, res
}

// next waits for the next event named name whose data satisfies ok.
func next[T any](t *testing.T, ch <-chan event, name string, ok func(T) bool) T {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, open := <-ch:
			if !open {
				t.Fatalf("stream ended waiting for %q", name)
			}
			if ev.name != name {
				continue
			}
			var v T
			if err := json.Unmarshal([]byte(ev.data), &v); err != nil {
				t.Fatalf("decoding %s event %s: %v", name, ev.data, err)
			}
			if ok == nil || ok(v) {
				return v
			}
		case <-timeout:
			var zero T
			t.Fatalf("no matching %q event within 20s", name)
			return zero
		}
	}
}

func TestAssetsAndAuth(t *testing.T) {
	r := startRig(t, Options{})
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	tests := []struct {
		name, path, auth string
		status           int
		contains         string
	}{
		{"root redirects", "/", "", http.StatusFound, ""},
		{"page without token", "/console/", "", http.StatusOK, `<script src="console.js">`},
		{"script", "/console/console.js", "", http.StatusOK, "Authorization"},
		{"style", "/console/console.css", "", http.StatusOK, "--bg"},
		{"missing asset", "/console/nope.js", "", http.StatusNotFound, ""},
		{"stats without token", "/api/v1/stats/stream", "", http.StatusUnauthorized, "bearer token"},
		{"tap with a wrong token", "/api/v1/tap?filter=%23", "Bearer nope", http.StatusUnauthorized, "bearer token"},
		{"tap with an invalid filter", "/api/v1/tap?filter=a/%23/b", "Bearer " + testToken, http.StatusBadRequest, "invalid topic filter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, r.url+tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			res, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tt.status || !strings.Contains(string(body), tt.contains) {
				t.Fatalf("GET %s: %d %.200s, want %d containing %q", tt.path, res.StatusCode, body, tt.status, tt.contains)
			}
			if tt.status == http.StatusFound && res.Header.Get("Location") != "/console/" {
				t.Errorf("Location = %q", res.Header.Get("Location"))
			}
			if strings.HasPrefix(tt.path, "/console/") && tt.status == http.StatusOK &&
				!strings.Contains(res.Header.Get("Content-Security-Policy"), "default-src 'self'") {
				t.Errorf("no same-origin CSP on %s: %q", tt.path, res.Header.Get("Content-Security-Policy"))
			}
		})
	}
}

func TestStatsStream(t *testing.T) {
	r := startRig(t, Options{Interval: 50 * time.Millisecond})
	events, _ := r.openStream(t, "/api/v1/stats/stream")
	hist := next[struct {
		IntervalMS int64   `json:"interval_ms"`
		Points     []Point `json:"points"`
	}](t, events, "history", nil)
	if hist.IntervalMS != 50 {
		t.Errorf("history interval = %d ms, want 50", hist.IntervalMS)
	}
	c := e2etest.ConnectV3(t, r.mqtt, "dev-1")
	next(t, events, "sample", func(s Snapshot) bool { return s.Connections == 1 })
	for i := range 10 {
		tok := c.Publish(fmt.Sprintf("plant/s%d/temp", i%2), 1, false, fmt.Sprintf(`{"temp":%d}`, 40+i*5))
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	s := next(t, events, "sample", func(s Snapshot) bool {
		return s.Received == 10 && s.Accounting.Delivered == s.Accounting.Received && s.Accounting.Received > 0
	})
	// 10 messages: all routes each, hot passes for temp > 50 (i = 3..9).
	if a := s.Accounting; a.Messages != 10 || a.Received != 17 || !a.Balanced || a.Buffered != 0 {
		t.Errorf("accounting = %+v, want 10 messages, 17 outputs, balanced", a)
	}
	if len(s.Sinks) != 1 || s.Sinks[0].Name != "mem" || s.Sinks[0].Delivered != 17 || s.Sinks[0].Backlog != 0 {
		t.Errorf("sinks = %+v", s.Sinks)
	}
	got := map[string]RuleSample{}
	for _, rs := range s.Rules {
		got[rs.Rule] = rs
	}
	if h, a := got["hot"], got["all"]; h.Matched != 10 || h.Passed != 7 || a.Matched != 10 || a.Passed != 10 {
		t.Errorf("rule counts = %+v", s.Rules)
	}
	// Wait until the rates are back to idle: the burst is then in the
	// history a new stream starts with, and integrates to 10 messages.
	next(t, events, "sample", func(s Snapshot) bool { return s.In == 0 })
	late, _ := r.openStream(t, "/api/v1/stats/stream")
	h2 := next[struct {
		Points []Point `json:"points"`
	}](t, late, "history", nil)
	var sum float64
	for i := 1; i < len(h2.Points); i++ {
		sum += h2.Points[i].In * float64(h2.Points[i].T-h2.Points[i-1].T) / 1000
	}
	if sum < 9.9 || sum > 10.1 {
		t.Errorf("history integrates to %.2f messages in, want 10", sum)
	}
}

func TestStreamLimits(t *testing.T) {
	r := startRig(t, Options{MaxStreams: 2})
	for range 2 {
		if _, res := r.openStream(t, "/api/v1/stats/stream"); res.StatusCode != http.StatusOK {
			t.Fatalf("stream: %s", res.Status)
		}
	}
	if _, res := r.openStream(t, "/api/v1/stats/stream"); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third stats stream: %s, want 429", res.Status)
	}
	for i := range ingest.MaxTaps {
		if _, res := r.openStream(t, "/api/v1/tap?filter=%23"); res.StatusCode != http.StatusOK {
			t.Fatalf("tap %d: %s", i, res.Status)
		}
	}
	if _, res := r.openStream(t, "/api/v1/tap?filter=%23"); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("tap %d: %s, want 429", ingest.MaxTaps+1, res.Status)
	}
}
