package conformance

import (
	"slices"
	"sort"
	"testing"

	"github.com/sluicehq/sluice/broker/packet"
	"github.com/sluicehq/sluice/internal/mqtttest"
)

// subscribeBytes builds a SUBSCRIBE for one filter with a raw options byte.
func subscribeBytes(version byte, id uint16, filter string, options byte) []byte {
	if version == packet.Version5 {
		return frame(0x82, u16b(id), []byte{0}, str(filter), []byte{options})
	}
	return frame(0x82, u16b(id), str(filter), []byte{options})
}

// expectSubRefused asserts the server refuses a subscription: a SUBACK
// with a failure code (>= 0x80) or a closed connection, never a grant.
func expectSubRefused(t *testing.T, c *mqtttest.Conn, id uint16) {
	t.Helper()
	p, err := c.Read(wait)
	if err != nil {
		if isTimeoutErr(err) {
			t.Fatalf("no SUBACK and no close within %v", wait)
		}
		return // closed
	}
	switch p := p.(type) {
	case *packet.Suback:
		if p.PacketID != id || len(p.Codes) != 1 || p.Codes[0] < 0x80 {
			t.Fatalf("got %s, want a failure code (>= 0x80) for packet id %d", mqtttest.Describe(p), id)
		}
	case *packet.Disconnect:
		if p.ReasonCode < 0x80 {
			t.Fatalf("got %s, want a failure SUBACK or close", mqtttest.Describe(p))
		}
		c.ExpectClosed(wait)
	default:
		t.Fatalf("got %s, want a failure SUBACK or close", mqtttest.Describe(p))
	}
}

