package broker

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/broker/listener"
	"github.com/sluicehq/sluice/broker/packet"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mut  func(*Config)
		want []string
	}{
		{"defaults", func(*Config) {}, nil},
		{"no listeners", func(c *Config) { c.Listeners = nil }, []string{"listeners: at least one listener is required"}},
		{"listener problems", func(c *Config) {
			c.Listeners = []ListenerConfig{
				{Config: listener.Config{Name: "a", Address: "127.0.0.1:1883"}},
				{Config: listener.Config{Name: "a", Address: "127.0.0.1"}},
				{Config: listener.Config{Name: "", Address: ""}},
				{Config: listener.Config{Name: "d", Address: "host:99999"}},
			}
		}, []string{
			`listeners[1].name: duplicate of listeners[0].name "a"`,
			"listeners[1].address: missing port",
			"listeners[2].name: missing",
			"listeners[2].address: missing",
			`listeners[3].address: invalid port "99999"`,
		}},
		{"limits", func(c *Config) {
			c.MaxPacketSize = 10
			c.ReceiveMaximum = 0
			c.MaxInflight = 0
			c.MaxQueuedMessages = -1
			c.MaxQueuedBytes = -1
			c.MaxBufferedBytes = 10
		}, []string{
			"max_packet_size: 10 out of range [64, 268435460]",
			"receive_maximum: must be at least 1",
			"max_inflight: must be at least 1",
			"max_queued_messages: must not be negative",
			"max_queued_bytes: must not be negative",
			"max_buffered_bytes: must be at least 1024",
		}},
		{"durations", func(c *Config) {
			c.ConnectTimeout = 0
			c.RejectWait = -time.Second
			c.MaxSessionExpiry = time.Millisecond
			c.MaxKeepAlive = 100000 * time.Second
		}, []string{
			"max_session_expiry: must be 0 or at least 1s",
			"max_keep_alive: must be 0 or within [1s, 65535s]",
			"connect_timeout: must be positive",
			"reject_wait: must not be negative",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mut(&c)
			var got []string
			for _, err := range c.Validate() {
				got = append(got, err.Error())
			}
			if strings.Join(sorted(got), "\n") != strings.Join(sorted(tt.want), "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
	if _, err := New(Config{}, Options{}); err == nil {
		t.Error("New accepted an empty config")
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	s, addr := startServer(t, nil, Options{Registerer: reg})
	sub := dialRaw(t, addr, packet.Version5)
	sub.connect(&packet.Connect{ClientID: []byte("sub"), CleanStart: true})
	subscribe(t, sub, packet.Subscription{Filter: []byte("m/#"), QoS: 1})
	pub := dialRaw(t, addr, packet.Version5)
	pub.connect(&packet.Connect{ClientID: []byte("pub"), CleanStart: true})
	pub.publish("m/1", 1, 1, "x")
	pub.expectAck(packet.PUBACK, 1, 0)
	pub.publish("m/2", 0, 0, "y")
	readPublish(t, sub)
	readPublish(t, sub)
	waitFor(t, func() bool { return s.Stats().Sent == 2 })
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case m.GetCounter() != nil:
				got[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[name] = m.GetGauge().GetValue()
			}
		}
	}
	want := map[string]float64{
		"sluice_broker_connections":                                               2,
		"sluice_broker_sessions":                                                  2,
		"sluice_broker_subscriptions":                                             1,
		"sluice_broker_messages_received_total{qos=0}":                            1,
		"sluice_broker_messages_received_total{qos=1}":                            1,
		"sluice_broker_messages_received_total{qos=2}":                            0,
		"sluice_broker_messages_sent_total":                                       2,
		"sluice_broker_messages_dropped_total{reason=offline}":                    0,
		"sluice_broker_listener_handshakes_total{listener=test}{result=accepted}": 2,
		"sluice_broker_denied_total{action=publish}":                              0,
		"sluice_broker_connections_refused_total{reason=max_connections}":         0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if len(got) < 15 {
		t.Errorf("gathered %d series: %v", len(got), got)
	}
	if cl := s.Clients(); len(cl) != 2 || cl[0].Listener != "test" || cl[0].Version != 5 {
		t.Errorf("clients = %+v", cl)
	}
	if st := s.Stats(); st.BytesIn == 0 || st.BytesOut == 0 {
		t.Errorf("byte counters = %d/%d", st.BytesIn, st.BytesOut)
	}
}
