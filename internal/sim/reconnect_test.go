package sim

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/internal/mqtttest"
)

// TestReconnects drops every machine's connection about twice a second
// and checks that each machine comes back every time: its samples keep
// arriving, none is lost to a dead client, and commands are still obeyed
// through the resumed session's subscription.
func TestReconnects(t *testing.T) {
	b := mqtttest.StartSluice(t, mqtttest.SluiceConfig(), broker.Options{})
	rec := newRecorder(t, b.Addr())
	cfg := testConfig(b.Addr())
	cfg.ReconnectRate = 2
	s := startSim(t, cfg)
	var prefixes []string
	for l := 1; l <= cfg.Lines; l++ {
		for m := 1; m <= cfg.Machines; m++ {
			prefixes = append(prefixes, machinePrefix(cfg.Site, l, m))
		}
	}
	waitFor(t, 20*time.Second, "30 reconnects", func() bool { return s.Stats().Reconnects >= 30 })
	counts := map[string]int{}
	for _, p := range prefixes {
		counts[p] = len(rec.machine(p))
	}
	// After all those drops, every machine still publishes.
	waitFor(t, 5*time.Second, "20 more samples from every machine", func() bool {
		for _, p := range prefixes {
			if len(rec.machine(p)) < counts[p]+20 {
				return false
			}
		}
		return true
	})
	target := machinePrefix(cfg.Site, 1, 2)
	tok := rec.client.Publish(target+"/cmd", 1, false, `{"id":"after-drops","setpoint":100}`)
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publishing command: %v", tok.Error())
	}
	waitFor(t, 5*time.Second, "the reply to a command sent after the drops", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, r := range rec.replies {
			if r.ID == "after-drops" && r.OK {
				return true
			}
		}
		return false
	})
	st := s.Stats()
	// A sample due while a machine reconnects may be lost; a machine that
	// stays offline would lose hundreds.
	if st.Dropped > st.Reconnects*2 || st.Unacked != 0 {
		t.Errorf("stats %+v: at most two samples dropped per reconnect and none unacked", st)
	}
}
