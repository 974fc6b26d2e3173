package mqtttest

import (
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/packet"
)

// ping connects a raw client and checks the broker answers PINGREQ.
func ping(t *testing.T, addr string, version byte) {
	t.Helper()
	c := Dial(t, addr, version)
	c.MustConnect("ping", 30)
	c.Send(&packet.Pingreq{})
	ExpectType[*packet.Pingresp](c, 5*time.Second)
	c.Send(&packet.Disconnect{})
	c.ExpectClosed(5 * time.Second)
}

func TestStartSluice(t *testing.T) {
	s := StartSluice(t, SluiceConfig(), brokerOptions())
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || strings.HasSuffix(s.Addr(), ":0") {
		t.Fatalf("address %q, want a bound loopback port", s.Addr())
	}
	ping(t, s.Addr(), packet.Version311)
	ping(t, s.Addr(), packet.Version5)
	if err := s.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(time.Second); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestStartMosquitto(t *testing.T) {
	m := StartMosquitto(t, MosquittoConfig{MaxPacketSize: 4096, MaxTopicAlias: 3})
	ping(t, m.Addr(), packet.Version311)
	c := Dial(t, m.Addr(), packet.Version5)
	a := c.Connect(&packet.Connect{ClientID: []byte("limits"), CleanStart: true, KeepAlive: 30})
	if a.Props.MaximumPacketSize != 4096 || a.Props.TopicAliasMaximum != 3 {
		t.Fatalf("CONNACK max packet size %d, topic alias max %d: config not applied", a.Props.MaximumPacketSize, a.Props.TopicAliasMaximum)
	}
	m.Stop()
	m.Stop()
	if _, closed := c.Closed(5 * time.Second); !closed {
		t.Fatal("connection still open after Stop")
	}
}

func TestConnReportsClose(t *testing.T) {
	s := StartSluice(t, SluiceConfig(), brokerOptions())
	c := Dial(t, s.Addr(), packet.Version311)
	c.SendRaw([]byte{0xC0, 0x00}) // PINGREQ before CONNECT: the server must close
	got, closed := c.Closed(5 * time.Second)
	if !closed || len(got) != 0 {
		t.Fatalf("closed=%v got %s", closed, DescribeAll(got))
	}
}

func brokerOptions() broker.Options { return broker.Options{} }
