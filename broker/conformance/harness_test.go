package conformance

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/internal/mqtttest"
)

var brokerFlag = flag.String("broker", os.Getenv("SLUICE_CONFORMANCE_BROKER"),
	"comma-separated brokers to test: sluice, mosquitto (default: sluice, plus mosquitto when installed or CI=true)")

// TestMain raises the default -parallel: the suite's tests mostly wait on
// timers (keepalive, expiry, will delay), so running them 2 at a time on a
// 2-core machine would make the suite several times slower for no gain.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		_ = flag.Set("test.parallel", "32")
	}
	code := m.Run()
	if msg := checkCoverage(); msg != "" {
		fmt.Fprintln(os.Stderr, "FAIL:", msg)
		code = 1
	}
	os.Exit(code)
}

// target is one kind of broker the suite runs against.
type target struct {
	name string
	// deviations lists tests (by full leaf name) this broker is known to
	// fail, with the reason. Only the reference broker has any: Sluice
	// must pass everything.
	deviations map[string]string
}

var sluiceTarget = &target{name: "sluice"}

// mosquittoTarget documents where mosquitto 2.0 deviates from the spec
// (or from a SHOULD that Sluice implements); those tests are skipped for
// mosquitto only.
var mosquittoTarget = &target{name: "mosquitto", deviations: mosquittoDeviations}

func targets(t *testing.T) []*target {
	sel := strings.TrimSpace(*brokerFlag)
	if sel == "" {
		out := []*target{sluiceTarget}
		if mqtttest.MosquittoAvailable() || os.Getenv("CI") == "true" {
			out = append(out, mosquittoTarget)
		}
		return out
	}
	var out []*target
	for _, name := range strings.Split(sel, ",") {
		switch strings.TrimSpace(name) {
		case "sluice":
			out = append(out, sluiceTarget)
		case "mosquitto":
			out = append(out, mosquittoTarget)
		default:
			t.Fatalf("-broker: unknown broker %q (want sluice or mosquitto)", name)
		}
	}
	return out
}

// forEachBroker runs fn once per selected broker, as a subtest named
// after it. The calling top-level test runs in parallel with the others.
func forEachBroker(t *testing.T, fn func(t *testing.T, tg *target)) {
	t.Parallel()
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) { fn(t, tg) })
	}
}

// run runs one conformance case as a parallel subtest named name, which
// starts with the statement id(s) it checks. Known deviations of the
// target are skipped with their reason.
func (tg *target) run(t *testing.T, name string, fn func(t *testing.T, tg *target)) {
	t.Helper()
	record(t, name)
	t.Run(name, func(t *testing.T) {
		if reason, ok := tg.deviations[name]; ok {
			t.Skipf("%s deviates: %s", tg.name, reason)
		}
		t.Parallel()
		fn(t, tg)
	})
}

// opts are broker settings a test needs; zero means the broker default.
// They map onto both brokers' configuration.
type opts struct {
	MaxPacketSize     uint32
	ReceiveMaximum    uint16 // inbound window advertised in CONNACK
	MaxInflight       uint16 // outbound window
	MaxQueuedMessages int
	MaxQueuedBytes    int
	TopicAliasMaximum uint16
	Consumer          broker.Consumer // Sluice only
}

// server is one running broker.
type server struct {
	kind   string
	addr   string
	sluice *mqtttest.Sluice
	mosq   *mqtttest.Mosquitto
}

// start starts a fresh broker of the target's kind for this test.
func (tg *target) start(t *testing.T, o opts) *server {
	t.Helper()
	switch tg.name {
	case "mosquitto":
		inflight := o.MaxInflight
		if o.ReceiveMaximum != 0 {
			// mosquitto has one knob for both directions.
			inflight = o.ReceiveMaximum
		}
		m := mqtttest.StartMosquitto(t, mqtttest.MosquittoConfig{
			MaxPacketSize:     o.MaxPacketSize,
			MaxInflight:       inflight,
			MaxQueuedMessages: o.MaxQueuedMessages,
			MaxQueuedBytes:    o.MaxQueuedBytes,
			MaxTopicAlias:     o.TopicAliasMaximum,
		})
		return &server{kind: tg.name, addr: m.Addr(), mosq: m}
	default:
		cfg := mqtttest.SluiceConfig()
		cfg.ConnectTimeout = 2 * time.Second
		if o.MaxPacketSize != 0 {
			cfg.MaxPacketSize = o.MaxPacketSize
		}
		if o.ReceiveMaximum != 0 {
			cfg.ReceiveMaximum = o.ReceiveMaximum
		}
		if o.MaxInflight != 0 {
			cfg.MaxInflight = o.MaxInflight
		}
		if o.MaxQueuedMessages != 0 {
			cfg.MaxQueuedMessages = o.MaxQueuedMessages
		}
		if o.MaxQueuedBytes != 0 {
			cfg.MaxQueuedBytes = o.MaxQueuedBytes
		}
		if o.TopicAliasMaximum != 0 {
			cfg.TopicAliasMaximum = o.TopicAliasMaximum
		}
		s := mqtttest.StartSluice(t, cfg, broker.Options{Consumer: o.Consumer})
		return &server{kind: tg.name, addr: s.Addr(), sluice: s}
	}
}

// shutdown stops the broker gracefully (Serve's ctx cancelled, or
// SIGTERM for mosquitto).
func (s *server) shutdown(t *testing.T) {
	t.Helper()
	if s.mosq != nil {
		s.mosq.Stop()
		return
	}
	if err := s.sluice.Stop(10 * time.Second); err != nil {
		t.Errorf("stopping sluice: %v", err)
	}
}

// uniq returns a name unique within the process, for client ids and
// topics.
func uniq(prefix string) string {
	n := seq.Add(1)
	return fmt.Sprintf("%s%d", prefix, n)
}
