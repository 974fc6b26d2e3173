package conformance

import (
	"testing"

	"github.com/sluicehq/sluice/broker/packet"
	"github.com/sluicehq/sluice/internal/mqtttest"
)

// Helpers for raw clients speaking through the packet codec.

// rawSession connects a raw client. clean=false asks for a persistent
// session (v5: session expiry 60 s). It returns the CONNACK.
func rawSession(t *testing.T, s *server, version byte, id string, clean bool) (*mqtttest.Conn, *packet.Connack) {
	t.Helper()
	c := mqtttest.Dial(t, s.addr, version)
	cp := &packet.Connect{ClientID: []byte(id), CleanStart: clean, KeepAlive: 30}
	if version == packet.Version5 && !clean {
		cp.Props.SessionExpiry = 60
		cp.Props.Set(packet.PropSessionExpiry)
	}
	ack := c.Connect(cp)
	if ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK reason 0x%02x", byte(ack.ReasonCode))
	}
	return c, ack
}

// rawSub subscribes to one filter and checks the SUBACK grants exactly
// the requested QoS.
func rawSub(t *testing.T, c *mqtttest.Conn, id uint16, filter string, qos byte) {
	t.Helper()
	rawSubOpts(t, c, id, packet.Subscription{Filter: []byte(filter), QoS: qos}, nil)
}

// rawSubOpts subscribes with full options and optional properties.
func rawSubOpts(t *testing.T, c *mqtttest.Conn, id uint16, sub packet.Subscription, props *packet.Properties) {
	t.Helper()
	p := &packet.Subscribe{PacketID: id, Subs: []packet.Subscription{sub}}
	if props != nil {
		p.Props = *props
	}
	c.Send(p)
	ack := mqtttest.ExpectType[*packet.Suback](c, wait)
	if ack.PacketID != id {
		t.Fatalf("SUBACK id %d, want %d", ack.PacketID, id)
	}
	if len(ack.Codes) != 1 || byte(ack.Codes[0]) != sub.QoS {
		t.Fatalf("SUBACK codes % x for %q, want granted QoS %d", ack.Codes, sub.Filter, sub.QoS)
	}
}

// rawPub sends a PUBLISH.
func rawPub(c *mqtttest.Conn, topic string, qos byte, id uint16, payload string) {
	c.Send(&packet.Publish{Topic: []byte(topic), QoS: qos, PacketID: id, Payload: []byte(payload)})
}

// expectPublish reads a PUBLISH and checks topic and payload.
func expectPublish(t *testing.T, c *mqtttest.Conn, topic, payload string) *packet.Publish {
	t.Helper()
	p := mqtttest.ExpectType[*packet.Publish](c, wait)
	if string(p.Topic) != topic || string(p.Payload) != payload {
		t.Fatalf("got %s, want topic %q payload %q", mqtttest.Describe(p), topic, payload)
	}
	return p
}

// expectAck reads an ack of the given kind and checks its packet id.
func expectAck(t *testing.T, c *mqtttest.Conn, kind packet.Type, id uint16) *packet.Ack {
	t.Helper()
	p := c.Expect(wait)
	a, ok := p.(*packet.Ack)
	if !ok || a.Kind != kind || a.PacketID != id {
		t.Fatalf("got %s, want %s for packet id %d", mqtttest.Describe(p), kind, id)
	}
	return a
}

// rawDisconnect sends DISCONNECT and waits for the server to close the
// connection, so the session is offline before the test goes on.
func rawDisconnect(t *testing.T, c *mqtttest.Conn) {
	t.Helper()
	c.Send(&packet.Disconnect{})
	c.ExpectClosed(wait)
}

func ack(kind packet.Type, id uint16) *packet.Ack { return &packet.Ack{Kind: kind, PacketID: id} }
