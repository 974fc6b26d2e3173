package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// startBinary runs bin with cfg and returns the MQTT and admin addresses
// read from its JSON log.
func startBinary(t *testing.T, bin, cfg string) (proc *os.Process, mqttAddr, adminURL string) {
	t.Helper()
	cmd := exec.Command(bin, "run", "-c", cfg)
	cmd.Env = cleanEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	lines := make(chan logLine, 64)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Logf("sluice: %s", sc.Text())
			var l logLine
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				select {
				case lines <- l:
				default:
				}
			}
		}
		cmd.Wait()
	}()
	adminURL = "http://" + waitForLog(t, lines, func(l logLine) bool { return l.Msg == "admin listening" }, 20*time.Second).Address
	mqttAddr = waitForLog(t, lines, func(l logLine) bool { return l.Msg == "mqtt listening" }, 20*time.Second).Address
	return cmd.Process, mqttAddr, adminURL
}

func rulesVersion(t *testing.T, adminURL string) (hash string, names []string) {
	t.Helper()
	resp, err := http.Get(adminURL + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Version struct{ Hash string }
		Rules   []string
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v.Version.Hash, v.Rules
}

// TestRulesReload drives the three reload paths of a running binary:
// SIGHUP, the admin API, and a refused invalid rule set.
func TestRulesReload(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "sluice.yaml")
	writeCfg := func(ruleName, outTopic, when string) {
		cfg := `
log: {level: debug, format: json}
broker:
  listeners: [{name: t, address: "127.0.0.1:0", allow_anonymous: true}]
ingest: {data_dir: ` + filepath.Join(dir, "data") + `}
admin: {address: "127.0.0.1:0"}
rules:
  - name: ` + ruleName + `
    topics: ["in/#"]
    when: '` + when + `'
    to: [{republish: {topic: "` + outTopic + `", qos: 1}}]
`
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg("first", "out/first", "true")
	proc, addr, adminURL := startBinary(t, bin, cfgPath)

	got := make(chan string, 16)
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("reload-sub")
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Subscribe("out/#", 1, func(_ mqtt.Client, m mqtt.Message) { got <- m.Topic() }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	publishAndExpect := func(want string) {
		t.Helper()
		if tok := c.Publish("in/x", 1, false, "{}"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
		select {
		case topic := <-got:
			if topic != want {
				t.Fatalf("republished to %s, want %s", topic, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("nothing republished, want %s", want)
		}
	}
	publishAndExpect("out/first")
	h1, _ := rulesVersion(t, adminURL)

	t.Run("SIGHUP", func(t *testing.T) {
		writeCfg("second", "out/second", "true")
		proc.Signal(syscall.SIGHUP)
		deadline := time.Now().Add(10 * time.Second)
		for {
			if h, names := rulesVersion(t, adminURL); h != h1 && len(names) == 1 && names[0] == "second" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("SIGHUP did not load the new rules")
			}
			time.Sleep(20 * time.Millisecond)
		}
		publishAndExpect("out/second")
	})
	t.Run("invalid set refused through the API", func(t *testing.T) {
		h2, _ := rulesVersion(t, adminURL)
		writeCfg("third", "out/third", "payload.x >")
		resp, err := http.Post(adminURL+"/api/v1/rules/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Errors []string }
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnprocessableEntity || len(body.Errors) == 0 || !strings.Contains(body.Errors[0], `rule "third" when`) {
			t.Fatalf("reload of an invalid set: %s %q", resp.Status, body.Errors)
		}
		if h, _ := rulesVersion(t, adminURL); h != h2 {
			t.Fatal("an invalid rule set replaced the active one")
		}
		publishAndExpect("out/second")
	})
	t.Run("valid set through the API", func(t *testing.T) {
		writeCfg("fourth", "out/fourth", "true")
		resp, err := http.Post(adminURL+"/api/v1/rules/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("reload: %s", resp.Status)
		}
		publishAndExpect("out/fourth")
	})
}