func TestSubscribe(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tg *target) {
		for _, v := range versions {
			tg.run(t, "MQTT-3.8.4-1 MQTT-3.8.4-2 ("+v.name+") SUBSCRIBE gets SUBACK with its packet id", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				c := dialRaw(t, s, v.version, uniq("c"))
				for _, id := range []uint16{1, 0x1234, 0xFFFF} {
					rawSub(t, c, id, "a/b", 1)
				}
			})

			multi := "MQTT-3.8.4-4 MQTT-3.8.4-5 MQTT-3.9.3-1 (3.1.1)"
			if v.version == packet.Version5 {
				multi = "MQTT-3.8.4-5 MQTT-3.8.4-6 MQTT-3.9.3-1 (5.0)"
			}
			tg.run(t, multi+" several filters get one SUBACK with a code per filter in order", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				c := dialRaw(t, s, v.version, uniq("c"))
				c.Send(&packet.Subscribe{PacketID: 9, Subs: []packet.Subscription{
					{Filter: []byte("m/2"), QoS: 2}, {Filter: []byte("m/0"), QoS: 0}, {Filter: []byte("m/1"), QoS: 1},
				}})
				ack := mqtttest.ExpectType[*packet.Suback](c, wait)
				if ack.PacketID != 9 || !slices.Equal(ack.Codes, []packet.ReasonCode{2, 0, 1}) {
					t.Fatalf("got %s, want id 9 codes 02 00 01", mqtttest.Describe(ack))
				}
			})

			tg.run(t, "MQTT-3.8.4-3 ("+v.name+") subscribing to the same filter replaces the subscription", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				c := dialRaw(t, s, v.version, uniq("c"))
				rawSub(t, c, 1, "rep/x", 2)
				rawSub(t, c, 2, "rep/x", 0)
				pub := newV3(t, s, uniq("pub"), nil)
				pub.pub(t, "rep/x", 2, false, "x")
				got := readPublishes(t, c, quiet)
				if len(got) != 1 || got[0].QoS != 0 {
					t.Fatalf("got %d publishes (%v), want exactly one at QoS 0", len(got), describePubs(got))
				}
			})

			tg.run(t, "MQTT-3.10.4-1 MQTT-3.10.4-2 MQTT-3.10.4-4 MQTT-3.10.4-5 ("+v.name+") UNSUBSCRIBE stops delivery and gets UNSUBACK with its id", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				c := dialRaw(t, s, v.version, uniq("c"))
				rawSub(t, c, 1, "un/+", 0)
				rawSub(t, c, 2, "un/x", 0)
				c.Send(&packet.Unsubscribe{PacketID: 3, Filters: [][]byte{[]byte("un/x")}})
				ua := mqtttest.ExpectType[*packet.Unsuback](c, wait)
				if ua.PacketID != 3 {
					t.Fatalf("UNSUBACK id %d, want 3", ua.PacketID)
				}
				pub := newV3(t, s, uniq("pub"), nil)
				pub.pub(t, "un/x", 0, false, "x")
				// "un/+" still matches: exactly one copy, not two.
				if got := readPublishes(t, c, quiet); len(got) != 1 {
					t.Fatalf("got %d publishes after unsubscribing one of two matching filters, want 1", len(got))
				}
				c.Send(&packet.Unsubscribe{PacketID: 4, Filters: [][]byte{[]byte("un/+")}})
				mqtttest.ExpectType[*packet.Unsuback](c, wait)
				pub.pub(t, "un/x", 0, false, "y")
				c.ExpectNothing(quiet)
			})

			tg.run(t, "MQTT-3.10.4-1 ("+v.name+") UNSUBSCRIBE compares filters character by character", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				c := dialRaw(t, s, v.version, uniq("c"))
				rawSub(t, c, 1, "cc/x", 0)
				c.Send(&packet.Unsubscribe{PacketID: 2, Filters: [][]byte{[]byte("cc/+")}})
				mqtttest.ExpectType[*packet.Unsuback](c, wait)
				pub := newV3(t, s, uniq("pub"), nil)
				pub.pub(t, "cc/x", 0, false, "x")
				expectPublish(t, c, "cc/x", "x")
			})

			tg.run(t, wildcardIDs(v.version)+" ("+v.name+") wildcard filters match the spec's examples", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				topics := []string{"sport", "sport/", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking",
					"sport/tennis/player1/score/wimbledon", "/finance", "finance", "a//b"}
				cases := []struct {
					filter string
					want   []string
				}{
					{"sport/tennis/player1/#", []string{"sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis/player1/score/wimbledon"}},
					{"sport/#", []string{"sport", "sport/", "sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis/player1/score/wimbledon"}},
					{"#", topics},
					{"sport/+", []string{"sport/", "sport/tennis"}},
					{"+", []string{"sport", "finance"}},
					{"+/+", []string{"sport/", "sport/tennis", "/finance"}},
					{"/+", []string{"/finance"}},
					{"+/tennis/#", []string{"sport/tennis", "sport/tennis/player1", "sport/tennis/player1/ranking", "sport/tennis/player1/score/wimbledon"}},
					{"a/+/b", []string{"a//b"}},
				}
				subs := make([]*mqtttest.Conn, len(cases))
				for i, tc := range cases {
					subs[i] = dialRaw(t, s, v.version, uniq("w"))
					rawSub(t, subs[i], 1, tc.filter, 0)
				}
				pub := newV3(t, s, uniq("pub"), nil)
				for _, topic := range topics {
					pub.pub(t, topic, 0, false, topic)
				}
				for i, tc := range cases {
					var got []string
					for _, p := range readPublishes(t, subs[i], quiet) {
						got = append(got, string(p.Topic))
					}
					sort.Strings(got)
					want := slices.Clone(tc.want)
					sort.Strings(want)
					if !slices.Equal(got, want) {
						t.Errorf("filter %q matched %q, want %q", tc.filter, got, want)
					}
				}
			})

			tg.run(t, "MQTT-4.7.2-1 ("+v.name+") wildcards at the first level do not match $ topics", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				wild := dialRaw(t, s, v.version, uniq("w"))
				rawSub(t, wild, 1, "#", 0)
				rawSub(t, wild, 2, "+/x", 0)
				dollar := dialRaw(t, s, v.version, uniq("d"))
				rawSub(t, dollar, 1, "$app/+", 0)
				pub := newV3(t, s, uniq("pub"), nil)
				pub.pub(t, "$app/x", 0, false, "d")
				expectPublish(t, dollar, "$app/x", "d")
				wild.ExpectNothing(quiet)
			})

			badFilters := []struct{ id, filter string }{
				{multiLevelID(v.version), "a/#/b"},
				{multiLevelID(v.version), "a#"},
				{singleLevelID(v.version), "a+/b"},
				{singleLevelID(v.version), "a/b+"},
				{"MQTT-4.7.3-1", ""},
			}
			for _, bf := range badFilters {
				tg.run(t, bf.id+" ("+v.name+") invalid filter "+quoteName(bf.filter)+" is refused", func(t *testing.T, tg *target) {
					s := tg.start(t, opts{})
					c := dialRaw(t, s, v.version, uniq("c"))
					c.SendRaw(subscribeBytes(v.version, 5, bf.filter, 1))
					expectSubRefused(t, c, 5)
				})
			}

			tg.run(t, noNormID(v.version)+" ("+v.name+") topics are matched without normalisation", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				c := dialRaw(t, s, v.version, uniq("c"))
				rawSub(t, c, 1, "n/b", 0)
				rawSub(t, c, 2, "\uFEFFbom", 0)
				pub := newV3(t, s, uniq("pub"), nil)
				for _, topic := range []string{"N/b", "n//b", "n/b/", "/n/b", "bom", "n/b", "\uFEFFbom"} {
					pub.pub(t, topic, 0, false, topic)
				}
				expectPublish(t, c, "n/b", "n/b")
				expectPublish(t, c, "\uFEFFbom", "\uFEFFbom")
				c.ExpectNothing(quiet)
			})

			noFilter := "MQTT-3.8.3-3"
			if v.version == packet.Version5 {
				noFilter = "MQTT-3.8.3-2"
			}
			tg.run(t, noFilter+" ("+v.name+") SUBSCRIBE without a filter closes the connection", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				c := dialRaw(t, s, v.version, uniq("c"))
				if v.version == packet.Version5 {
					c.SendRaw(frame(0x82, u16b(1), []byte{0}))
				} else {
					c.SendRaw(frame(0x82, u16b(1)))
				}
				expectRefused(t, c, packet.ProtocolError, packet.MalformedPacket)
			})

			tg.run(t, "MQTT-3.10.3-2 ("+v.name+") UNSUBSCRIBE without a filter closes the connection", func(t *testing.T, tg *target) {
				s := tg.start(t, opts{})
				c := dialRaw(t, s, v.version, uniq("c"))
				if v.version == packet.Version5 {
					c.SendRaw(frame(0xA2, u16b(1), []byte{0}))
				} else {
					c.SendRaw(frame(0xA2, u16b(1)))
				}
				expectRefused(t, c, packet.ProtocolError, packet.MalformedPacket)
			})
		}

		tg.run(t, "MQTT-3.8.3-4 (3.1.1) requested QoS 3 closes the connection", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := dialRaw(t, s, packet.Version311, uniq("c"))
			c.SendRaw(subscribeBytes(packet.Version311, 1, "a", 3))
			expectRefused(t, c)
		})

		tg.run(t, "MQTT-3.8.3-4 (3.1.1) reserved subscription option bits close the connection", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := dialRaw(t, s, packet.Version311, uniq("c"))
			c.SendRaw(subscribeBytes(packet.Version311, 1, "a", 0x04|1))
			expectRefused(t, c)
		})

		tg.run(t, "MQTT-3.8.3-5 (5.0) reserved subscription option bits close the connection", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := dialRaw(t, s, packet.Version5, uniq("c"))
			c.SendRaw(subscribeBytes(packet.Version5, 1, "a", 0xC0|1))
			expectRefused(t, c, packet.MalformedPacket, packet.ProtocolError)
		})

		tg.run(t, "§3.8.3.1 (5.0) retain handling 3 closes the connection", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := dialRaw(t, s, packet.Version5, uniq("c"))
			c.SendRaw(subscribeBytes(packet.Version5, 1, "a", 0x30|1))
			expectRefused(t, c, packet.MalformedPacket, packet.ProtocolError)
		})

		tg.run(t, "MQTT-3.11.3-1 MQTT-3.11.3-2 (5.0) UNSUBACK has a reason per filter in order", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := dialRaw(t, s, packet.Version5, uniq("c"))
			rawSub(t, c, 1, "u/a", 0)
			c.Send(&packet.Unsubscribe{PacketID: 2, Filters: [][]byte{[]byte("u/none"), []byte("u/a")}})
			ua := mqtttest.ExpectType[*packet.Unsuback](c, wait)
			if !slices.Equal(ua.Codes, []packet.ReasonCode{packet.NoSubscriptionExisted, packet.Success}) {
				t.Fatalf("UNSUBACK codes % x, want 11 00", ua.Codes)
			}
		})

		tg.run(t, "MQTT-3.8.3-3 (5.0) no local suppresses the subscriber's own messages", func(t *testing.T, tg *target) {
			s := tg.start(t, opts{})
			c := dialRaw(t, s, packet.Version5, uniq("c"))
			rawSubOpts(t, c, 1, packet.Subscription{Filter: []byte("nl/x"), NoLocal: true}, nil)
			rawSub(t, c, 2, "nl/y", 0)
			rawPub(c, "nl/x", 0, 0, "own")
			rawPub(c, "nl/y", 0, 0, "own-y")
			expectPublish(t, c, "nl/y", "own-y")
			pub := newV3(t, s, uniq("pub"), nil)
			pub.pub(t, "nl/x", 0, false, "other")
			expectPublish(t, c, "nl/x", "other")
			c.ExpectNothing(quiet)
		})
	})
}

func wildcardIDs(version byte) string {
	if version == packet.Version5 {
		return "MQTT-4.7.1-1 MQTT-4.7.1-2"
	}
	return "MQTT-4.7.1-2 MQTT-4.7.1-3"
}

func multiLevelID(version byte) string {
	if version == packet.Version5 {
		return "MQTT-4.7.1-1"
	}
	return "MQTT-4.7.1-2"
}

func singleLevelID(version byte) string {
	if version == packet.Version5 {
		return "MQTT-4.7.1-2"
	}
	return "MQTT-4.7.1-3"
}

func noNormID(version byte) string {
	if version == packet.Version5 {
		return "MQTT-4.7.3-4 MQTT-1.5.4-3"
	}
	return "MQTT-4.7.3-4 MQTT-1.5.3-3"
}

func quoteName(s string) string {
	if s == "" {
		return "(empty)"
	}
	return s
}

func describePubs(ps []*packet.Publish) string {
	out := make([]packet.Packet, len(ps))
	for i, p := range ps {
		out[i] = p
	}
	return mqtttest.DescribeAll(out)
}
