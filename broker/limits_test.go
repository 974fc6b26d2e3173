package broker

import (
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/packet"
)

// expectRefused dials addr and checks the broker closes the socket
// without answering a CONNECT.
func expectRefused(t *testing.T, addr string) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	b, _ := packet.Append(nil, &packet.Connect{Version: packet.Version5, ProtocolName: []byte("MQTT"), ClientID: []byte("x"), CleanStart: true}, packet.Version5)
	nc.Write(b)
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var buf [16]byte
	if n, err := nc.Read(buf[:]); err != io.EOF && !isReset(err) {
		t.Fatalf("refused connection read %d bytes, err %v; want EOF", n, err)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func TestConnectionLimits(t *testing.T) {
	tests := []struct {
		name   string
		mut    func(*Config)
		accept int // connections accepted before the refused one
		reason string
	}{
		{"max_connections", func(c *Config) { c.MaxConnections = 2 }, 2, "max_connections"},
		{"max_connections_per_address", func(c *Config) { c.MaxConnectionsPerAddress = 1 }, 1, "max_connections_per_address"},
		{"connection_rate", func(c *Config) { c.ConnectionRate = 0.01; c.ConnectionBurst = 3 }, 3, "connection_rate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, addr := startServer(t, tc.mut, Options{})
			for i := range tc.accept {
				c := dialRaw(t, addr, packet.Version5)
				if ca := c.connect(&packet.Connect{ClientID: []byte{'c', byte('0' + i)}, CleanStart: true}); ca.ReasonCode != 0 {
					t.Fatalf("connection %d refused: 0x%02x", i, byte(ca.ReasonCode))
				}
			}
			expectRefused(t, addr)
			if got := s.Stats().Refused[tc.reason]; got != 1 {
				t.Fatalf("refused[%s] = %d, want 1", tc.reason, got)
			}
		})
	}
	t.Run("released on close", func(t *testing.T) {
		_, addr := startServer(t, func(c *Config) { c.MaxConnections = 1 }, Options{})
		for i := range 3 {
			c := dialRaw(t, addr, packet.Version5)
			if ca := c.connect(&packet.Connect{ClientID: []byte("again"), CleanStart: true}); ca.ReasonCode != 0 {
				t.Fatalf("reconnect %d refused", i)
			}
			c.send(&packet.Disconnect{})
			c.expectClosed(-1)
			time.Sleep(50 * time.Millisecond) // the server finishes the connection
		}
	})
}

func TestTopicAndSubscriptionLimits(t *testing.T) {
	_, addr := startServer(t, func(c *Config) {
		c.MaxSubscriptionsPerClient = 2
		c.MaxTopicLength = 16
		c.MaxTopicLevels = 3
	}, Options{})
	tests := []struct {
		name    string
		version byte
		filters []string
		want    []packet.ReasonCode
	}{
		{"v5 quota and topic limits", packet.Version5, []string{"a/b", "this/filter/is/too/long", "a/b/c/d", "c", "d"},
			[]packet.ReasonCode{1, packet.TopicFilterInvalid, packet.TopicFilterInvalid, 1, packet.QuotaExceeded}},
		{"v3 quota", packet.Version311, []string{"a", "b", "c"}, []packet.ReasonCode{1, 1, packet.UnspecifiedError}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr, tc.version)
			c.connect(&packet.Connect{ClientID: []byte("lim-" + tc.name[:2]), CleanStart: true})
			var subs []packet.Subscription
			for _, f := range tc.filters {
				subs = append(subs, packet.Subscription{Filter: []byte(f), QoS: 1})
			}
			sa := subscribe(t, c, subs...)
			for i := range tc.want {
				if sa.Codes[i] != tc.want[i] {
					t.Errorf("filter %q: 0x%02x, want 0x%02x", tc.filters[i], byte(sa.Codes[i]), byte(tc.want[i]))
				}
			}
		})
	}
	t.Run("publish topic limits", func(t *testing.T) {
		c := dialRaw(t, addr, packet.Version5)
		c.connect(&packet.Connect{ClientID: []byte("pub"), CleanStart: true})
		c.publish("this/topic/is/too/long", 1, 1, "x")
		c.expectAck(packet.PUBACK, 1, packet.TopicNameInvalid)
		c.publish("a/b/c/d", 1, 2, "x")
		c.expectAck(packet.PUBACK, 2, packet.TopicNameInvalid)
		c.publish("a/b/c", 1, 3, "x")
		c.expectAck(packet.PUBACK, 3, 0)
	})
}

func TestPublishRate(t *testing.T) {
	s, addr := startServer(t, func(c *Config) { c.PublishRate = 50; c.PublishBurst = 5 }, Options{})
	c := dialRaw(t, addr, packet.Version5)
	c.connect(&packet.Connect{ClientID: []byte("fast"), CleanStart: true})
	start := time.Now()
	const n = 30
	for i := 1; i <= n; i++ {
		c.publish("r", 1, uint16(i), "x")
	}
	for i := 1; i <= n; i++ {
		c.expectAck(packet.PUBACK, uint16(i), 0)
	}
	// 5 at once, then 25 at 50/s: at least 0.5 s.
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Fatalf("%d publishes acked in %v, faster than publish_rate", n, el)
	}
	if s.Stats().Throttled == 0 {
		t.Fatalf("throttled not counted")
	}
}

func TestSlowConsumerDisconnected(t *testing.T) {
	s, addr := startServer(t, func(c *Config) {
		c.MaxBufferedBytes = 1024
		c.SlowConsumerTimeout = 300 * time.Millisecond
	}, Options{})
	slow := dialRaw(t, addr, packet.Version5)
	slow.connect(&packet.Connect{ClientID: []byte("slow"), CleanStart: true})
	subscribe(t, slow, packet.Subscription{Filter: []byte("s/#")})
	// slow never reads again: its socket buffers fill, then its write
	// buffer, then messages for it are dropped until the deadline.
	payload := make([]byte, 4096)
	deadline := time.Now().Add(20 * time.Second)
	for s.Stats().SlowConsumers == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("slow consumer not disconnected; dropped %v", s.Stats().Dropped)
		}
		for range 100 {
			if err := s.Publish(&Message{Topic: "s/x", Payload: payload}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Millisecond)
	}
	waitFor(t, func() bool { return s.Stats().Connections == 0 })
}

func TestSysTopics(t *testing.T) {
	_, addr := startServer(t, func(c *Config) { c.SysInterval = 50 * time.Millisecond }, Options{Version: "v-test"})
	c := dialRaw(t, addr, packet.Version5)
	c.connect(&packet.Connect{ClientID: []byte("sys"), CleanStart: true})
	subscribe(t, c, packet.Subscription{Filter: []byte("$SYS/broker/#")})
	want := map[string]string{"$SYS/broker/version": "v-test", "$SYS/broker/clients/connected": "1"}
	got := map[string]string{}
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < 10 || got["$SYS/broker/clients/connected"] != "1" {
		if time.Now().After(deadline) {
			t.Fatalf("$SYS topics: %v", got)
		}
		p := readPublish(t, c)
		got[string(p.Topic)] = string(p.Payload)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, err := strconv.Atoi(got["$SYS/broker/uptime"]); err != nil {
		t.Errorf("uptime %q", got["$SYS/broker/uptime"])
	}
}
