package conformance

import (
	"slices"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/sluicehq/sluice/broker/packet"
	"github.com/sluicehq/sluice/internal/mqtttest"
)

// willConnect connects a raw client with a will on topic "will/<id>".
// delay > 0 sets a v5 will delay; expiry sets the v5 session expiry.
func willConnect(t *testing.T, s *server, version byte, id string, retain bool, delay, expiry uint32) *mqtttest.Conn {
	t.Helper()
	c := mqtttest.Dial(t, s.addr, version)
	cp := &packet.Connect{
		ClientID: []byte(id), CleanStart: true, KeepAlive: 30,
		WillFlag: true, WillQoS: 1, WillRetain: retain,
		WillTopic: []byte("will/" + id), WillPayload: []byte("gone:" + id),
	}
	if delay > 0 {
		cp.WillProps.WillDelayInterval = delay
		cp.WillProps.Set(packet.PropWillDelayInterval)
	}
	if expiry > 0 {
		cp.Props.SessionExpiry = expiry
		cp.Props.Set(packet.PropSessionExpiry)
	}
	if ack := c.Connect(cp); ack.ReasonCode != packet.Success {
		t.Fatalf("CONNACK reason 0x%02x", byte(ack.ReasonCode))
	}
	return c
}

// willWatcher subscribes a 3.1.1 client to will/#.
func willWatcher(t *testing.T, s *server) *v3Client {
	t.Helper()
	w := newV3(t, s, uniq("watch"), nil)
	w.sub(t, "will/#", 1)
	return w
}

