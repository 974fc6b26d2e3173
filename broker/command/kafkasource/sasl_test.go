package kafkasource

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/sluicehq/sluice/sinks/kafka"
)

// TestSASL reads from a Kafka that requires SASL, with each mechanism the
// sink supports (the password from the environment too); a wrong
// password reads nothing.
func TestSASL(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "commands"), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "plainuser", "plainpass"),
		kfake.Superuser("SCRAM-SHA-256", "scram256", "pass256"),
		kfake.Superuser("SCRAM-SHA-512", "scram512", "pass512"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.SASL(plain.Auth{User: "plainuser", Pass: "plainpass"}.AsMechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if err := prod.ProduceSync(t.Context(), keyed("d1")...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SLUICE_TEST_COMMANDS_KAFKA_PASS", "pass512")
	tests := []struct {
		name string
		sasl kafka.SASLConfig
		read bool
	}{
		{"plain", kafka.SASLConfig{Mechanism: "plain", Username: "plainuser", Password: "plainpass"}, true},
		{"scram-sha-256", kafka.SASLConfig{Mechanism: "scram-sha-256", Username: "scram256", Password: "pass256"}, true},
		{"scram-sha-512 from env", kafka.SASLConfig{Mechanism: "scram-sha-512", Username: "scram512", Password: "${SLUICE_TEST_COMMANDS_KAFKA_PASS}"}, true},
		{"wrong password", kafka.SASLConfig{Mechanism: "scram-sha-256", Username: "scram256", Password: "nope"}, false},
		{"no sasl", kafka.SASLConfig{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(addr, "commands", "g-"+tt.name)
			cfg.SASL = tt.sasl
			sub := newFakeSubmitter()
			r := startSource(t, cfg, sub)
			got := func() bool {
				cmds, _, _ := sub.snapshot()
				return cmds["commands-0-0"].Device == "d1"
			}
			if tt.read {
				waitFor(t, "the record over SASL", got)
				return
			}
			time.Sleep(time.Second)
			r.stop(t)
			if got() {
				t.Fatal("read without valid credentials")
			}
		})
	}
	cfg := testConfig(addr, "commands", "g-env")
	cfg.SASL = kafka.SASLConfig{Mechanism: "plain", Username: "u", Password: "${SLUICE_TEST_COMMANDS_KAFKA_UNSET}"}
	if _, err := New(cfg, newFakeSubmitter(), Options{}); err == nil {
		t.Fatal("New accepted a password from an unset environment variable")
	}
}
