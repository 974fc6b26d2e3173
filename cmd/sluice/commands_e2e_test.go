package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluicehq/sluice/internal/e2etest"
)

// TestCommandsEndToEnd runs the binary with commands enabled: an HTTP
// POST reaches a real MQTT client, which replies on the reply topic; the
// API then reports the command responded. A wrong token gets 401; the
// admin token passes the API's own check (a command to a device without
// a session is then rejected, 422).
func TestCommandsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	const token = "e2e-command-token-0123"
	p := e2etest.Start(t, bin, `log: {level: info, format: json}
broker:
  listeners: [{name: e2e, address: "127.0.0.1:0", allow_anonymous: true}]
admin: {address: "127.0.0.1:0", token: admin-token-0123456789}
ingest:
  data_dir: `+strconv.Quote(filepath.Join(dir, "data"))+`
commands:
  enabled: true
  tokens: [{name: mes, token: `+token+`, allow: ["devices/+/commands"]}]
`)
	got := make(chan mqtt.Message, 1)
	dev := e2etest.ConnectV3(t, p.MQTTAddr, "press-7")
	if tok := dev.Subscribe("devices/press-7/commands", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	post := func(tok, device, id string) (int, map[string]any) {
		body, _ := json.Marshal(map[string]any{"device": device, "payload": "setpoint=42", "id": id, "ttl": "30s"})
		req, _ := http.NewRequest(http.MethodPost, p.AdminURL+"/api/v1/commands", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		code, out := commandRequest(t, req)
		for end := time.Now().Add(10 * time.Second); code == http.StatusServiceUnavailable && time.Now().Before(end); {
			time.Sleep(20 * time.Millisecond) // the service starts once the broker serves
			req, _ = http.NewRequest(http.MethodPost, p.AdminURL+"/api/v1/commands", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			code, out = commandRequest(t, req)
		}
		return code, out
	}
	if code, _ := post("wrong-token-wrong-token", "press-7", "cmd-1"); code != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d, want 401", code)
	}
	if code, body := post("admin-token-0123456789", "ghost", "cmd-0"); code != http.StatusUnprocessableEntity {
		t.Fatalf("admin token, unknown device: %d %v, want 422", code, body)
	}
	if code, body := post(token, "press-7", "cmd-1"); code != http.StatusAccepted {
		t.Fatalf("post: %d %v", code, body)
	}
	select {
	case m := <-got:
		if string(m.Payload()) != "setpoint=42" {
			t.Fatalf("device got %q", m.Payload())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("device got no command")
	}
	if tok := dev.Publish("devices/press-7/replies/cmd-1", 1, false, "ok"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("reply: %v", tok.Error())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodGet, p.AdminURL+"/api/v1/commands/cmd-1", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		code, body := commandRequest(t, req)
		if code == http.StatusOK && body["state"] == "responded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status: %d %v, want responded", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Stop()
}

func commandRequest(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}
