package rules

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/ingest"
)

const exampleRules = `rules:
  - name: line-telemetry
    topics: ["plant/+/line/+/telemetry"]
    when: payload.temp > 80 && level(1) == "berlin"
    let: { site: level(1), line: level(3) }
    transform: '{"site": site, "line": line, "temp": payload.temp, "ts": received_ms}'
    durability: spool
    to:
      - sink: kafka-main
        topic: 'telemetry.{{ site }}'
        key: clientid
      - sink: clickhouse-telemetry
      - republish: { topic: 'alerts/{{ site }}/{{ line }}', qos: 1, retain: false }
    on_error: dead_letter
`

func TestSmoke(t *testing.T) {
	e, errs := CompileBytes("rules.yaml", []byte(exampleRules), Options{Sinks: []string{"kafka-main", "clickhouse-telemetry"}})
	if errs != nil {
		t.Fatal(errs)
	}
	var p any
	json.Unmarshal([]byte(`{"temp": 85.5}`), &p)
	in := &ingest.Input{Msg: &broker.Message{Topic: "plant/berlin/line/3/telemetry", ClientID: "dev1", ReceivedAt: time.UnixMilli(1700000000000)}, Payload: p}
	out := e.Route(in, nil)
	for _, o := range out {
		fmt.Printf("%+v value=%s key=%s\n", o, o.Value, o.Key)
	}
}
