package console

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2etest"
)

func TestMain(m *testing.M) { e2etest.Main(m) }

// browserConfig runs sluice with a token, two rules republishing to MQTT
// and JSON logs (e2etest reads the listener addresses from them).
func browserConfig(dataDir string) string {
	return fmt.Sprintf(`log:
  level: info
  format: json
broker:
  listeners:
    - name: e2e
      address: 127.0.0.1:0
      allow_anonymous: true
admin:
  address: 127.0.0.1:0
  token: %s
ingest:
  data_dir: %q
rules:
  - name: hot
    topics: ['plant/+/temp']
    when: payload.temp > 50
    transform: '{"site": level(1), "temp": payload.temp}'
    to:
      - republish: {topic: 'alerts/{{ level(1) }}', qos: 1}
  - name: archive
    topics: ['plant/#']
    to:
      - republish: {topic: 'archive/{{ topic }}'}
`, testToken, dataDir)
}

// TestBrowserConsole runs the sluice binary and drives its console in
// headless Chromium: the token is entered, a real MQTT client connects
// and shows in the overview, a tap is started, messages published by the
// client appear with each rule's decision, and the rules page counts
// them. Screenshots are saved as test output.
func TestBrowserConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the sluice binary and Chromium")
	}
	wd := startBrowser(t)
	bin := e2etest.BuildSluice(t)
	s := e2etest.Start(t, bin, browserConfig(filepath.Join(t.TempDir(), "data")))
	const timeout = 30 * time.Second

	wd.open(s.AdminURL + "/")
	wd.waitFor("the redirect to the console", "return location.pathname", "/console/", timeout)
	wd.waitFor("the stats stream to ask for the token", `return document.getElementById("conn").textContent`, "token needed", timeout)
	wd.typeInto("#token", testToken)
	wd.click("#auth button")
	wd.waitFor("the stats stream", `return document.getElementById("conn").textContent`, "live", timeout)
	wd.waitFor("no connection yet", `return document.getElementById("m-connections").textContent`, "0", timeout)

	c := e2etest.ConnectV3(t, s.MQTTAddr, "browser-dev-1")
	wd.waitFor("the client's connection", `return document.getElementById("m-connections").textContent`, "1", timeout)

	wd.click("#nav-tap")
	wd.waitFor("the tap page", `return String(document.getElementById("page-tap").hidden)`, "false", timeout)
	wd.typeInto("#tap-filter", "plant/+/temp")
	wd.click("#tap-start")
	wd.waitFor("the tap to open", `return document.getElementById("tap-status").dataset.state || ""`, "open", timeout)

	for _, m := range []struct{ topic, payload string }{
		{"plant/berlin/temp", `{"temp": 91.5}`},
		{"plant/hamburg/temp", `{"temp": 12}`},
		{"office/hamburg/temp", `{"temp": 99}`}, // outside the tap's filter
	} {
		if tok := c.Publish(m.topic, 1, false, m.payload); !tok.WaitTimeout(timeout) || tok.Error() != nil {
			t.Fatalf("publishing %s: %v", m.topic, tok.Error())
		}
	}
	decision := func(topic, rule string) string {
		return fmt.Sprintf(`const d = document.querySelector('.tap-msg[data-topic=%q] .decision[data-rule=%q]');
			if (!d) return "absent";
			const outs = [...d.querySelectorAll(".output")].map(o => o.dataset.sink + ">" + o.dataset.topic);
			return d.dataset.outcome + " when=" + d.dataset.when + " " + outs.join(",");`, topic, rule)
	}
	wd.waitFor("the hot message routed by rule hot", decision("plant/berlin/temp", "hot"),
		"routed when=true republish>alerts/berlin", timeout)
	wd.waitFor("the hot message archived", decision("plant/berlin/temp", "archive"),
		"routed when= republish>archive/plant/berlin/temp", timeout)
	wd.waitFor("the cold message filtered out by when", decision("plant/hamburg/temp", "hot"), "filtered when=false ", timeout)
	var shown struct {
		Payload   string `json:"payload"`
		Value     string `json:"value"`
		Client    string `json:"client"`
		Messages  int    `json:"messages"`
		Unmatched int    `json:"unmatched"`
	}
	wd.eval(`const m = document.querySelector('.tap-msg[data-topic="plant/berlin/temp"]');
		return {payload: m.querySelector(".payload").textContent, value: m.querySelector('.decision[data-rule="hot"] .value').textContent,
			client: m.querySelector(".client").textContent, messages: document.querySelectorAll(".tap-msg").length,
			unmatched: document.querySelectorAll('.tap-msg[data-topic^="office/"]').length};`, &shown)
	if shown.Payload != `{"temp": 91.5}` || shown.Value != `{"site":"berlin","temp":91.5}` || shown.Client != "browser-dev-1" ||
		shown.Messages != 2 || shown.Unmatched != 0 {
		t.Errorf("tap shows %+v", shown)
	}
	t.Logf("screenshot of the live tap: %s", wd.screenshot("tap"))

	wd.click("#nav-rules")
	wd.waitFor("rule hot's hit count", `const r = document.querySelector('#rules tr[data-rule="hot"]');
		return r ? r.querySelector(".matched").textContent + "/" + r.querySelector(".passed").textContent : "absent"`, "2/1", timeout)
	t.Logf("screenshot of the rules: %s", wd.screenshot("rules"))

	wd.click("#nav-overview")
	wd.waitFor("the accounting identity", `return document.getElementById("identity").textContent.startsWith("✓ balanced") &&
		document.getElementById("identity").textContent.includes("received 3 = delivered 3") ? "ok" : document.getElementById("identity").textContent`, "ok", timeout)
	wd.waitFor("the republish sink's health", `const r = document.querySelector('#sinks tr[data-sink="republish"] .health'); return r ? r.textContent : "absent"`,
		"connected", timeout)
	t.Logf("screenshot of the overview: %s", wd.screenshot("overview"))

	wd.click("#nav-tap")
	wd.click("#tap-stop")
	wd.waitFor("the tap to stop", `return document.getElementById("tap-status").dataset.state`, "stopped", timeout)
	s.Stop()
}
