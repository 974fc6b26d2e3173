package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluicehq/sluice/internal/admin"
	"github.com/sluicehq/sluice/internal/mqtttest"
)

const adminToken = "t0ken"

// testApp is a Sluice running in-process on loopback ports.
type testApp struct {
	*app
	mqttAddr, adminURL string
}

// startApp loads cfgYAML (with %MQTT%, %ADMIN% and %DATA% replaced by two
// free ports and a temporary directory), runs the app until the test
// ends and waits for /healthz.
func startApp(t *testing.T, cfgYAML string) *testApp {
	t.Helper()
	mqttPort, err := mqtttest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	adminPort, err := mqtttest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgYAML = strings.NewReplacer("%MQTT%", fmt.Sprint(mqttPort), "%ADMIN%", fmt.Sprint(adminPort),
		"%DATA%", filepath.Join(dir, "data")).Replace(cfgYAML)
	path := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(path, []byte(cfgYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(path, nil)
	if err != nil {
		t.Fatalf("loading config: %v", err)
	}
	log := slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := newApp(cfg, path, nil, log)
	if err != nil {
		t.Fatalf("building app: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("app: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("app did not stop")
		}
	})
	ta := &testApp{app: a, mqttAddr: fmt.Sprintf("127.0.0.1:%d", mqttPort), adminURL: fmt.Sprintf("http://127.0.0.1:%d", adminPort)}
	eventually(t, 10*time.Second, "admin listener up", func() bool {
		resp, err := http.Get(ta.adminURL + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	return ta
}

// tWriter sends log lines to t.Log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// eventually polls cond every 20ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
	}
}

// get fetches path with auth ("" for none) and decodes the JSON object.
func (ta *testApp) get(t *testing.T, path, auth string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", ta.adminURL+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("GET %s: %d, not a JSON object: %s", path, resp.StatusCode, data)
	}
	return resp.StatusCode, out
}

// flaky is a webhook receiver that fails with 503 while failing is set.
type flaky struct {
	failing  atomic.Bool
	received atomic.Int64
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	if f.failing.Load() {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	f.received.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

const endToEndConfig = `
log: {level: warn}
broker:
  listeners: [{name: plant, address: "127.0.0.1:%MQTT%", allow_anonymous: true}]
ingest:
  data_dir: %DATA%
  retry: {initial: 10ms, max: 50ms}
admin:
  address: "127.0.0.1:%ADMIN%"
  token: ` + adminToken + `
  required_sinks: [hook]
  tracing: {endpoint: "%OTLP%", sample_ratio: 1}
sinks:
  hook: {type: webhook, webhook: {url: "%HOOK%", body: array}}
rules:
  - name: to-hook
    topics: ["line/+/temp"]
    to: [{sink: hook}]
`

// TestAdminAPIEndToEnd drives a running Sluice: a real MQTT client
// publishes, the rule routes to a webhook that goes down and comes back,
// and the API and /readyz show it; the token is enforced throughout.
func TestAdminAPIEndToEnd(t *testing.T) {
	hook := &flaky{}
	hs := httptest.NewServer(hook)
	defer hs.Close()
	otlp := &spanNames{}
	rs := httptest.NewServer(otlp)
	defer rs.Close()
	ta := startApp(t, strings.NewReplacer("%HOOK%", hs.URL, "%OTLP%", rs.URL).Replace(endToEndConfig))
	bearer := "Bearer " + adminToken

	t.Run("auth", func(t *testing.T) {
		for _, path := range []string{"/api/v1/clients", "/api/v1/rules/stats", "/api/v1/sinks", "/api/v1/ingest", "/api/openapi.json"} {
			for _, auth := range []string{"", "Bearer wrong", adminToken} {
				if status, body := ta.get(t, path, auth); status != http.StatusUnauthorized || body["error"] == nil {
					t.Errorf("GET %s with %q: %d %v, want 401 with an error", path, auth, status, body)
				}
			}
		}
		if status, _ := ta.get(t, "/healthz", ""); status != 200 {
			t.Errorf("/healthz without a token: %d", status)
		}
	})

	ready := func() (int, map[string]any) { return ta.get(t, "/readyz", "") }
	eventually(t, 10*time.Second, "ready", func() bool { s, _ := ready(); return s == 200 })
	if _, body := ready(); fmt.Sprint(body["checks"]) != "map[broker:ok ingest:ok sinks:ok]" {
		t.Errorf("readyz checks: %v", body["checks"])
	}

	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + ta.mqttAddr).SetClientID("line-1").SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(50)
	publish := func(payload string) {
		t.Helper()
		if tok := c.Publish("line/1/temp", 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	publish(`{"t": 21.5}`)
	eventually(t, 10*time.Second, "webhook received the message", func() bool { return hook.received.Load() == 1 })

	t.Run("clients", func(t *testing.T) {
		status, body := ta.get(t, "/api/v1/clients/line-1", bearer)
		if status != 200 || body["listener"] != "plant" || body["protocol_version"] != 4.0 {
			t.Errorf("%d %v", status, body)
		}
	})
	t.Run("rule stats", func(t *testing.T) {
		var body map[string]any
		eventually(t, 5*time.Second, "rule counted", func() bool {
			_, body = ta.get(t, "/api/v1/rules/stats", bearer)
			rules, _ := body["rules"].([]any)
			if len(rules) != 1 {
				return false
			}
			r := rules[0].(map[string]any)
			outs, _ := r["outputs"].([]any)
			if r["name"] != "to-hook" || r["matched"] != 1.0 || r["passed"] != 1.0 || len(outs) != 1 {
				return false
			}
			o := outs[0].(map[string]any)
			return o["sink"] == "hook" && o["delivered"] == 1.0 && o["balanced"] == true
		})
	})

	hook.failing.Store(true)
	publish(`{"t": 22.5}`)
	t.Run("sink down", func(t *testing.T) {
		eventually(t, 10*time.Second, "readyz reports the required sink down", func() bool {
			status, body := ready()
			checks, _ := body["checks"].(map[string]any)
			s, _ := checks["sinks"].(string)
			return status == http.StatusServiceUnavailable && strings.Contains(s, "hook down") && checks["broker"] == "ok"
		})
		status, body := ta.get(t, "/api/v1/sinks/hook", bearer)
		if status != 200 || body["connected"] != false || body["lag_records"] != 1.0 || body["lag_bytes"].(float64) <= 0 ||
			!strings.Contains(fmt.Sprint(body["last_error"]), "503") {
			t.Errorf("sink while down: %d %v", status, body)
		}
	})
	hook.failing.Store(false)
	t.Run("sink back", func(t *testing.T) {
		eventually(t, 10*time.Second, "ready again with the backlog delivered", func() bool {
			status, _ := ready()
			_, sink := ta.get(t, "/api/v1/sinks/hook", bearer)
			return status == 200 && sink["lag_records"] == 0.0 && hook.received.Load() == 2
		})
	})
	t.Run("metric names", func(t *testing.T) { auditMetricNames(t, ta.app) })
	t.Run("tracing", func(t *testing.T) {
		eventually(t, 10*time.Second, "spans of both messages exported", func() bool {
			n := otlp.counts()
			// Two messages; the second's first write failed.
			return n["mqtt.publish"] == 2 && n["rules.route"] == 2 && n["sink.write"] >= 3
		})
	})
}

// spanNames is an OTLP/HTTP JSON receiver counting spans by name.
type spanNames struct {
	mu sync.Mutex
	n  map[string]int
}

func (s *spanNames) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ResourceSpans []struct {
			ScopeSpans []struct {
				Spans []struct{ Name string }
			}
		}
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || r.URL.Path != "/v1/traces" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[string]int{}
	}
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				s.n[sp.Name]++
			}
		}
	}
}

