package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/internal/mqtttest"
)

var recorderSeq atomic.Int64

// recorder subscribes to everything under plant/ and keeps what arrives.
type recorder struct {
	mu      sync.Mutex
	samples map[string][]Sample // by machine prefix
	replies []Reply
	alarms  []Alarm
	client  mqtt.Client
}

func newRecorder(t *testing.T, addr string) *recorder {
	t.Helper()
	r := &recorder{samples: map[string][]Sample{}}
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(fmt.Sprintf("sim-test-%d", recorderSeq.Add(1)))
	r.client = mqtt.NewClient(opts)
	if tok := r.client.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connecting recorder: %v", tok.Error())
	}
	t.Cleanup(func() { r.client.Disconnect(100) })
	tok := r.client.Subscribe("plant/#", 1, func(_ mqtt.Client, m mqtt.Message) {
		r.mu.Lock()
		defer r.mu.Unlock()
		topic := m.Topic()
		switch {
		case strings.HasSuffix(topic, "/telemetry"):
			var s Sample
			if err := json.Unmarshal(m.Payload(), &s); err != nil {
				t.Errorf("telemetry on %s: %v", topic, err)
			}
			prefix := strings.TrimSuffix(topic, "/telemetry")
			r.samples[prefix] = append(r.samples[prefix], s)
		case strings.HasSuffix(topic, "/cmd/reply"):
			var rep Reply
			if err := json.Unmarshal(m.Payload(), &rep); err != nil {
				t.Errorf("reply on %s: %v", topic, err)
			}
			r.replies = append(r.replies, rep)
		case strings.HasSuffix(topic, "/alarm"):
			var a Alarm
			if err := json.Unmarshal(m.Payload(), &a); err != nil {
				t.Errorf("alarm on %s: %v", topic, err)
			}
			r.alarms = append(r.alarms, a)
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribing recorder: %v", tok.Error())
	}
	return r
}

func (r *recorder) machine(prefix string) []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Sample(nil), r.samples[prefix]...)
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testConfig is a fast simulation: 20 ms samples, a 100 ms drift.
func testConfig(addr string) Config {
	cfg := DefaultConfig()
	cfg.Addr = addr
	cfg.Site = "test"
	cfg.Lines, cfg.Machines = 2, 3
	cfg.Interval = 20 * time.Millisecond
	cfg.DriftTau = 100 * time.Millisecond
	cfg.FaultRate, cfg.ReconnectRate = 0, 0
	return cfg
}

