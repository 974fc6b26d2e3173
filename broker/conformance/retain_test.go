package conformance

import (
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/sluicehq/sluice/broker/packet"
)

func TestRetain(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tg *target) {
		// 3.1.1, with paho.mqtt.golang and mosquitto_sub.
		tg.run(t, "MQTT-3.3.1-5 MQTT-3.3.1-6 MQTT-3.3.1-8 (3.1.1) retained message reaches new subscribers with RETAIN 1", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			pub := newV3(t, s, uniq("pub"), nil)
			pub.pub(t, "r/a", 1, true, "kept")
			sub := newV3(t, s, uniq("sub"), nil)
			sub.sub(t, "r/+", 1)
			if m := sub.in.next(t); m.Payload != "kept" || !m.Retain || m.QoS != 1 {
				t.Fatalf("got %+v, want retained %q at QoS 1 with RETAIN 1", m, "kept")
			}
		})

		tg.run(t, "MQTT-3.3.1-6 (3.1.1) mosquitto_sub receives retained messages matching its wildcard", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			pub := newV3(t, s, uniq("pub"), nil)
			for _, topic := range []string{"w/1", "w/2", "w/3/deep", "x/1"} {
				pub.pub(t, topic, 1, true, "v-"+topic)
			}
			out := mosquittoSub(t, s, "-V", "mqttv311", "-v", "-t", "w/+", "-C", "2", "-W", "3")
			got := []string{awaitLine(t, out), awaitLine(t, out)}
			if strings.Join(got, ",") != "w/1 v-w/1,w/2 v-w/2" && strings.Join(got, ",") != "w/2 v-w/2,w/1 v-w/1" {
				t.Fatalf("mosquitto_sub printed %q, want w/1 and w/2", got)
			}
		})

		tg.run(t, "MQTT-3.3.1-9 (3.1.1) live delivery of a retained publish has RETAIN 0", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			sub := newV3(t, s, uniq("sub"), nil)
			sub.sub(t, "r/live", 1)
			pub := newV3(t, s, uniq("pub"), nil)
			pub.pub(t, "r/live", 1, true, "x")
			if m := sub.in.next(t); m.Retain {
				t.Fatalf("established subscription got RETAIN 1: %+v", m)
			}
		})

		tg.run(t, "MQTT-3.3.1-7 (3.1.1) a new retained message replaces the old one", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			pub := newV3(t, s, uniq("pub"), nil)
			pub.pub(t, "r/rep", 1, true, "old")
			pub.pub(t, "r/rep", 0, true, "new")
			sub := newV3(t, s, uniq("sub"), nil)
			sub.sub(t, "r/rep", 1)
			if m := sub.in.next(t); m.Payload != "new" {
				t.Fatalf("got %q, want %q", m.Payload, "new")
			}
			sub.in.none(t, quiet)
		})

		tg.run(t, "MQTT-3.3.1-10 MQTT-3.3.1-11 (3.1.1) empty retained payload is delivered and clears the retained message", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			pub := newV3(t, s, uniq("pub"), nil)
			pub.pub(t, "r/clr", 1, true, "x")
			live := newV3(t, s, uniq("live"), nil)
			live.sub(t, "r/clr", 1)
			live.in.next(t) // the retained "x"
			pub.pub(t, "r/clr", 1, true, "")
			if m := live.in.next(t); m.Payload != "" {
				t.Fatalf("live subscriber got %q, want the empty message", m.Payload)
			}
			late := newV3(t, s, uniq("late"), nil)
			late.sub(t, "r/clr", 1)
			late.in.none(t, quiet)
		})

		tg.run(t, "MQTT-3.3.1-12 (3.1.1) a non-retained publish leaves the retained message alone", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			pub := newV3(t, s, uniq("pub"), nil)
			pub.pub(t, "r/keep", 1, true, "kept")
			pub.pub(t, "r/keep", 1, false, "passing")
			sub := newV3(t, s, uniq("sub"), nil)
			sub.sub(t, "r/keep", 1)
			if m := sub.in.next(t); m.Payload != "kept" {
				t.Fatalf("got %q, want %q", m.Payload, "kept")
			}
		})

		// 5.0, with paho.golang and mosquitto_pub.
		tg.run(t, "MQTT-3.3.1-5 MQTT-3.3.1-6 MQTT-3.3.1-7 MQTT-3.3.1-8 (5.0) retained messages are replaced, kept and cleared", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			mosquittoPub(t, s, "-V", "mqttv5", "-t", "r5/a", "-m", "first", "-r", "-q", "1")
			mosquittoPub(t, s, "-V", "mqttv5", "-t", "r5/a", "-m", "second", "-r", "-q", "1")
			mosquittoPub(t, s, "-V", "mqttv5", "-t", "r5/a", "-m", "plain", "-q", "1")
			mosquittoPub(t, s, "-V", "mqttv5", "-t", "r5/b", "-m", "gone", "-r", "-q", "1")
			mosquittoPub(t, s, "-V", "mqttv5", "-t", "r5/b", "-n", "-r", "-q", "1")
			sub := newV5(t, s, &paho.Connect{ClientID: uniq("sub"), CleanStart: true})
			sub.sub(t, nil, paho.SubscribeOptions{Topic: "r5/+", QoS: 1})
			if m := sub.in.next(t); m.Topic != "r5/a" || m.Payload != "second" || !m.Retain {
				t.Fatalf("got %+v, want retained r5/a %q", m, "second")
			}
			sub.in.none(t, quiet)
		})

		tg.run(t, "MQTT-3.3.1-9 MQTT-3.8.4-4 (5.0) retain handling 0 sends retained messages on every subscribe", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			retainOne(t, s, "rh/0")
			sub := newV5(t, s, &paho.Connect{ClientID: uniq("sub"), CleanStart: true})
			for i := 0; i < 2; i++ {
				sub.sub(t, nil, paho.SubscribeOptions{Topic: "rh/0", QoS: 1, RetainHandling: 0})
				if m := sub.in.next(t); !m.Retain || m.Payload != "kept" {
					t.Fatalf("subscribe %d: got %+v, want the retained message", i+1, m)
				}
			}
		})

		tg.run(t, "MQTT-3.3.1-10 (5.0) retain handling 1 sends retained messages only for a new subscription", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			retainOne(t, s, "rh/1")
			sub := newV5(t, s, &paho.Connect{ClientID: uniq("sub"), CleanStart: true})
			sub.sub(t, nil, paho.SubscribeOptions{Topic: "rh/1", QoS: 1, RetainHandling: 1})
			if m := sub.in.next(t); !m.Retain {
				t.Fatalf("got %+v, want the retained message", m)
			}
			sub.sub(t, nil, paho.SubscribeOptions{Topic: "rh/1", QoS: 1, RetainHandling: 1})
			sub.in.none(t, quiet)
		})

		tg.run(t, "MQTT-3.3.1-11 (5.0) retain handling 2 sends no retained messages", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			retainOne(t, s, "rh/2")
			sub := newV5(t, s, &paho.Connect{ClientID: uniq("sub"), CleanStart: true})
			sub.sub(t, nil, paho.SubscribeOptions{Topic: "rh/2", QoS: 1, RetainHandling: 2})
			sub.in.none(t, quiet)
		})

		tg.run(t, "MQTT-3.3.1-12 MQTT-3.3.1-13 (5.0) retain as published controls RETAIN on live delivery", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			plain := newV5(t, s, &paho.Connect{ClientID: uniq("plain"), CleanStart: true})
			plain.sub(t, nil, paho.SubscribeOptions{Topic: "rap/x", QoS: 1})
			rap := newV5(t, s, &paho.Connect{ClientID: uniq("rap"), CleanStart: true})
			rap.sub(t, nil, paho.SubscribeOptions{Topic: "rap/x", QoS: 1, RetainAsPublished: true})
			pub := newV5(t, s, &paho.Connect{ClientID: uniq("pub"), CleanStart: true})
			pub.pub(t, &paho.Publish{Topic: "rap/x", QoS: 1, Retain: true, Payload: []byte("r")})
			pub.pub(t, &paho.Publish{Topic: "rap/x", QoS: 1, Payload: []byte("n")})
			for _, m := range []msg{plain.in.next(t), plain.in.next(t)} {
				if m.Retain {
					t.Errorf("retain-as-published 0: %q delivered with RETAIN 1", m.Payload)
				}
			}
			if m := rap.in.next(t); m.Payload != "r" || !m.Retain {
				t.Errorf("retain-as-published 1: got %+v, want %q with RETAIN 1", m, "r")
			}
			if m := rap.in.next(t); m.Payload != "n" || m.Retain {
				t.Errorf("retain-as-published 1: got %+v, want %q with RETAIN 0", m, "n")
			}
		})

		tg.run(t, "MQTT-3.8.4-8 (5.0) a retained message is delivered at the lower of its QoS and the granted QoS", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			pub := newV5(t, s, &paho.Connect{ClientID: uniq("pub"), CleanStart: true})
			pub.pub(t, &paho.Publish{Topic: "rq/2", QoS: 2, Retain: true, Payload: []byte("two")})
			pub.pub(t, &paho.Publish{Topic: "rq/0", QoS: 0, Retain: true, Payload: []byte("zero")})
			sub := newV5(t, s, &paho.Connect{ClientID: uniq("sub"), CleanStart: true})
			sub.sub(t, nil, paho.SubscribeOptions{Topic: "rq/2", QoS: 1})
			if m := sub.in.next(t); m.QoS != 1 {
				t.Errorf("QoS 2 retained to a QoS 1 subscription arrived at QoS %d", m.QoS)
			}
			sub.sub(t, nil, paho.SubscribeOptions{Topic: "rq/0", QoS: 2})
			if m := sub.in.next(t); m.QoS != 0 {
				t.Errorf("QoS 0 retained to a QoS 2 subscription arrived at QoS %d", m.QoS)
			}
		})

		tg.run(t, "MQTT-3.3.2-5 (5.0) an expired retained message is not delivered", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			pub := newV5(t, s, &paho.Connect{ClientID: uniq("pub"), CleanStart: true})
			pub.pub(t, &paho.Publish{Topic: "rx/short", QoS: 1, Retain: true, Payload: []byte("short"),
				Properties: &paho.PublishProperties{MessageExpiry: u32(1)}})
			pub.pub(t, &paho.Publish{Topic: "rx/long", QoS: 1, Retain: true, Payload: []byte("long"),
				Properties: &paho.PublishProperties{MessageExpiry: u32(60)}})
			sleep(2100 * time.Millisecond)
			sub := newV5(t, s, &paho.Connect{ClientID: uniq("sub"), CleanStart: true})
			sub.sub(t, nil, paho.SubscribeOptions{Topic: "rx/+", QoS: 1})
			m := sub.in.next(t)
			if m.Payload != "long" {
				t.Fatalf("got %q, want only %q", m.Payload, "long")
			}
			if m.Props == nil || m.Props.MessageExpiry == nil || *m.Props.MessageExpiry > 58 || *m.Props.MessageExpiry == 0 {
				t.Errorf("retained message expiry %v after 2 s, want 1..58", expiryOf(m))
			}
			sub.in.none(t, quiet)
		})

		tg.run(t, "§3.3.1.3 (5.0) a new shared subscription gets no retained messages", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			retainOne(t, s, "rs/x")
			sub := newV5(t, s, &paho.Connect{ClientID: uniq("sub"), CleanStart: true})
			sub.sub(t, nil, paho.SubscribeOptions{Topic: "$share/g/rs/x", QoS: 1})
			sub.in.none(t, quiet)
		})
	})
}

// retainOne stores a retained message "kept" on topic.
func retainOne(t *testing.T, s *server, topic string) {
	t.Helper()
	c := dialRaw(t, s, packet.Version5, uniq("ret"))
	c.Send(&packet.Publish{Topic: []byte(topic), QoS: 1, PacketID: 1, Retain: true, Payload: []byte("kept")})
	expectAck(t, c, packet.PUBACK, 1)
	c.Send(&packet.Disconnect{})
}

func expiryOf(m msg) any {
	if m.Props == nil || m.Props.MessageExpiry == nil {
		return "absent"
	}
	return *m.Props.MessageExpiry
}
