package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluicehq/sluice/internal/e2etest"
	"github.com/sluicehq/sluice/schemas/sparkplug"
)

// sparkplugConfig decodes spBv1.0/# as Sparkplug B, keeps the alias
// tables in stateDir and routes every DDATA's metrics, as rules see them,
// to the webhook.
func sparkplugConfig(dataDir, stateDir, hookURL string) string {
	return baseConfig(dataDir) + hookSink(hookURL) + `
schemas:
  bindings:
    - {topic: "spBv1.0/#", decoder: sparkplugb}
  sparkplug: {state_dir: ` + stateDir + `, rebirth_interval: 1s}
rules:
  - name: ddata
    topics: ["spBv1.0/+/DDATA/+/+"]
    transform: >-
      {"group": payload.group_id, "edge": payload.edge_node_id, "device": payload.device_id, "seq": payload.seq,
       "metrics": map(payload.metrics, ({"name": .name, "alias": .alias, "datatype": .datatype, "value": .value}))}
    to: [{sink: hook}]
`
}

// spMarshal encodes a Sparkplug B payload.
func spMarshal(t testing.TB, seq uint64, metrics ...sparkplug.OutMetric) []byte {
	t.Helper()
	m := sparkplug.Message{Timestamp: uint64(time.Now().UnixMilli()), Seq: seq, HasSeq: true, Metrics: metrics}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// aliased is a data metric carrying only its alias and value.
func aliased(alias uint64, v any) sparkplug.OutMetric {
	return sparkplug.OutMetric{Alias: alias, HasAlias: true, Value: v}
}

// ddataRecord is what the ddata rule sends for one message.
type ddataRecord struct {
	Group, Edge, Device string
	Seq                 int
	Metrics             []map[string]any
}

// subscribeNCMD subscribes a real MQTT client to the plant group's NCMD
// topics and returns the channel of what it receives.
func subscribeNCMD(t testing.TB, addr string) <-chan mqtt.Message {
	t.Helper()
	got := make(chan mqtt.Message, 16)
	c := e2etest.ConnectV3(t, addr, "scada-host")
	tok := c.Subscribe("spBv1.0/plant/NCMD/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		select {
		case got <- m:
		default:
			t.Errorf("more than %d NCMD messages", cap(got))
		}
	})
	if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribing to NCMD: %v", tok.Error())
	}
	return got
}

