package e2e

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"
	"github.com/sluicehq/sluice/internal/e2etest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The rule under test, as in rules/README.md: the site and line come from
// the topic, the value is a transform of the JSON payload, the Kafka topic
// is a template and the key the client id.
const ruleName, sinkName = "line-telemetry", "events"

// sluiceConfig is a config for one test: JSON logs, MQTT and admin
// listeners on free ports, the spool in dataDir, a Kafka sink to
// kafkaAddr and the rule above. transform "" leaves the payload as it is.
func sluiceConfig(kafkaAddr, dataDir, transform string) string {
	if transform != "" {
		transform = "    transform: '" + transform + "'\n"
	}
	return `
log: {level: info, format: json}
broker:
  listeners: [{name: e2e, address: "127.0.0.1:0", allow_anonymous: true}]
ingest:
  durability: spool
  data_dir: ` + dataDir + `
  retry: {initial: 50ms, max: 1s}
admin: {address: "127.0.0.1:0"}
sinks:
  ` + sinkName + `:
    type: kafka
    kafka:
      brokers: ["` + kafkaAddr + `"]
      topic: telemetry.default
      metadata_ttl: 1s
      dial_timeout: 5s
      write_timeout: 30s
rules:
  - name: ` + ruleName + `
    topics: ["plant/+/line/+/telemetry"]
    let: {site: level(1), line: level(3)}
` + transform + `    to:
      - sink: ` + sinkName + `
        topic: 'telemetry.{{ site }}'
        key: clientid
`
}

// jsonTransform reshapes {"seq":N,"temp":T} published on
// plant/SITE/line/LINE/telemetry.
const jsonTransform = `{"site": site, "line": line, "device": clientid, "seq": payload.seq, "temp": payload.temp}`

// kafkaTopics are the topics the tests' Kafka starts with.
const kafkaTopics = "telemetry.berlin,telemetry.paris,telemetry.default"

// published describes one MQTT publisher of a test.
type published struct {
	client, site, line string
	n                  int
	v5                 bool
}

func (p published) topic() string { return "plant/" + p.site + "/line/" + p.line + "/telemetry" }

// v5Props are the MQTT 5 properties the v5 publisher sends; user
// properties keep their order and repeats all the way to Kafka headers.
var v5Props = &paho.PublishProperties{
	ContentType: "application/json",
	User:        paho.UserProperties{{Key: "shift", Value: "night"}, {Key: "site", Value: "north"}, {Key: "site", Value: "n2"}},
}

