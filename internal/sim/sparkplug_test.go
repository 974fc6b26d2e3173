package sim

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/internal/mqtttest"
	"github.com/sluicehq/sluice/schemas/sparkplug"
)

// spMsg is one Sparkplug message as Sluice's decoder sees it.
type spMsg struct {
	topic   sparkplug.Topic
	seq     int64 // -1 when absent
	metrics map[string]any
}

// spRecorder decodes everything under spBv1.0/ with the real Sparkplug
// decoder (which resolves aliases from the births it saw), in order.
type spRecorder struct {
	mu     sync.Mutex
	msgs   []spMsg
	dec    *sparkplug.Decoder
	errs   []error
	client mqtt.Client
}

func newSPRecorder(t *testing.T, addr string) *spRecorder {
	t.Helper()
	dec, err := sparkplug.New(sparkplug.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := &spRecorder{dec: dec}
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(fmt.Sprintf("sp-test-%d", recorderSeq.Add(1)))
	r.client = mqtt.NewClient(opts)
	if tok := r.client.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connecting recorder: %v", tok.Error())
	}
	t.Cleanup(func() { r.client.Disconnect(100) })
	tok := r.client.Subscribe("spBv1.0/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		top, err := sparkplug.ParseTopic(m.Topic())
		var out any
		if err == nil {
			out, err = r.dec.Decode(m.Topic(), m.Payload())
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("%s: %w", m.Topic(), err))
			return
		}
		msg := spMsg{topic: top, seq: -1, metrics: map[string]any{}}
		d := out.(map[string]any)
		if s, ok := d["seq"].(int64); ok {
			msg.seq = s
		}
		for _, x := range d["metrics"].([]any) {
			mm := x.(map[string]any)
			msg.metrics[fmt.Sprint(mm["name"])] = mm["value"]
		}
		r.msgs = append(r.msgs, msg)
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribing recorder: %v", tok.Error())
	}
	return r
}

// find returns the messages from index from on that match.
func (r *spRecorder) find(from int, typ, edge, device string) []spMsg {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []spMsg
	for _, m := range r.msgs[min(from, len(r.msgs)):] {
		if m.topic.Type == typ && m.topic.EdgeNode == edge && m.topic.Device == device {
			out = append(out, m)
		}
	}
	return out
}