// TestSparkplugAliasesAndRebirth publishes, from a real MQTT client acting
// as edge node edge1, an NBIRTH and a DBIRTH defining aliases, then DDATA
// carrying aliases only: the rule sees resolved names and datatypes. After
// a restart the aliases still resolve from the state directory. A DDATA
// with an unknown alias reaches the rule unresolved and makes Sluice
// publish a Rebirth NCMD that a subscribed SCADA client receives.
func TestSparkplugAliasesAndRebirth(t *testing.T) {
	bin := e2etest.BuildSluice(t)
	h := newHook(t)
	dir := t.TempDir()
	cfg := sparkplugConfig(filepath.Join(dir, "data"), filepath.Join(dir, "sparkplug"), h.URL())
	p := e2etest.Start(t, bin, cfg)
	ncmd := subscribeNCMD(t, p.MQTTAddr)
	edge := e2etest.ConnectV3(t, p.MQTTAddr, "edge1")

	publish(t, edge, "spBv1.0/plant/NBIRTH/edge1", spMarshal(t, 0,
		sparkplug.OutMetric{Name: "bdSeq", Datatype: sparkplug.TypeInt64, Value: int64(0)},
		sparkplug.OutMetric{Name: "Node Control/Rebirth", Alias: 0, HasAlias: true, Datatype: sparkplug.TypeBoolean, Value: false},
		sparkplug.OutMetric{Name: "uptime", Alias: 1, HasAlias: true, Datatype: sparkplug.TypeUInt64, Value: uint64(3600)}))
	publish(t, edge, "spBv1.0/plant/DBIRTH/edge1/pump", spMarshal(t, 1,
		sparkplug.OutMetric{Name: "rpm", Alias: 10, HasAlias: true, Datatype: sparkplug.TypeUInt32, Value: 0},
		sparkplug.OutMetric{Name: "temp", Alias: 11, HasAlias: true, Datatype: sparkplug.TypeFloat, Value: float32(20)},
		sparkplug.OutMetric{Name: "running", Alias: 12, HasAlias: true, Datatype: sparkplug.TypeBoolean, Value: false}))
	publish(t, edge, "spBv1.0/plant/DDATA/edge1/pump", spMarshal(t, 2,
		aliased(10, 1600), aliased(11, float32(21.5)), aliased(12, true), aliased(1, uint64(3601))))

	recs := h.waitRecords(t, 1, 30*time.Second)
	checkDDATA(t, recs[0], 2, []map[string]any{
		{"name": "rpm", "alias": 10.0, "datatype": "UInt32", "value": 1600.0},
		{"name": "temp", "alias": 11.0, "datatype": "Float", "value": 21.5},
		{"name": "running", "alias": 12.0, "datatype": "Boolean", "value": true},
		{"name": "uptime", "alias": 1.0, "datatype": "UInt64", "value": 3601.0},
	})
	waitMetric(t, p.AdminURL, "sluice_sparkplug_messages_total", `type="DDATA"`, 1)
	waitMetric(t, p.AdminURL, "sluice_sparkplug_devices_online", "", 1)
	if v, ok := metric(t, p.AdminURL, "sluice_sparkplug_unknown_aliases_total", ""); !ok || v != 0 {
		t.Errorf("unknown aliases counted: %v (present %v), want 0", v, ok)
	}
	p.Stop()
	select {
	case m := <-ncmd:
		t.Fatalf("NCMD %s sent while every alias was known", m.Topic())
	default:
	}

	// A restart: the aliases come from the state directory, no birth.
	p = e2etest.Start(t, bin, cfg)
	ncmd = subscribeNCMD(t, p.MQTTAddr)
	edge = e2etest.ConnectV3(t, p.MQTTAddr, "edge1")
	publish(t, edge, "spBv1.0/plant/DDATA/edge1/pump", spMarshal(t, 3, aliased(10, 1700), aliased(11, float32(22.75))))
	recs = h.waitRecords(t, 2, 30*time.Second)
	checkDDATA(t, recs[1], 3, []map[string]any{
		{"name": "rpm", "alias": 10.0, "datatype": "UInt32", "value": 1700.0},
		{"name": "temp", "alias": 11.0, "datatype": "Float", "value": 22.75},
	})

	// Alias 99 was never born: not guessed, and a rebirth is requested.
	publish(t, edge, "spBv1.0/plant/DDATA/edge1/pump", spMarshal(t, 4, aliased(10, 1750), aliased(99, 5)))
	select {
	case m := <-ncmd:
		if m.Topic() != "spBv1.0/plant/NCMD/edge1" {
			t.Errorf("NCMD on %s, want spBv1.0/plant/NCMD/edge1", m.Topic())
		}
		checkRebirth(t, m.Payload())
	case <-time.After(30 * time.Second):
		t.Fatal("no rebirth NCMD within 30s of an unknown alias")
	}
	recs = h.waitRecords(t, 3, 30*time.Second)
	checkDDATA(t, recs[2], 4, []map[string]any{
		{"name": "rpm", "alias": 10.0, "datatype": "UInt32", "value": 1750.0},
		// No datatype: the value is read as the wire carries it (UInt64).
		{"name": "", "alias": 99.0, "datatype": "Unknown", "value": 5.0},
	})
	waitMetric(t, p.AdminURL, "sluice_sparkplug_unknown_aliases_total", "", 1)
	waitMetric(t, p.AdminURL, "sluice_sparkplug_rebirth_requests_total", `reason="unknown alias"`, 1)
	st := p.Drained("ddata", "hook", 2, 30*time.Second)
	e2etest.CheckBalanced(t, st, "ddata", "hook", 0, false)
	p.Stop()
}

// checkDDATA compares one record of the ddata rule.
func checkDDATA(t testing.TB, r record, seq int, metrics []map[string]any) {
	t.Helper()
	var got ddataRecord
	if err := json.Unmarshal(r.Payload, &got); err != nil {
		t.Fatalf("record payload %s: %v", r.Payload, err)
	}
	want := ddataRecord{Group: "plant", Edge: "edge1", Device: "pump", Seq: seq, Metrics: metrics}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rule saw\n%+v\nwant\n%+v", got, want)
	}
}

// checkRebirth decodes an NCMD payload and wants the one metric
// "Node Control/Rebirth" = true.
func checkRebirth(t testing.TB, b []byte) {
	t.Helper()
	p, err := sparkplug.DecodePayload(b)
	if err != nil {
		t.Fatalf("decoding NCMD payload: %v", err)
	}
	var got []string
	for i := range p.Metrics {
		m := &p.Metrics[i]
		v, err := m.Value(m.Datatype)
		got = append(got, fmt.Sprintf("%s=%v (%v)", m.Name, v, err))
	}
	if want := []string{"Node Control/Rebirth=true (<nil>)"}; !reflect.DeepEqual(got, want) {
		t.Errorf("NCMD metrics %q, want %q", got, want)
	}
}
