package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/internal/admin"
	"github.com/sluicehq/sluice/internal/admin/api"
	"github.com/sluicehq/sluice/internal/mqtttest"
)

const token = "s3cret"

// fixedSinks reports fixed sink stats (the pipeline's own are tested in
// cmd/sluice, end to end).
type fixedSinks []ingest.SinkStats

func (f fixedSinks) SinkStats() []ingest.SinkStats { return f }

// env is a broker and an admin server with the API, both on loopback.
type env struct {
	t    *testing.T
	mqtt string
	base string
}

func start(t *testing.T) *env {
	t.Helper()
	cfg := mqtttest.SluiceConfig()
	cfg.SysInterval = 0
	b := mqtttest.StartSluice(t, cfg, brokerOptions())
	srv := admin.New(admin.Config{Address: "127.0.0.1:0", Token: token}, nil, prometheus.NewRegistry())
	api.New(api.Options{Broker: b.Server, Sinks: fixedSinks{{Name: "kafka", Connected: true, LagRecords: 7, LagBytes: 700}}}).Register(srv)
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("admin server: %v", err)
		}
	})
	return &env{t: t, mqtt: b.Addr(), base: srv.BaseURL()}
}

// do sends a request with the token and decodes the JSON answer into a
// map; it returns the status.
func (e *env) do(method, path, body string) (int, map[string]any) {
	e.t.Helper()
	return e.doAuth(method, path, body, "Bearer "+token)
}

func (e *env) doAuth(method, path, body, auth string) (int, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Errorf("%s %s: Content-Type %q, body %s", method, path, ct, data)
	}
	if resp.Header.Get("X-Request-Id") == "" {
		e.t.Errorf("%s %s: no X-Request-Id", method, path)
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		e.t.Fatalf("%s %s: answer is not a JSON object: %v: %s", method, path, err, data)
	}
	return resp.StatusCode, out
}

func v3(t *testing.T, addr, id string, clean bool) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetCleanSession(clean).
		SetAutoReconnect(false).SetConnectRetry(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

func v5(t *testing.T, addr, id string, onDisconnect func(*paho.Disconnect)) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.ClientConfig{ClientID: id, Conn: nc, OnServerDisconnect: onDisconnect})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: id, KeepAlive: 30, CleanStart: true}); err != nil {
		t.Fatalf("connect %s: %v", id, err)
	}
	t.Cleanup(func() { c.Disconnect(&paho.Disconnect{}); nc.Close() })
}

func TestAuth(t *testing.T) {
	e := start(t)
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "Bearer nope", http.StatusUnauthorized},
		{"token without Bearer", token, http.StatusUnauthorized},
		{"right token", "Bearer " + token, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/api/v1/clients", "/api/v1/sinks", "/api/openapi.json"} {
				status, body := e.doAuth("GET", path, "", tc.auth)
				if status != tc.want {
					t.Errorf("GET %s: status %d, want %d", path, status, tc.want)
				}
				if tc.want == http.StatusUnauthorized && body["error"] == nil {
					t.Errorf("GET %s: 401 without an error message: %v", path, body)
				}
			}
			status, _ := e.doAuth("POST", "/api/v1/publish", `{"topic":"x"}`, tc.auth)
			if status != tc.want {
				t.Errorf("POST /api/v1/publish: status %d, want %d", status, tc.want)
			}
		})
	}
}