func (r *spRecorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func spTestConfig(addr string) Config {
	cfg := testConfig(addr)
	cfg.Format = FormatSparkplugB
	return cfg
}

// publishCmd publishes a Sparkplug command at QoS 1.
func publishCmd(t *testing.T, c mqtt.Client, topic string, metrics ...sparkplug.OutMetric) {
	t.Helper()
	b, err := (&sparkplug.Message{Timestamp: nowMs(), Metrics: metrics}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if tok := c.Publish(topic, 1, false, b); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publishing %s: %v", topic, tok.Error())
	}
}

func TestSparkplugBirthsAndData(t *testing.T) {
	b := mqtttest.StartSluice(t, mqtttest.SluiceConfig(), broker.Options{})
	rec := newSPRecorder(t, b.Addr())
	cfg := spTestConfig(b.Addr())
	startSim(t, cfg)
	// 100 rounds: over 300 messages per node, so seq wraps past 255.
	waitFor(t, 10*time.Second, "100 DDATA from line2/machine3", func() bool {
		return len(rec.find(0, sparkplug.DDATA, "line2", "machine3")) >= 100
	})
	for l := 1; l <= cfg.Lines; l++ {
		edge := fmt.Sprintf("line%d", l)
		t.Run(edge, func(t *testing.T) {
			nb := rec.find(0, sparkplug.NBIRTH, edge, "")
			if len(nb) != 1 || nb[0].seq != 0 || nb[0].metrics[metricBdSeq] != int64(0) || nb[0].metrics[metricRebirth] != false {
				t.Fatalf("NBIRTH %+v, want one with seq 0, bdSeq 0, rebirth false", nb)
			}
			if !rec.dec.Online(cfg.Site, edge, "") {
				t.Errorf("decoder sees %s offline", edge)
			}
			for m := 1; m <= cfg.Machines; m++ {
				dev := fmt.Sprintf("machine%d", m)
				db := rec.find(0, sparkplug.DBIRTH, edge, dev)
				if len(db) != 1 || len(db[0].metrics) != len(deviceMetrics) {
					t.Fatalf("%s DBIRTH %+v, want one with %d metrics", dev, db, len(deviceMetrics))
				}
				for i, d := range rec.find(0, sparkplug.DDATA, edge, dev) {
					v := d.metrics
					// Names come from the aliases of the births.
					temp, _ := v["temp"].(float64)
					rpm, _ := v["spindle_rpm"].(int64)
					if temp < 10 || temp > 120 || rpm < 5000 || rpm > 11000 || v["state"] != "running" || v["fault"] != false {
						t.Fatalf("%s DDATA %d: %v", dev, i, v)
					}
				}
			}
		})
	}
	// Every node's messages count seq up by one from the NBIRTH's 0.
	rec.mu.Lock()
	defer rec.mu.Unlock()
	next, wrapped := map[string]int64{}, false
	for i, m := range rec.msgs {
		if m.seq < 0 {
			continue
		}
		if want, ok := next[m.topic.EdgeNode]; ok && m.seq != want {
			t.Fatalf("message %d (%s %s/%s) seq %d, want %d", i, m.topic.Type, m.topic.EdgeNode, m.topic.Device, m.seq, want)
		}
		next[m.topic.EdgeNode] = (m.seq + 1) % 256
		wrapped = wrapped || m.seq == 255
	}
	if !wrapped {
		t.Error("no message with seq 255: the wrap was not exercised")
	}
	if len(rec.errs) > 0 {
		t.Errorf("decoding errors: %v", rec.errs)
	}
}

func TestSparkplugCommands(t *testing.T) {
	b := mqtttest.StartSluice(t, mqtttest.SluiceConfig(), broker.Options{})
	rec := newSPRecorder(t, b.Addr())
	cfg := spTestConfig(b.Addr())
	s := startSim(t, cfg)
	waitFor(t, 5*time.Second, "first DDATA", func() bool { return len(rec.find(0, sparkplug.DDATA, "line1", "machine2")) >= 3 })
	dcmd := spTopic(cfg.Site, sparkplug.DCMD, "line1", "machine2")

	t.Run("rebirth", func(t *testing.T) {
		from := rec.mark()
		if tok := rec.client.Publish(sparkplug.RebirthTopic(cfg.Site, "line1"), 0, false, sparkplug.RebirthPayload(nowMs())); !tok.WaitTimeout(5 * time.Second) {
			t.Fatal("publishing rebirth")
		}
		waitFor(t, 5*time.Second, "NBIRTH and DBIRTHs again", func() bool {
			return len(rec.find(from, sparkplug.NBIRTH, "line1", "")) == 1 && len(rec.find(from, sparkplug.DBIRTH, "line1", "machine3")) == 1
		})
		nb := rec.find(from, sparkplug.NBIRTH, "line1", "")[0]
		if nb.seq != 0 || nb.metrics[metricBdSeq] != int64(0) {
			t.Errorf("rebirth NBIRTH seq %d bdSeq %v, want 0 and the session's 0", nb.seq, nb.metrics[metricBdSeq])
		}
		if got := s.Stats().Rebirths; got != 1 {
			t.Errorf("rebirths = %d, want 1", got)
		}
	})
	t.Run("setpoint by name", func(t *testing.T) {
		from := rec.mark()
		publishCmd(t, rec.client, dcmd, sparkplug.OutMetric{Name: "setpoint", Datatype: sparkplug.TypeDouble, Value: 150.0})
		waitFor(t, 5*time.Second, "temp rising toward 150", func() bool {
			d := rec.find(from, sparkplug.DDATA, "line1", "machine2")
			if len(d) < 3 || d[len(d)-1].metrics["setpoint"] != 150.0 {
				return false
			}
			temp, _ := d[len(d)-1].metrics["temp"].(float64)
			return temp > 140
		})
	})
	t.Run("state by alias", func(t *testing.T) {
		from := rec.mark()
		alias := uint64(200 + metricIndex("state") + 1)
		publishCmd(t, rec.client, dcmd, sparkplug.OutMetric{Alias: alias, HasAlias: true, Datatype: sparkplug.TypeString, Value: "stop"})
		waitFor(t, 5*time.Second, "idle", func() bool {
			d := rec.find(from, sparkplug.DDATA, "line1", "machine2")
			return len(d) > 0 && d[len(d)-1].metrics["state"] == "idle"
		})
	})
	refused := []struct {
		name   string
		metric sparkplug.OutMetric
	}{
		{"unknown metric", sparkplug.OutMetric{Name: "speed", Datatype: sparkplug.TypeDouble, Value: 5.0}},
		{"setpoint out of range", sparkplug.OutMetric{Name: "setpoint", Datatype: sparkplug.TypeDouble, Value: 9999.0}},
		{"setpoint not a number", sparkplug.OutMetric{Name: "setpoint", Datatype: sparkplug.TypeString, Value: "hot"}},
		{"bad state", sparkplug.OutMetric{Name: "state", Datatype: sparkplug.TypeString, Value: "explode"}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Stats().Commands
			from := rec.mark()
			publishCmd(t, rec.client, dcmd, tc.metric)
			waitFor(t, 5*time.Second, "the command counted", func() bool { return s.Stats().Commands > before })
			waitFor(t, 5*time.Second, "3 more DDATA", func() bool { return len(rec.find(from, sparkplug.DDATA, "line1", "machine2")) >= 3 })
			for _, d := range rec.find(from, sparkplug.DDATA, "line1", "machine2") {
				if d.metrics["setpoint"] != 150.0 || d.metrics["state"] != "idle" {
					t.Fatalf("after a refused command: %v, want setpoint 150 and idle unchanged", d.metrics)
				}
			}
		})
	}
}