func (s *spanNames) counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.n {
		out[k] = v
	}
	return out
}

// TestOpenAPICoversRoutes checks the OpenAPI document against the routes
// the wired app registers, both ways: every registered route is
// documented, and every documented operation reaches a registered handler.
func TestOpenAPICoversRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string `json:"openapi"`
		Info    struct {
			Title, Version string
		} `json:"info"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components map[string]json.RawMessage            `json:"components"`
	}
	if err := json.Unmarshal(admin.OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") || doc.Info.Title == "" || doc.Info.Version == "" || len(doc.Paths) == 0 || doc.Components["schemas"] == nil {
		t.Fatalf("openapi.json lacks required top-level fields: openapi=%q info=%+v paths=%d", doc.OpenAPI, doc.Info, len(doc.Paths))
	}
	refs := regexp.MustCompile(`"\$ref":\s*"#/components/(\w+)/(\w+)"`).FindAllStringSubmatch(string(admin.OpenAPI()), -1)
	for _, m := range refs {
		var section map[string]json.RawMessage
		if json.Unmarshal(doc.Components[m[1]], &section) != nil || section[m[2]] == nil {
			t.Errorf("dangling $ref #/components/%s/%s", m[1], m[2])
		}
	}

	cfg := defaultConfig()
	cfg.Admin.Address = "127.0.0.1:0"
	cfg.Ingest.DataDir = t.TempDir()
	cfg.Commands.Enabled = true // mounts /api/v1/commands
	a, err := newApp(cfg, "", nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer closeSinks(a.sinks)
	var routes []string // the API's: under /api/ (the console's pages are not)
	for _, r := range a.admin.Routes() {
		if _, path, _ := strings.Cut(r, " "); strings.HasPrefix(path, "/api/") || strings.HasPrefix(r, "/api/") {
			routes = append(routes, r)
		}
	}
	wildcard := regexp.MustCompile(`\{[^}]*\}`)
	norm := func(p string) string { return wildcard.ReplaceAllString(p, "{}") }
	documented := map[string]bool{} // "METHOD /path" and "/path", wildcards normalised
	for path, item := range doc.Paths {
		documented[norm(path)] = true
		for method := range item {
			if method != "parameters" {
				documented[strings.ToUpper(method)+" "+norm(path)] = true
			}
		}
	}

	t.Run("registered routes are documented", func(t *testing.T) {
		for _, r := range routes {
			method, path, hasMethod := strings.Cut(r, " ")
			if !hasMethod {
				method, path = "", r
			}
			path = strings.TrimSuffix(path, "{$}")
			switch {
			case method != "" && !documented[method+" "+norm(path)]:
				t.Errorf("route %q is not in openapi.json", r)
			case method == "" && strings.HasSuffix(path, "/"):
				found := false
				for p := range doc.Paths {
					found = found || strings.HasPrefix(p, path)
				}
				if !found {
					t.Errorf("mount %q has no documented path under it", r)
				}
			case method == "" && !documented[norm(path)]:
				t.Errorf("mount %q is not in openapi.json", r)
			}
		}
	})

	t.Run("documented operations are routed", func(t *testing.T) {
		mux := http.NewServeMux()
		for _, r := range routes {
			mux.Handle(r, http.NotFoundHandler())
		}
		for path, item := range doc.Paths {
			for method := range item {
				if method == "parameters" {
					continue
				}
				req := httptest.NewRequest(strings.ToUpper(method), wildcard.ReplaceAllString(path, "x1"), nil)
				if _, pattern := mux.Handler(req); pattern == "" {
					t.Errorf("%s %s is documented but no registered route serves it", strings.ToUpper(method), path)
				}
			}
		}
	})
}
