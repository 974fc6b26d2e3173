package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/sluicehq/sluice/internal/e2etest"
)

// messageType compiles schemas/testdata/reading.proto and returns the
// message type name.
func messageType(t testing.TB, name string) protoreflect.MessageDescriptor {
	t.Helper()
	file := testdata(t, "reading.proto")
	c := protocompile.Compiler{Resolver: protocompile.WithStandardImports(
		&protocompile.SourceResolver{ImportPaths: []string{filepath.Dir(file)}})}
	files, err := c.Compile(context.Background(), filepath.Base(file))
	if err != nil {
		t.Fatal(err)
	}
	d, err := files.AsResolver().FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		t.Fatal(err)
	}
	return d.(protoreflect.MessageDescriptor)
}

// marshalJSON encodes the protojson text js as a message of type md,
// allowing missing required fields so that invalid messages can be built.
func marshalJSON(t testing.TB, md protoreflect.MessageDescriptor, js string) []byte {
	t.Helper()
	m := dynamicpb.NewMessage(md)
	if err := (protojson.UnmarshalOptions{AllowPartial: true}).Unmarshal([]byte(js), m); err != nil {
		t.Fatalf("protojson %s: %v", js, err)
	}
	b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProtobufRouted binds acme.v1.Reading (compiled from its .proto at
// load) to acme/readings/#. A rule keeps the readings whose status is
// FAULT and reshapes them from decoded fields, a nested map among them.
// Readings published by a real MQTT client reach the webhook as that
// JSON. A reading without its required field is dead-lettered instead.
func TestProtobufRouted(t *testing.T) {
	bin := e2etest.BuildSluice(t)
	md := messageType(t, "acme.v1.Reading")
	h := newHook(t)
	dir := t.TempDir()
	p := e2etest.Start(t, bin, baseConfig(filepath.Join(dir, "data"))+hookSink(h.URL())+`
schemas:
  bindings:
    - topic: acme/readings/#
      decoder: protobuf
      protobuf:
        message: acme.v1.Reading
        files: [`+testdata(t, "reading.proto")+`]
rules:
  - name: faults
    topics: ["acme/readings/#"]
    when: payload.status == "FAULT"
    transform: '{"device": payload.device, "temp": payload.temp, "errs": payload.counters.errs, "lat": payload.location.lat}'
    to: [{sink: hook}]
`)
	c := e2etest.ConnectV3(t, p.MQTTAddr, "gateway-1")
	readings := []struct {
		json  string
		fault bool
	}{
		{`{"device":"press-01","temp":21.5,"status":"OK","counters":{"errs":0}}`, false},
		{`{"device":"press-02","temp":88.25,"status":"FAULT","counters":{"errs":3},"location":{"lat":52.5}}`, true},
		{`{"device":"press-03","tsMs":"1700000000000","status":"FAULT","counters":{"errs":7,"warn":1},"location":{"lat":-1}}`, true},
	}
	for _, r := range readings {
		publish(t, c, "acme/readings/line1", marshalJSON(t, md, r.json))
	}
	noDevice := marshalJSON(t, md, `{"temp":20,"status":"FAULT"}`)
	publish(t, c, "acme/readings/line1", noDevice)

	h.waitRecords(t, 2, 30*time.Second)
	st := p.Drained("faults", "hook", 2, 30*time.Second)
	e2etest.CheckBalanced(t, st, "faults", "hook", 0, false)
	recs, _ := h.records()
	want := []map[string]any{
		{"device": "press-02", "temp": 88.25, "errs": 3.0, "lat": 52.5},
		{"device": "press-03", "temp": nil, "errs": 7.0, "lat": -1.0},
	}
	if len(recs) != len(want) {
		t.Fatalf("webhook got %d records, want %d: %+v", len(recs), len(want), recs)
	}
	for i, r := range recs {
		var got map[string]any
		if err := json.Unmarshal(r.Payload, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want[i]) || r.Rule != "faults" || r.Topic != "acme/readings/line1" || r.ClientID != "gateway-1" {
			t.Errorf("record %d: %+v with payload %v, want %v", i, r, got, want[i])
		}
	}

	entries := deadLetters(t, p.AdminURL)
	if len(entries) != 1 || string(entries[0].Payload) != string(noDevice) ||
		!strings.Contains(entries[0].Error, "decoding protobuf payload") || !strings.Contains(entries[0].Error, "device") {
		t.Fatalf("dead letters %+v, want the reading without its required device", entries)
	}
	t.Logf("dead letter reason: %s", entries[0].Error)
	waitMetric(t, p.AdminURL, "sluice_schemas_invalid_total", `binding="acme/readings/#",stage="decode"`, 1)
	waitMetric(t, p.AdminURL, "sluice_rule_matched_total", `rule="faults"`, 3)
	waitMetric(t, p.AdminURL, "sluice_rule_passed_total", `rule="faults"`, 2)
	p.Stop()
}