func TestWill(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tg *target) {
		for _, v := range versions {
			tg.run(t, "MQTT-3.1.2-8 ("+v.name+") will is published when the connection drops", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				w := willWatcher(t, s)
				id := uniq("dying")
				c := willConnect(t, s, v.version, id, false, 0, 0)
				c.Close()
				if m := w.in.next(t); m.Topic != "will/"+id || m.Payload != "gone:"+id || m.QoS != 1 {
					t.Fatalf("got %+v, want the will at QoS 1", m)
				}
				w.in.none(t, quiet)
			})

			tg.run(t, "MQTT-3.1.2-10 MQTT-3.14.4-3 ("+v.name+") DISCONNECT discards the will", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				w := willWatcher(t, s)
				c := willConnect(t, s, v.version, uniq("polite"), false, 0, 0)
				c.Send(&packet.Disconnect{})
				c.Close()
				w.in.none(t, 2*quiet)
			})

			retained, notRetained := "MQTT-3.1.2-17", "MQTT-3.1.2-16"
			if v.version == packet.Version5 {
				retained, notRetained = "MQTT-3.1.2-15", "MQTT-3.1.2-14"
			}
			tg.run(t, retained+" "+notRetained+" ("+v.name+") will retain flag decides whether the will is retained", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				w := willWatcher(t, s)
				keep, drop := uniq("keep"), uniq("drop")
				willConnect(t, s, v.version, keep, true, 0, 0).Close()
				willConnect(t, s, v.version, drop, false, 0, 0).Close()
				w.in.collect(2, wait)
				late := newV3(t, s, uniq("late"), nil)
				late.sub(t, "will/#", 1)
				m := late.in.next(t)
				if m.Topic != "will/"+keep || !m.Retain {
					t.Fatalf("late subscriber got %+v, want the retained will of %s", m, keep)
				}
				late.in.none(t, quiet)
			})
		}

		tg.run(t, "MQTT-3.1.2-8 (3.1.1) mosquitto_sub sees the will of a dropped paho client", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			out := mosquittoSub(t, s, "-V", "mqttv311", "-v", "-t", "will/#", "-t", "probe/w")
			awaitSubscribed(t, s, out, "probe/w")
			c := willConnect(t, s, packet.Version311, "pw", false, 0, 0)
			c.Close()
			if l := skipProbes(t, out, "probe/w"); l != "will/pw gone:pw" {
				t.Fatalf("mosquitto_sub printed %q, want %q", l, "will/pw gone:pw")
			}
		})

		tg.run(t, "§3.14.2.1 (5.0) DISCONNECT 0x04 publishes the will", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			w := willWatcher(t, s)
			id := uniq("w4")
			c := willConnect(t, s, packet.Version5, id, false, 0, 0)
			c.Send(&packet.Disconnect{ReasonCode: packet.DisconnectWithWill})
			if m := w.in.next(t); m.Topic != "will/"+id {
				t.Fatalf("got %+v, want the will", m)
			}
		})

		tg.run(t, "MQTT-3.1.2-8 (5.0) will delay interval postpones the will", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			w := willWatcher(t, s)
			c := willConnect(t, s, packet.Version5, uniq("delayed"), false, 2, 30)
			closed := time.Now()
			c.Close()
			w.in.none(t, time.Second)
			m := w.in.next(t)
			if took := time.Since(closed); took < 1900*time.Millisecond {
				t.Fatalf("will %q published %v after the close, before its 2 s delay", m.Payload, took)
			}
		})

		tg.run(t, "MQTT-3.1.3-9 (5.0) reconnecting within the will delay cancels the will", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			w := willWatcher(t, s)
			id := uniq("back")
			willConnect(t, s, packet.Version5, id, false, 1, 30).Close()
			sleep(200 * time.Millisecond)
			rawSession(t, s, packet.Version5, id, false)
			w.in.none(t, 2*time.Second)
		})

		tg.run(t, "MQTT-3.1.2-8 (5.0) the will is published when the session ends before the will delay", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			w := willWatcher(t, s)
			c := willConnect(t, s, packet.Version5, uniq("short"), false, 60, 1)
			c.Close()
			select {
			case m := <-w.in.ch:
				t.Logf("will %q arrived", m.Payload)
			case <-time.After(3500 * time.Millisecond):
				t.Fatal("will not published although the 1 s session ended (will delay 60 s)")
			}
		})

		tg.run(t, "MQTT-3.1.3-10 (5.0) will properties reach subscribers with user properties in order", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			w := newV5(t, s, &paho.Connect{ClientID: uniq("watch"), CleanStart: true})
			w.sub(t, nil, paho.SubscribeOptions{Topic: "will/#", QoS: 1})
			c := mqtttest.Dial(t, s.addr, packet.Version5)
			cp := &packet.Connect{ClientID: []byte("wp"), CleanStart: true, KeepAlive: 30, WillFlag: true, WillQoS: 1,
				WillTopic: []byte("will/wp"), WillPayload: []byte("{}")}
			cp.WillProps.ContentType = []byte("application/json")
			cp.WillProps.ResponseTopic = []byte("reply/wp")
			cp.WillProps.CorrelationData = []byte{1, 2, 3}
			cp.WillProps.PayloadFormat = 1
			cp.WillProps.Set(packet.PropPayloadFormat)
			cp.WillProps.User = []packet.UserProperty{{Name: []byte("z"), Value: []byte("1")}, {Name: []byte("a"), Value: []byte("2")}, {Name: []byte("z"), Value: []byte("3")}}
			c.Connect(cp)
			c.Close()
			m := w.in.next(t)
			if m.Props == nil {
				t.Fatal("will arrived without properties")
			}
			p := m.Props
			if p.ContentType != "application/json" || p.ResponseTopic != "reply/wp" || string(p.CorrelationData) != "\x01\x02\x03" || p.PayloadFormat == nil || *p.PayloadFormat != 1 {
				t.Errorf("will properties %+v, want content type, response topic, correlation data and payload format forwarded", p)
			}
			want := paho.UserProperties{{Key: "z", Value: "1"}, {Key: "a", Value: "2"}, {Key: "z", Value: "3"}}
			if !slices.Equal(p.User, want) {
				t.Errorf("will user properties %v, want %v in order", p.User, want)
			}
		})

		tg.run(t, "MQTT-3.1.4-3 (5.0) session takeover publishes the old connection's will", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			w := willWatcher(t, s)
			id := uniq("taken")
			old := willConnect(t, s, packet.Version5, id, false, 0, 0)
			dialRaw(t, s, packet.Version5, id)
			expectRefused(t, old, packet.SessionTakenOver)
			if m := w.in.next(t); m.Topic != "will/"+id {
				t.Fatalf("got %+v, want the taken-over connection's will", m)
			}
		})
	})
}
