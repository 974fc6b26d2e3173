package broker

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/auth"
	"github.com/sluicehq/sluice/broker/packet"
)

// TestACLReloadRevokesSubscriptions takes bob's read access away with an
// ACL reload: his live and parked subscriptions stop receiving once
// RevokeDenied runs.
func TestACLReloadRevokesSubscriptions(t *testing.T) {
	open := []auth.ACLRule{
		{Permission: "allow", Action: "publish", Topic: "#"},
		{Permission: "allow", Action: "subscribe", Topic: "sensors/#", Users: []string{"bob"}},
	}
	a := newTestAuth(t, open)
	s, addr := startServer(t, nil, Options{Auth: a})
	live := loginAs(t, addr, "live", "bob", "hunter2", true, 0)
	subscribe(t, live, packet.Subscription{Filter: []byte("sensors/#"), QoS: 1})
	parked := loginAs(t, addr, "parked", "bob", "hunter2", true, 3600)
	subscribe(t, parked, packet.Subscription{Filter: []byte("$share/g/sensors/#"), QoS: 1})
	parked.nc.Close()
	waitFor(t, func() bool { return !s.isOnline("parked") })

	pub := loginAs(t, addr, "pub", "alice", "secret", true, 0)
	pub.publish("sensors/a", 1, 1, "x")
	pub.expectAck(packet.PUBACK, 1, 0)
	if p := readPublish(t, live); string(p.Topic) != "sensors/a" {
		t.Fatalf("before the reload: got %q", p.Topic)
	}
	live.send(&packet.Ack{Kind: packet.PUBACK, PacketID: 1})

	if err := a.Reload(testAuthConfig(t, open[:1])); err != nil { // subscribe rule gone
		t.Fatal(err)
	}
	if n := s.RevokeDenied(); n != 2 {
		t.Fatalf("RevokeDenied removed %d subscriptions, want 2 (live and parked)", n)
	}
	pub.publish("sensors/a", 1, 2, "y")
	pub.expectAck(packet.PUBACK, 2, 0)
	live.expectNothing(300 * time.Millisecond)
	resumed := loginAs(t, addr, "parked", "bob", "hunter2", false, 3600)
	// x was queued for the parked session before the reload; y was not.
	if p := readPublish(t, resumed); string(p.Payload) != "x" {
		t.Fatalf("resumed session got %q, want only x", p.Payload)
	}
	resumed.expectNothing(300 * time.Millisecond)
	if got := s.Stats().Denied["revoked_subscription"]; got != 2 {
		t.Fatalf("revoked_subscription = %d, want 2", got)
	}
}

// TestResumeRechecksSubscriptions resumes bob's persistent session as
// alice (same client id): the subscription alice may not make goes.
func TestResumeRechecksSubscriptions(t *testing.T) {
	a := newTestAuth(t, []auth.ACLRule{
		{Permission: "allow", Action: "publish", Topic: "#"},
		{Permission: "allow", Action: "subscribe", Topic: "sensors/#", Users: []string{"bob"}},
	})
	s, addr := startServer(t, nil, Options{Auth: a})
	bob := loginAs(t, addr, "shared-id", "bob", "hunter2", true, 3600)
	subscribe(t, bob, packet.Subscription{Filter: []byte("sensors/#"), QoS: 1})
	bob.nc.Close()
	waitFor(t, func() bool { return !s.isOnline("shared-id") })

	alice := loginAs(t, addr, "shared-id", "alice", "secret", false, 3600)
	if subs := s.subs.ClientSubs("shared-id"); len(subs) != 0 {
		t.Fatalf("alice resumed bob's subscriptions %v", subs)
	}
	pub := loginAs(t, addr, "pub", "alice", "secret", true, 0)
	pub.publish("sensors/a", 1, 1, "x")
	pub.expectAck(packet.PUBACK, 1, 0)
	alice.expectNothing(300 * time.Millisecond)
}

// loginAs connects a v5 client with a user name and password.
func loginAs(t *testing.T, addr, id, user, pass string, clean bool, expiry uint32) *rawClient {
	t.Helper()
	c := dialRaw(t, addr, packet.Version5)
	c.connect(&packet.Connect{ClientID: []byte(id), CleanStart: clean, KeepAlive: 30, Props: withExpiry(expiry),
		UsernameFlag: true, Username: []byte(user), PasswordFlag: true, Password: []byte(pass)})
	return c
}
