package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2etest"
)

// TestSchemaViolationDeadLettered binds a JSON Schema to factory/+/telemetry
// and publishes, from a real MQTT client, two payloads that violate it,
// one that is not JSON, and one valid payload. Only the valid one reaches
// the webhook. The others are dead-lettered with the JSON pointer and the
// reason. `sluice dlq list` and the admin API show them, and they are
// counted per binding and stage and in the ingest accounting.
func TestSchemaViolationDeadLettered(t *testing.T) {
	bin := e2etest.BuildSluice(t)
	h := newHook(t)
	dir := t.TempDir()
	schema := testdata(t, "telemetry.schema.json")
	p := e2etest.Start(t, bin, baseConfig(filepath.Join(dir, "data"))+hookSink(h.URL())+`
schemas:
  bindings:
    - topic: factory/+/telemetry
      schema: `+schema+`
rules:
  - name: telemetry
    topics: ["factory/+/telemetry"]
    to: [{sink: hook}]
`)
	c := e2etest.ConnectV3(t, p.MQTTAddr, "press-07")
	const topic = "factory/north/telemetry"
	invalid := []struct {
		name, payload string
		want          []string // substrings of the dead letter's reason
	}{
		{"too hot", `{"device":"press-07","temp":900}`, []string{`at "/temp"`, "/temp: maximum", "900"}},
		{"no device, temp a string", `{"temp":"hot"}`, []string{"missing property 'device'", "/temp: got string, want number"}},
		{"not JSON", `temp=21.5`, []string{"decoding json payload"}},
	}
	for _, in := range invalid {
		// The dead letter is written before the PUBACK: no waiting below.
		publish(t, c, topic, []byte(in.payload))
	}
	const valid = `{"device":"press-07","temp":21.5,"tags":["a"]}`
	publish(t, c, topic, []byte(valid))

	h.waitRecords(t, 1, 30*time.Second)
	st := p.Drained("telemetry", "hook", 1, 30*time.Second)
	recs, _ := h.records()
	if len(recs) != 1 || string(recs[0].Payload) != valid {
		t.Fatalf("webhook records %+v, want only the valid payload %s", recs, valid)
	}
	e2etest.CheckBalanced(t, st, "telemetry", "hook", 0, false)
	if f := st.Flow("schemas", "dead_letter"); f.Received != 3 || f.DeadLettered != 3 {
		t.Errorf("accounting of schemas→dead_letter %+v, want 3 received and dead-lettered", f)
	}

	entries := deadLetters(t, p.AdminURL)
	if len(entries) != len(invalid) {
		t.Fatalf("%d dead letters, want %d: %+v", len(entries), len(invalid), entries)
	}
	for i, in := range invalid {
		t.Run(in.name, func(t *testing.T) {
			e := entries[i]
			if e.Rule != "schemas" || e.Sink != "dead_letter" || e.Topic != topic || e.ClientID != "press-07" ||
				string(e.Payload) != in.payload || e.Replayed {
				t.Errorf("dead letter %+v (payload %s), want schemas→dead_letter of %s from press-07", e, e.Payload, in.payload)
			}
			for _, w := range in.want {
				if !strings.Contains(e.Error, w) {
					t.Errorf("reason %q lacks %q", e.Error, w)
				}
			}
		})
	}

	out := sluiceCmd(t, bin, "dlq", "list", "-admin", p.AdminURL)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(invalid)+1 || lines[len(lines)-1] != "3 entries, 3 pending" {
		t.Fatalf("sluice dlq list:\n%s", out)
	}
	for i, line := range lines[:len(invalid)] {
		f := strings.Split(line, "\t")
		if len(f) != 8 || f[2] != "pending" || f[3] != "schemas->dead_letter" || f[4] != topic || f[7] != entries[i].Error {
			t.Errorf("dlq list line %q, want pending schemas->dead_letter %s with reason %q", line, topic, entries[i].Error)
		}
	}
	var shown dlqEntry
	if err := json.Unmarshal([]byte(sluiceCmd(t, bin, "dlq", "show", "-admin", p.AdminURL, lines[0][:strings.IndexByte(lines[0], '\t')])), &shown); err != nil {
		t.Fatal(err)
	}
	if string(shown.Payload) != invalid[0].payload || shown.Error != entries[0].Error {
		t.Errorf("dlq show: %+v, want the first dead letter", shown)
	}

	const binding = `binding="factory/+/telemetry"`
	waitMetric(t, p.AdminURL, "sluice_schemas_invalid_total", binding+`,stage="validate"`, 2)
	waitMetric(t, p.AdminURL, "sluice_schemas_invalid_total", binding+`,stage="decode"`, 1)
	p.Stop()
}
