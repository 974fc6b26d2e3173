package sim

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/internal/mqtttest"
)

func TestReplyTopicTemplate(t *testing.T) {
	for _, tc := range []struct{ name, tmpl, id, want string }{
		{"default", "{prefix}/cmd/reply", "c1", "plant/s/line/1/machine/2/cmd/reply"},
		{"command service", "devices/{client_id}/replies/{id}", "c1", "devices/sim-1/replies/c1"},
		{"no id", "devices/{client_id}/replies/{id}", "", "plant/s/line/1/machine/2/cmd/reply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := replyTopic(tc.tmpl, "plant/s/line/1/machine/2", "sim-1", tc.id); got != tc.want {
				t.Errorf("replyTopic = %q, want %q", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "replies/#", "replies/{device}", "a//{id}"} {
		t.Run("invalid "+bad, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.ReplyTopic = bad
			if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "reply-topic") {
				t.Errorf("Validate() = %v, want a reply-topic error", err)
			}
		})
	}
}

// TestReplyTopic checks that replies go where the template says, with
// the command's id, as Sluice's command service expects of 3.1.1 devices.
func TestReplyTopic(t *testing.T) {
	b := mqtttest.StartSluice(t, mqtttest.SluiceConfig(), broker.Options{})
	cfg := testConfig(b.Addr())
	cfg.Lines, cfg.Machines = 1, 1
	cfg.ReplyTopic = "devices/{client_id}/replies/{id}"
	replies := make(chan mqtt.Message, 10)
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + b.Addr()).SetClientID("reply-test"))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connecting: %v", tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Subscribe("devices/#", 1, func(_ mqtt.Client, m mqtt.Message) { replies <- m }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribing: %v", tok.Error())
	}
	s := startSim(t, cfg)
	waitFor(t, 5*time.Second, "a sample", func() bool { return s.Stats().Sent > 0 })
	if tok := c.Publish(machinePrefix(cfg.Site, 1, 1)+"/cmd", 1, false, `{"id":"c42","setpoint":90}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publishing: %v", tok.Error())
	}
	select {
	case m := <-replies:
		var r Reply
		if err := json.Unmarshal(m.Payload(), &r); err != nil {
			t.Fatal(err)
		}
		if want := "devices/sluice-sim-test-l1-m1/replies/c42"; m.Topic() != want || !r.OK || r.ID != "c42" {
			t.Errorf("reply %+v on %s, want ok c42 on %s", r, m.Topic(), want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no reply within 5s")
	}
}