// TestMQTTToKafka publishes from MQTT 3.1.1 and 5 clients through the real
// binary's rule into Kafka and reads every record back with a Kafka
// consumer: content, topic, key, headers, partition and order per key,
// and count (exactly once without faults), then the admin accounting.
func TestMQTTToKafka(t *testing.T) {
	sluiceBin, kfakeBin := binaries(t)
	k := startKafka(t, kfakeBin, "-topics", kafkaTopics, "-partitions", "3")
	s := e2etest.Start(t, sluiceBin, sluiceConfig(k.Addr, filepath.Join(t.TempDir(), "data"), jsonTransform))

	pubs := []published{
		{client: "press-0", site: "berlin", line: "1", n: 300},
		{client: "press-1", site: "berlin", line: "2", n: 300},
		{client: "press-2", site: "paris", line: "1", n: 300},
		{client: "press-3", site: "paris", line: "7", n: 300},
		{client: "gauge-v5", site: "berlin", line: "9", n: 100, v5: true},
	}
	total := 0
	var wg sync.WaitGroup
	errs := make(chan error, len(pubs))
	for _, p := range pubs {
		total += p.n
		wg.Add(1)
		go func() {
			defer wg.Done()
			if p.v5 {
				errs <- publishV5(s.MQTTAddr, p)
			} else {
				errs <- publishV3(t, s.MQTTAddr, p)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	recs := readAll(t, k.Addr, total, time.Second, 2*time.Minute, `^telemetry\.`)
	if len(recs) != total {
		t.Errorf("Kafka holds %d records, want %d (exactly once without faults)", len(recs), total)
	}
	byKey := map[string][]*kgo.Record{}
	for _, r := range recs {
		byKey[string(r.Key)] = append(byKey[string(r.Key)], r)
	}
	for _, p := range pubs {
		t.Run(p.client, func(t *testing.T) {
			got := byKey[p.client]
			if len(got) != p.n {
				t.Fatalf("%d records with key %q, want %d", len(got), p.client, p.n)
			}
			for i, r := range got {
				if r.Partition != got[0].Partition {
					t.Fatalf("record %d in partition %d, earlier ones in %d: a key must stay in one partition", i, r.Partition, got[0].Partition)
				}
				if want := "telemetry." + p.site; r.Topic != want {
					t.Fatalf("record %d in topic %q, want %q", i, r.Topic, want)
				}
				// Records of a key are read in offset order: seq must count up.
				want := fmt.Sprintf(`{"device":%q,"line":%q,"seq":%d,"site":%q,"temp":%d.5}`, p.client, p.line, i, p.site, 20+i%10)
				if string(r.Value) != want {
					t.Fatalf("record %d (offset %d) value %s, want %s", i, r.Offset, r.Value, want)
				}
				if got, want := headers(r), wantHeaders(p); !slices.Equal(got, want) {
					t.Fatalf("record %d headers\n got %q\nwant %q", i, got, want)
				}
			}
		})
	}

	st := s.Drained(ruleName, sinkName, int64(total), time.Minute)
	e2etest.CheckBalanced(t, st, ruleName, sinkName, 0, true)
	if f := st.Flow(ruleName, sinkName); f.Received != int64(total) {
		t.Errorf("flow received %d, want %d", f.Received, total)
	}
	s.Stop()
}

// headers flattens a record's headers to "name=value".
func headers(r *kgo.Record) []string {
	out := make([]string, len(r.Headers))
	for i, h := range r.Headers {
		out[i] = h.Key + "=" + string(h.Value)
	}
	return out
}

// wantHeaders is what sinks/README.md promises, in order: mqtt_topic,
// client_id, qos, content_type when set, then the user properties.
func wantHeaders(p published) []string {
	h := []string{"mqtt_topic=" + p.topic(), "client_id=" + p.client, "qos=1"}
	if p.v5 {
		h = append(h, "content_type="+v5Props.ContentType)
		for _, u := range v5Props.User {
			h = append(h, u.Key+"="+u.Value)
		}
	}
	return h
}

// publishV3 publishes p.n messages at QoS 1 with paho.mqtt.golang, up to
// 32 in flight, and waits for every PUBACK.
func publishV3(t *testing.T, addr string, p published) error {
	c := e2etest.ConnectV3(t, addr, p.client)
	s := &e2etest.Streamer{Client: c, Topic: p.topic(), Payload: payload, Window: 32, Limit: p.n}
	s.Run(nil)
	acked, failed, err := s.Result()
	if err != nil || failed > 0 || len(acked) != p.n {
		return fmt.Errorf("%s: %d acked, %d failed: %v", p.client, len(acked), failed, err)
	}
	return nil
}

// publishV5 publishes p.n messages at QoS 1 with paho.golang (MQTT 5),
// carrying a content type and user properties, each waiting for its PUBACK.
func publishV5(addr string, p published) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: dialing: %w", p.client, err)
	}
	c := paho.NewClient(paho.ClientConfig{Conn: conn})
	if _, err := c.Connect(ctx, &paho.Connect{ClientID: p.client, CleanStart: true, KeepAlive: 60}); err != nil {
		return fmt.Errorf("%s: connecting: %w", p.client, err)
	}
	defer c.Disconnect(&paho.Disconnect{})
	for i := range p.n {
		payload := fmt.Appendf(nil, `{"seq":%d,"temp":%d.5}`, i, 20+i%10)
		resp, err := c.Publish(ctx, &paho.Publish{Topic: p.topic(), QoS: 1, Payload: payload, Properties: v5Props})
		if err != nil {
			return fmt.Errorf("%s: publish %d: %w", p.client, i, err)
		}
		if resp.ReasonCode >= 0x80 {
			return fmt.Errorf("%s: publish %d refused with reason %#x", p.client, i, resp.ReasonCode)
		}
	}
	return nil
}