// TestSparkplugDrops cuts the edge nodes' connections: the broker sends
// each session's will (NDEATH with its bdSeq), and the node comes back
// with the next bdSeq and fresh births.
func TestSparkplugDrops(t *testing.T) {
	b := mqtttest.StartSluice(t, mqtttest.SluiceConfig(), broker.Options{})
	rec := newSPRecorder(t, b.Addr())
	cfg := spTestConfig(b.Addr())
	cfg.Lines, cfg.Machines = 1, 2
	cfg.ReconnectRate = 3
	s := startSim(t, cfg)
	waitFor(t, 20*time.Second, "3 reconnects", func() bool { return s.Stats().Reconnects >= 3 })
	waitFor(t, 5*time.Second, "the third NDEATH", func() bool { return len(rec.find(0, sparkplug.NDEATH, "line1", "")) >= 3 })
	births := rec.find(0, sparkplug.NBIRTH, "line1", "")
	deaths := rec.find(0, sparkplug.NDEATH, "line1", "")
	for i := range min(len(births), len(deaths)) {
		if births[i].metrics[metricBdSeq] != int64(i) || deaths[i].metrics[metricBdSeq] != int64(i) {
			t.Errorf("session %d: NBIRTH bdSeq %v, NDEATH bdSeq %v, want both %d", i, births[i].metrics[metricBdSeq], deaths[i].metrics[metricBdSeq], i)
		}
	}
	from := rec.mark()
	waitFor(t, 5*time.Second, "data after the drops", func() bool { return len(rec.find(from, sparkplug.DDATA, "line1", "machine2")) >= 5 })
}

// TestSparkplugCleanStop checks that a node stopping publishes its own
// NDEATH (the broker sends no will after a DISCONNECT).
func TestSparkplugCleanStop(t *testing.T) {
	b := mqtttest.StartSluice(t, mqtttest.SluiceConfig(), broker.Options{})
	rec := newSPRecorder(t, b.Addr())
	cfg := spTestConfig(b.Addr())
	cfg.Lines, cfg.Machines = 1, 1
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, 5*time.Second, "DDATA", func() bool { return len(rec.find(0, sparkplug.DDATA, "line1", "machine1")) >= 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the NDEATH", func() bool { return len(rec.find(0, sparkplug.NDEATH, "line1", "")) == 1 })
	if d := rec.find(0, sparkplug.NDEATH, "line1", "")[0]; d.metrics[metricBdSeq] != int64(0) {
		t.Errorf("NDEATH %v, want bdSeq 0", d.metrics)
	}
	if rec.dec.Online(cfg.Site, "line1", "") {
		t.Error("the decoder still sees line1 online")
	}
}