func TestClientsAndSessions(t *testing.T) {
	e := start(t)
	a := v3(t, e.mqtt, "a-dev", false)
	if tok := a.Subscribe("plant/+/temp", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	codes := make(chan byte, 1)
	v5(t, e.mqtt, "b-dev", func(d *paho.Disconnect) { codes <- d.ReasonCode })

	status, body := e.do("GET", "/api/v1/clients?limit=1", "")
	clients, _ := body["clients"].([]any)
	if status != 200 || len(clients) != 1 || body["next"] != "a-dev" {
		t.Fatalf("first page: %d %v", status, body)
	}
	status, body = e.do("GET", "/api/v1/clients?after=a-dev", "")
	clients, _ = body["clients"].([]any)
	if status != 200 || len(clients) != 1 || body["next"] != nil {
		t.Fatalf("second page: %d %v", status, body)
	}
	if c := clients[0].(map[string]any); c["client_id"] != "b-dev" || c["protocol_version"] != 5.0 || c["listener"] != "default" {
		t.Errorf("b-dev: %v", c)
	}

	status, body = e.do("GET", "/api/v1/clients/a-dev", "")
	subs, _ := body["subscriptions"].([]any)
	sess, _ := body["session"].(map[string]any)
	if status != 200 || body["protocol_version"] != 4.0 || body["clean_start"] != false || len(subs) != 1 ||
		sess["expiry_seconds"] != nil || sess["online"] != true {
		t.Errorf("a-dev: %d %v", status, body)
	}

	for _, tc := range []struct {
		name, method, path string
		want               int
	}{
		{"unknown client", "GET", "/api/v1/clients/nobody", 404},
		{"bad limit", "GET", "/api/v1/clients?limit=x", 400},
		{"zero limit", "GET", "/api/v1/sessions?limit=0", 400},
		{"disconnect unknown", "DELETE", "/api/v1/clients/nobody", 404},
		{"delete online session", "DELETE", "/api/v1/sessions/a-dev", 409},
		{"delete unknown session", "DELETE", "/api/v1/sessions/nobody", 404},
		{"unknown route", "GET", "/api/v1/nothing", 404},
		{"wrong method", "PUT", "/api/v1/clients", 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.do(tc.method, tc.path, "")
			if status != tc.want || body["error"] == nil {
				t.Errorf("%s %s: %d %v, want %d with an error", tc.method, tc.path, status, body, tc.want)
			}
		})
	}

	t.Run("disconnect v5", func(t *testing.T) {
		status, body := e.do("DELETE", "/api/v1/clients/b-dev", "")
		if status != 200 || body["disconnected"] != "b-dev" {
			t.Fatalf("%d %v", status, body)
		}
		select {
		case c := <-codes:
			if c != 0x98 {
				t.Errorf("reason 0x%02x, want 0x98", c)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no DISCONNECT")
		}
		if status, _ := e.do("GET", "/api/v1/clients/b-dev", ""); status != 404 {
			t.Errorf("still connected: %d", status)
		}
	})

	t.Run("offline session", func(t *testing.T) {
		a.Disconnect(50)
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, body := e.do("GET", "/api/v1/sessions/a-dev", "")
			if body["online"] == false {
				subs, _ := body["subscriptions"].([]any)
				if body["offline_since"] == nil || len(subs) != 1 {
					t.Errorf("offline session: %v", body)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("session still online: %v", body)
			}
			time.Sleep(10 * time.Millisecond)
		}
		_, body := e.do("GET", "/api/v1/subscriptions?client=a-dev", "")
		if subs, _ := body["subscriptions"].([]any); len(subs) != 1 || subs[0].(map[string]any)["filter"] != "plant/+/temp" {
			t.Errorf("subscriptions: %v", body)
		}
		if status, body := e.do("DELETE", "/api/v1/sessions/a-dev", ""); status != 200 || body["deleted"] != "a-dev" {
			t.Errorf("delete: %d %v", status, body)
		}
		_, body = e.do("GET", "/api/v1/sessions", "")
		if list, _ := body["sessions"].([]any); len(list) != 0 {
			t.Errorf("sessions after delete: %v", body)
		}
	})
}

func TestPublishAndRetained(t *testing.T) {
	e := start(t)
	got := make(chan mqtt.Message, 4)
	sub := v3(t, e.mqtt, "watcher", true)
	if tok := sub.Subscribe("cmd/#", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}

	status, body := e.do("POST", "/api/v1/publish", `{"topic":"cmd/line1/start","payload":"go","qos":1,"retain":true}`)
	if status != 200 || body["bytes"] != 2.0 {
		t.Fatalf("publish: %d %v", status, body)
	}
	select {
	case m := <-got:
		if m.Topic() != "cmd/line1/start" || string(m.Payload()) != "go" || m.Qos() != 1 {
			t.Errorf("received %s %q qos %d", m.Topic(), m.Payload(), m.Qos())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the MQTT subscriber got nothing")
	}
	// Binary payload, retained.
	if status, body := e.do("POST", "/api/v1/publish", `{"topic":"cmd/bin","payload_base64":"AP8=","retain":true}`); status != 200 {
		t.Fatalf("publish base64: %d %v", status, body)
	}

	for _, tc := range []struct{ name, body string }{
		{"invalid topic", `{"topic":"a/+/b","payload":"x"}`},
		{"empty topic", `{"payload":"x"}`},
		{"qos 3", `{"topic":"a","qos":3}`},
		{"unknown field", `{"topic":"a","colour":"red"}`},
		{"both payloads", `{"topic":"a","payload":"x","payload_base64":"eA=="}`},
		{"bad base64", `{"topic":"a","payload_base64":"%%"}`},
		{"not JSON", `topic=a`},
		{"two objects", `{"topic":"a"}{"topic":"b"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, body := e.do("POST", "/api/v1/publish", tc.body); status != 400 || body["error"] == nil {
				t.Errorf("%d %v, want 400 with an error", status, body)
			}
		})
	}
	big := `{"topic":"a","payload":"` + strings.Repeat("x", 2<<20) + `"}`
	if status, _ := e.do("POST", "/api/v1/publish", big); status != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB body: %d, want 413", status)
	}

	status, body = e.do("GET", "/api/v1/retained?filter=cmd/%23", "")
	msgs, _ := body["messages"].([]any)
	if status != 200 || len(msgs) != 2 || body["truncated"] != false {
		t.Fatalf("retained: %d %v", status, body)
	}
	bin, text := msgs[0].(map[string]any), msgs[1].(map[string]any)
	if bin["topic"] != "cmd/bin" || bin["payload_encoding"] != "base64" || bin["payload"] != "AP8=" || bin["payload_size"] != 2.0 {
		t.Errorf("binary retained message: %v", bin)
	}
	if text["payload"] != "go" || text["payload_encoding"] != "utf-8" || text["qos"] != 1.0 {
		t.Errorf("text retained message: %v", text)
	}
	if _, body := e.do("GET", "/api/v1/retained?filter=%23&limit=1", ""); body["truncated"] != true {
		t.Errorf("limit 1: %v", body)
	}
	if status, body := e.do("GET", "/api/v1/retained?topic=cmd/line1/start", ""); status != 200 || body["payload"] != "go" {
		t.Errorf("one retained message: %d %v", status, body)
	}
	if status, _ := e.do("GET", "/api/v1/retained?topic=cmd/none", ""); status != 404 {
		t.Errorf("missing retained message: %d", status)
	}
	if status, _ := e.do("GET", "/api/v1/retained?filter=a/%23/b", ""); status != 400 {
		t.Errorf("invalid filter: %d", status)
	}
	// An empty retained payload clears it.
	e.do("POST", "/api/v1/publish", `{"topic":"cmd/bin","payload":"","retain":true}`)
	if status, _ := e.do("GET", "/api/v1/retained?topic=cmd/bin", ""); status != 404 {
		t.Errorf("cleared retained message still there: %d", status)
	}
}

func TestSinks(t *testing.T) {
	e := start(t)
	status, body := e.do("GET", "/api/v1/sinks", "")
	list, _ := body["sinks"].([]any)
	if status != 200 || len(list) != 1 {
		t.Fatalf("%d %v", status, body)
	}
	status, body = e.do("GET", "/api/v1/sinks/kafka", "")
	if status != 200 || body["lag_records"] != 7.0 || body["lag_bytes"] != 700.0 || body["connected"] != true {
		t.Errorf("sink: %d %v", status, body)
	}
	if status, _ := e.do("GET", "/api/v1/sinks/nope", ""); status != 404 {
		t.Errorf("unknown sink: %d", status)
	}
	if status, body := e.do("GET", "/api/v1/broker", ""); status != 200 || body["connections"] != 0.0 {
		t.Errorf("broker: %d %v", status, body)
	}
}

func TestRequestID(t *testing.T) {
	e := start(t)
	req, _ := http.NewRequest("GET", e.base+"/api/v1/sinks", bytes.NewReader(nil))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Request-Id", "trace-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "trace-42" {
		t.Errorf("X-Request-Id %q, want the client's", got)
	}
}

func brokerOptions() broker.Options { return broker.Options{} }
