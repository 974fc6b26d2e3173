package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/sluicehq/sluice/internal/e2etest"
)

// encodeConfig sends two rules' outputs to Kafka as acme.v1.Reading, whose
// definition comes from a descriptor set in schemas.descriptors: "shape"
// builds the message from a JSON payload with a transform, "raw" sends
// the payload itself (protojson) re-encoded. message is the type the
// shape rule names.
func encodeConfig(dataDir, kafkaAddr, descriptorSet, message string) string {
	return baseConfig(dataDir) + `
schemas:
  descriptors: [{descriptor_set: ` + descriptorSet + `}]
sinks:
  events:
    type: kafka
    kafka: {brokers: ["` + kafkaAddr + `"], topic: readings.pb, metadata_ttl: 1s, dial_timeout: 5s, write_timeout: 30s}
rules:
  - name: shape
    topics: ["plant/+/reading"]
    transform: >-
      {"device": clientid, "temp": payload.temp, "tsMs": payload.ts,
       "status": payload.temp > 80 ? "FAULT" : "OK", "location": {"lat": payload.lat}, "tags": [level(1)]}
    to:
      - {sink: events, key: clientid, encoding: protobuf, message: ` + message + `}
  - name: raw
    topics: ["plant/+/raw"]
    to:
      - {sink: events, key: clientid, encoding: protobuf, message: acme.v1.Reading}
`
}

// readingType loads acme.v1.Reading from a descriptor set, as a Kafka
// consumer holding only the .binpb would.
func readingType(t testing.TB, path string) protoreflect.MessageDescriptor {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		t.Fatal(err)
	}
	d, err := files.FindDescriptorByName("acme.v1.Reading")
	if err != nil {
		t.Fatal(err)
	}
	return d.(protoreflect.MessageDescriptor)
}

// TestProtobufOutputToKafka publishes JSON from a real MQTT client; the
// rules' outputs reach Kafka (kfake) as acme.v1.Reading, which a consumer
// decodes with the descriptor set. A payload that does not fit the type
// is dead-lettered with the target and the reason. A rule naming an
// unknown type stops sluice at start with the file and line.
func TestProtobufOutputToKafka(t *testing.T) {
	bin := e2etest.BuildSluice(t)
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "readings.pb"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	addr := kc.ListenAddrs()[0]
	set := testdata(t, "reading.binpb")
	md := readingType(t, set)
	dir := t.TempDir()

	t.Run("unknown message type", func(t *testing.T) {
		cfg := filepath.Join(dir, "bad.yaml")
		if err := os.WriteFile(cfg, []byte(encodeConfig(filepath.Join(dir, "bad"), addr, set, "acme.v1.Readin")), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "run", "-c", cfg)
		cmd.Env = e2etest.CleanEnv()
		out, err := cmd.CombinedOutput()
		// Line 23 of the config holds the shape rule's target; the config
		// is refused as it loads, as `sluice validate` refuses it.
		want := cfg + `:23: rule "shape" to[0].message: unknown Protobuf message type "acme.v1.Readin"`
		if err == nil || !strings.Contains(string(out), want) {
			t.Fatalf("sluice run: %v, output:\n%s\nwant an exit naming %s", err, out, want)
		}
	})

	p := e2etest.Start(t, bin, encodeConfig(filepath.Join(dir, "data"), addr, set, "acme.v1.Reading"))
	c := e2etest.ConnectV3(t, p.MQTTAddr, "press-07")
	publish(t, c, "plant/north/reading", []byte(`{"temp":91.5,"ts":1700000000123,"lat":52.5}`))
	publish(t, c, "plant/north/raw", []byte(`{"device":"press-07","humidity":40}`)) // no such field
	publish(t, c, "plant/south/reading", []byte(`{"temp":20.25,"ts":1700000000456,"lat":-33.9}`))
	publish(t, c, "plant/north/raw", []byte(`{"device":"raw-1","ts_ms":"42","counters":{"errs":2}}`))
	wants := []string{
		`{"device":"press-07","temp":91.5,"tsMs":"1700000000123","tags":["north"],"status":"FAULT","location":{"lat":52.5}}`,
		`{"device":"press-07","temp":20.25,"tsMs":"1700000000456","tags":["south"],"status":"OK","location":{"lat":-33.9}}`,
		`{"device":"raw-1","tsMs":"42","counters":{"errs":2}}`,
	}

	recs := consume(t, addr, len(wants), 2*time.Minute)
	// One partition, one publisher: records are in publish order.
	for i, r := range recs {
		got, want := dynamicpb.NewMessage(md), dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(r.Value, got); err != nil {
			t.Fatalf("record %d: %x is not an acme.v1.Reading: %v", i, r.Value, err)
		}
		if err := protojson.Unmarshal([]byte(wants[i]), want); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, want) || string(r.Key) != "press-07" {
			t.Errorf("record %d: key %q, %v, want key press-07, %v", i, r.Key, got, want)
		}
	}

	entries := deadLetters(t, p.AdminURL)
	if len(entries) != 1 || entries[0].Rule != "raw" || entries[0].Sink != "events" ||
		!strings.Contains(entries[0].Error, `rule "raw" to[0].encoding: encoding acme.v1.Reading: `) ||
		!strings.Contains(entries[0].Error, `unknown field "humidity"`) {
		t.Fatalf("dead letters %+v, want the raw payload with the humidity field", entries)
	}
	t.Logf("dead letter reason: %s", entries[0].Error)
	st := p.Drained("shape", "events", 2, time.Minute)
	e2etest.CheckBalanced(t, st, "shape", "events", 0, true)
	if f := st.Flow("raw", "events"); f.Received != 2 || f.Delivered != 1 || f.DeadLettered != 1 {
		t.Errorf("raw→events %+v, want 2 received, 1 delivered, 1 dead-lettered", f)
	}
	p.Stop()
}

// consume reads records of readings.pb until want arrived and no more
// come for a second.
func consume(t testing.TB, addr string, want int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("readings.pb"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	deadline, lastNew := time.Now().Add(timeout), time.Now()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		if recs := fs.Records(); len(recs) > 0 {
			out, lastNew = append(out, recs...), time.Now()
		}
		if len(out) > want {
			t.Fatalf("%d records in readings.pb, want %d", len(out), want)
		}
		if len(out) == want && time.Since(lastNew) >= time.Second {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("read %d of %d records within %v", len(out), want, timeout)
		}
	}
}
