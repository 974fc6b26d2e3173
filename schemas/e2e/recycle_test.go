package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2etest"
)

// TestRecycledPayloadsStayApart: decoded payloads are built in recycled
// memory, released once routed. Eight real MQTT clients publish 300
// payloads each, of several shapes, with up to 16 in flight, through a
// rule that reads nested members and array elements and copies the
// payload whole into its output. Every webhook record must hold exactly
// its own message's values: one built from another message's recycled
// maps or arrays would show another seq, another device or another
// shape.
func TestRecycledPayloadsStayApart(t *testing.T) {
	bin := e2etest.BuildSluice(t)
	h := newHook(t)
	p := e2etest.Start(t, bin, baseConfig(filepath.Join(t.TempDir(), "data"))+hookSink(h.URL())+`
rules:
  - name: mirror
    topics: ["load/+/t"]
    transform: >-
      {"device": payload.device, "seq": payload.seq, "double": payload.v.a,
       "tag": payload.tags[1], "whole": payload}
    to: [{sink: hook}]
`)
	const clients, each = 8, 300
	payload := func(device string, seq int) []byte {
		// Three shapes: more or fewer members, nested objects and arrays.
		switch seq % 3 {
		case 0:
			return fmt.Appendf(nil, `{"device":%q,"seq":%d,"v":{"a":%d},"tags":["t",%d]}`, device, seq, 2*seq, seq)
		case 1:
			return fmt.Appendf(nil, `{"device":%q,"seq":%d,"v":{"a":%d,"b":{"c":[%d,%d]}},"tags":["t",%d,{"x":"%d"}],"extra":"e%d","more":[[],{}]}`,
				device, seq, 2*seq, seq, seq+1, seq, seq, seq)
		default:
			return fmt.Appendf(nil, `{"seq":%d,"tags":["t",%d],"device":%q,"v":{"a":%d},"s":"\u00e9%d"}`, seq, seq, device, 2*seq, seq)
		}
	}
	var wg sync.WaitGroup
	streamers := make([]*e2etest.Streamer, clients)
	for i := range clients {
		device := fmt.Sprintf("dev-%d", i)
		streamers[i] = &e2etest.Streamer{
			Client: e2etest.ConnectV3(t, p.MQTTAddr, device), Topic: "load/" + device + "/t",
			Payload: func(seq int) []byte { return payload(device, seq) }, Window: 16, Limit: each,
		}
		wg.Go(func() { streamers[i].Run(nil) })
	}
	wg.Wait()
	const total = clients * each
	recs := h.waitRecords(t, total, 2*time.Minute)
	st := p.Drained("mirror", "hook", total, time.Minute)
	e2etest.CheckBalanced(t, st, "mirror", "hook", 0, true)

	seen := map[string]bool{}
	for _, r := range recs {
		var out struct {
			Device string          `json:"device"`
			Seq    int             `json:"seq"`
			Double int             `json:"double"`
			Tag    int             `json:"tag"`
			Whole  json.RawMessage `json:"whole"`
		}
		if err := json.Unmarshal(r.Payload, &out); err != nil {
			t.Fatalf("record %s: %v", r.Payload, err)
		}
		var got, want any
		if err := json.Unmarshal(out.Whole, &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(payload(out.Device, out.Seq), &want); err != nil {
			t.Fatal(err)
		}
		if r.ClientID != out.Device || r.Topic != "load/"+out.Device+"/t" || out.Double != 2*out.Seq || out.Tag != out.Seq || !reflect.DeepEqual(got, want) {
			t.Fatalf("record from %s on %s: %s\nwant the values of %s", r.ClientID, r.Topic, r.Payload, payload(out.Device, out.Seq))
		}
		key := fmt.Sprintf("%s/%d", out.Device, out.Seq)
		if seen[key] {
			t.Fatalf("record %s twice", key)
		}
		seen[key] = true
	}
	if len(seen) != total {
		t.Fatalf("%d distinct records, want %d", len(seen), total)
	}
}