// startSim runs a simulator until the test ends.
func startSim(t *testing.T, cfg Config) *Simulator {
	t.Helper()
	s, err := New(cfg, slog.New(slog.NewTextHandler(testLog{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("simulator: %v", err)
		}
	})
	return s
}

func TestTelemetryFromEveryMachine(t *testing.T) {
	b := mqtttest.StartSluice(t, mqtttest.SluiceConfig(), broker.Options{})
	rec := newRecorder(t, b.Addr())
	cfg := testConfig(b.Addr())
	startSim(t, cfg)
	var prefixes []string
	for l := 1; l <= cfg.Lines; l++ {
		for m := 1; m <= cfg.Machines; m++ {
			prefixes = append(prefixes, machinePrefix(cfg.Site, l, m))
		}
	}
	waitFor(t, 3*time.Second, "10 samples from all 6 machines", func() bool {
		for _, p := range prefixes {
			if len(rec.machine(p)) < 10 {
				return false
			}
		}
		return true
	})
	for _, p := range prefixes {
		t.Run(p, func(t *testing.T) {
			for i, s := range rec.machine(p) {
				switch {
				case s.TS < time.Now().Add(-time.Minute).UnixMilli() || s.TS > time.Now().UnixMilli()+1000:
					t.Errorf("sample %d: ts %d not recent", i, s.TS)
				case s.Temp < 10 || s.Temp > 120:
					t.Errorf("sample %d: temp %v out of range", i, s.Temp)
				case s.Vibration <= 0 || s.Vibration > 5:
					t.Errorf("sample %d: vibration %v out of running range", i, s.Vibration)
				case s.SpindleRPM < 5000 || s.SpindleRPM > 11000:
					t.Errorf("sample %d: rpm %v out of range", i, s.SpindleRPM)
				case s.State != StateRunning:
					t.Errorf("sample %d: state %q, want running", i, s.State)
				case s.Setpoint < 60 || s.Setpoint > 80:
					t.Errorf("sample %d: setpoint %v out of range", i, s.Setpoint)
				}
			}
		})
	}
}

func TestCommands(t *testing.T) {
	b := mqtttest.StartSluice(t, mqtttest.SluiceConfig(), broker.Options{})
	rec := newRecorder(t, b.Addr())
	cfg := testConfig(b.Addr())
	startSim(t, cfg)
	target := machinePrefix(cfg.Site, 2, 2)
	waitFor(t, 3*time.Second, "first samples", func() bool { return len(rec.machine(target)) >= 5 })

	send := func(t *testing.T, payload string) Reply {
		t.Helper()
		rec.mu.Lock()
		n := len(rec.replies)
		rec.mu.Unlock()
		tok := rec.client.Publish(target+"/cmd", 1, false, payload)
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publishing command: %v", tok.Error())
		}
		var rep Reply
		waitFor(t, 3*time.Second, "a reply", func() bool {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.replies) > n {
				rep = rec.replies[n]
				return true
			}
			return false
		})
		return rep
	}

	t.Run("setpoint", func(t *testing.T) {
		rep := send(t, `{"id":"c1","setpoint":150}`)
		if !rep.OK || rep.ID != "c1" || rep.Applied["setpoint"] != 150.0 {
			t.Fatalf("reply %+v, want ok with setpoint 150 and id c1", rep)
		}
		before := len(rec.machine(target))
		waitFor(t, 3*time.Second, "temp near the new setpoint", func() bool {
			s := rec.machine(target)
			return len(s) > before+3 && s[len(s)-1].Temp > 140
		})
		after := rec.machine(target)[before+1:]
		if after[0].Setpoint != 150 {
			t.Errorf("setpoint after the command = %v, want 150", after[0].Setpoint)
		}
		if after[len(after)-1].Temp <= after[0].Temp+20 {
			t.Errorf("temp went from %v to %v, want a clear rise toward 150", after[0].Temp, after[len(after)-1].Temp)
		}
	})
	t.Run("stop", func(t *testing.T) {
		rep := send(t, `{"state":"stop"}`)
		if !rep.OK || rep.Applied["state"] != "stop" {
			t.Fatalf("reply %+v, want ok stop", rep)
		}
		before := len(rec.machine(target))
		waitFor(t, 3*time.Second, "idle with the spindle stopped", func() bool {
			s := rec.machine(target)
			return len(s) > before+5 && s[len(s)-1].State == StateIdle && s[len(s)-1].SpindleRPM < s[before].SpindleRPM-100
		})
	})
	refused := []struct{ name, payload, want string }{
		{"bad json", `{"setpoint":`, "decoding command"},
		{"unknown field", `{"speed":5}`, "unknown field"},
		{"empty", `{}`, "neither"},
		{"setpoint range", `{"setpoint":9999}`, "not in"},
		{"bad state", `{"state":"explode"}`, "want start or stop"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			rep := send(t, tc.payload)
			if rep.OK || !strings.Contains(rep.Error, tc.want) {
				t.Fatalf("reply %+v, want refusal containing %q", rep, tc.want)
			}
		})
	}
}

func TestSameSeedSameSamples(t *testing.T) {
	b := mqtttest.StartSluice(t, mqtttest.SluiceConfig(), broker.Options{})
	first := func(site string, seed uint64) []Sample {
		rec := newRecorder(t, b.Addr())
		cfg := testConfig(b.Addr())
		cfg.Site, cfg.Seed = site, seed
		cfg.Lines, cfg.Machines = 1, 2
		s, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		p := machinePrefix(site, 1, 2)
		waitFor(t, 3*time.Second, "5 samples", func() bool { return len(rec.machine(p)) >= 5 })
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		out := rec.machine(p)[:5]
		for i := range out {
			out[i].TS = 0
		}
		return out
	}
	a, b2, c := first("seedA", 7), first("seedB", 7), first("seedC", 8)
	if fmt.Sprint(a) != fmt.Sprint(b2) {
		t.Errorf("seed 7 twice gave different samples:\n%v\n%v", a, b2)
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Errorf("seeds 7 and 8 gave the same samples: %v", a)
	}
}

// testLog sends simulator logs to t.Log until the test ends.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // log after the test ended: drop
	w.t.Logf("%s", p)
	return len(p), nil
}
