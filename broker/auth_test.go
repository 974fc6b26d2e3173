package broker

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/sluicehq/sluice/broker/auth"
	"github.com/sluicehq/sluice/broker/packet"
)

// topicConsumer accepts every message and records its topic and username.
type topicConsumer struct {
	mu     sync.Mutex
	topics []string
	users  []string
}

func (c *topicConsumer) Deliver(_ context.Context, m *Message, ack func(error)) {
	c.mu.Lock()
	c.topics = append(c.topics, m.Topic)
	c.users = append(c.users, m.Username)
	c.mu.Unlock()
	ack(nil)
}

func (c *topicConsumer) seen() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.topics...)
}

// newTestAuth builds an authenticator with users alice/secret and
// bob/hunter2 and the given ACL.
func newTestAuth(t *testing.T, acl []auth.ACLRule) *auth.Auth {
	t.Helper()
	a, err := auth.New(testAuthConfig(t, acl), auth.Options{})
	if err != nil {
		t.Fatalf("auth.New: %v", err)
	}
	return a
}

// testAuthConfig is newTestAuth's configuration.
func testAuthConfig(t *testing.T, acl []auth.ACLRule) auth.Config {
	t.Helper()
	cfg := auth.DefaultConfig()
	for _, u := range [][2]string{{"alice", "secret"}, {"bob", "hunter2"}} {
		// The lowest cost: the race detector makes bcrypt ~50x slower.
		h, err := bcrypt.GenerateFromPassword([]byte(u[1]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Users = append(cfg.Users, auth.UserConfig{Username: u[0], PasswordHash: string(h)})
	}
	cfg.ACL = acl
	return cfg
}

func TestAuthConnect(t *testing.T) {
	a := newTestAuth(t, []auth.ACLRule{
		{Permission: "deny", Action: "publish", Topic: "forbidden/#"},
		{Permission: "allow", Topic: "#"},
	})
	s, addr := startServer(t, func(c *Config) { c.Listeners[0].AllowAnonymous = false }, Options{Auth: a})
	tests := []struct {
		name      string
		version   byte
		user, pwd string
		willTopic string
		want      packet.ReasonCode
	}{
		{"v5 good password", packet.Version5, "alice", "secret", "", packet.Success},
		{"v5 wrong password", packet.Version5, "alice", "nope", "", packet.BadUserNameOrPassword},
		{"v5 unknown user", packet.Version5, "mallory", "secret", "", packet.BadUserNameOrPassword},
		{"v5 anonymous refused", packet.Version5, "", "", "", packet.BadUserNameOrPassword},
		{"v5 will topic denied", packet.Version5, "bob", "hunter2", "forbidden/will", packet.NotAuthorized},
		{"v3 good password", packet.Version311, "bob", "hunter2", "", packet.Success},
		{"v3 wrong password", packet.Version311, "bob", "x", "", packet.V3BadUsernameOrPassword},
		{"v3 anonymous refused", packet.Version311, "", "", "", packet.V3BadUsernameOrPassword},
		{"v3 will topic denied", packet.Version311, "bob", "hunter2", "forbidden/will", packet.V3NotAuthorized},
	}
	refused := 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, addr, tc.version)
			cp := &packet.Connect{ClientID: []byte("c-" + tc.user), CleanStart: true, KeepAlive: 30}
			if tc.user != "" {
				cp.UsernameFlag, cp.Username = true, []byte(tc.user)
				cp.PasswordFlag, cp.Password = true, []byte(tc.pwd)
			}
			if tc.willTopic != "" {
				cp.WillFlag, cp.WillTopic, cp.WillPayload = true, []byte(tc.willTopic), []byte("x")
			}
			ca := rc.connect(cp)
			if ca.ReasonCode != tc.want {
				t.Fatalf("CONNACK 0x%02x, want 0x%02x", byte(ca.ReasonCode), byte(tc.want))
			}
			if tc.want != packet.Success {
				refused++
				rc.expectClosed(-1)
			}
		})
	}
	if got := s.Stats().Denied["connect"]; got != uint64(refused) {
		t.Errorf("denied connect = %d, want %d", got, refused)
	}

	t.Run("paho wrong password", func(t *testing.T) {
		o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("paho").
			SetUsername("alice").SetPassword("wrong").SetAutoReconnect(false).SetConnectRetry(false)
		c := mqtt.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(5*time.Second) || tok.Error() == nil {
			t.Fatalf("connect with a wrong password succeeded")
		}
		o.SetPassword("secret")
		c = mqtt.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("connect with the right password: %v", tok.Error())
		}
		c.Disconnect(100)
	})
}

func TestAuthACL(t *testing.T) {
	a := newTestAuth(t, []auth.ACLRule{
		{Permission: "allow", Action: "publish", Topic: "sensors/%u/#"},
		{Permission: "allow", Action: "subscribe", Topic: "cmd/%c/#"},
		{Permission: "allow", Action: "subscribe", Topic: "sensors/#", Users: []string{"bob"}},
	})
	cons := &topicConsumer{}
	s, addr := startServer(t, nil, Options{Auth: a, Consumer: cons})

	// bob watches everything he may see.
	watch := dialRaw(t, addr, packet.Version5)
	watch.connect(&packet.Connect{ClientID: []byte("watch"), CleanStart: true, KeepAlive: 30,
		UsernameFlag: true, Username: []byte("bob"), PasswordFlag: true, Password: []byte("hunter2")})
	watch.send(&packet.Subscribe{PacketID: 1, Subs: []packet.Subscription{{Filter: []byte("sensors/#"), QoS: 1}}})
	if sa, ok := watch.read(5 * time.Second).(*packet.Suback); !ok || sa.Codes[0] != 1 {
		t.Fatalf("bob's SUBACK: %+v", sa)
	}

	subTests := []struct {
		name    string
		version byte
		want    []packet.ReasonCode
	}{
		{"v5", packet.Version5, []packet.ReasonCode{1, packet.NotAuthorized, packet.NotAuthorized, 0}},
		{"v3", packet.Version311, []packet.ReasonCode{1, packet.UnspecifiedError, packet.UnspecifiedError, 0}},
	}
	for _, tc := range subTests {
		t.Run("subscribe "+tc.name, func(t *testing.T) {
			rc := dialRaw(t, addr, tc.version)
			rc.connect(&packet.Connect{ClientID: []byte("dev1"), CleanStart: true, KeepAlive: 30,
				UsernameFlag: true, Username: []byte("alice"), PasswordFlag: true, Password: []byte("secret")})
			rc.send(&packet.Subscribe{PacketID: 7, Subs: []packet.Subscription{
				{Filter: []byte("cmd/dev1/#"), QoS: 1},   // %c
				{Filter: []byte("cmd/dev2/#"), QoS: 1},   // another client's
				{Filter: []byte("sensors/#"), QoS: 0},    // bob only
				{Filter: []byte("cmd/dev1/set"), QoS: 0}, // covered by cmd/dev1/#
			}})
			sa, ok := rc.read(5 * time.Second).(*packet.Suback)
			if !ok || len(sa.Codes) != len(tc.want) {
				t.Fatalf("SUBACK %+v", sa)
			}
			for i := range tc.want {
				if sa.Codes[i] != tc.want[i] {
					t.Errorf("filter %d: code 0x%02x, want 0x%02x", i, byte(sa.Codes[i]), byte(tc.want[i]))
				}
			}
		})
	}

	pubTests := []struct {
		name    string
		version byte
		topic   string
		allowed bool
		code    packet.ReasonCode // PUBACK
	}{
		{"v5 own topic", packet.Version5, "sensors/alice/t", true, 0},
		{"v5 other user's topic", packet.Version5, "sensors/bob/t", false, packet.NotAuthorized},
		{"v3 own topic", packet.Version311, "sensors/alice/h", true, 0},
		{"v3 other user's topic acked and dropped", packet.Version311, "sensors/bob/h", false, 0},
	}
	deniedBefore := s.Stats().Denied["publish"]
	denied := uint64(0)
	for i, tc := range pubTests {
		t.Run("publish "+tc.name, func(t *testing.T) {
			rc := dialRaw(t, addr, tc.version)
			rc.connect(&packet.Connect{ClientID: []byte("pub"), CleanStart: true, KeepAlive: 30,
				UsernameFlag: true, Username: []byte("alice"), PasswordFlag: true, Password: []byte("secret")})
			pid := uint16(i + 1)
			rc.publish(tc.topic, 1, pid, "v")
			rc.expectAck(packet.PUBACK, pid, tc.code)
			if tc.allowed {
				p, ok := watch.read(5 * time.Second).(*packet.Publish)
				if !ok || string(p.Topic) != tc.topic {
					t.Fatalf("subscriber got %+v, want %s", p, tc.topic)
				}
				watch.send(&packet.Ack{Kind: packet.PUBACK, PacketID: p.PacketID})
			} else {
				denied++
				watch.expectNothing(200 * time.Millisecond)
			}
			for _, seen := range cons.seen() {
				if seen == tc.topic && !tc.allowed {
					t.Fatalf("denied message reached the consumer")
				}
			}
		})
	}
	if got := s.Stats().Denied["publish"] - deniedBefore; got != denied {
		t.Errorf("denied publish = %d, want %d", got, denied)
	}
}

// TestAuthWillRechecked changes the ACL between CONNECT and the will
// firing: the will is dropped.
func TestAuthWillRechecked(t *testing.T) {
	acl := &switchAuth{allow: true}
	s, addr := startServer(t, nil, Options{Auth: acl})
	watch := dialRaw(t, addr, packet.Version5)
	watch.connect(&packet.Connect{ClientID: []byte("watch"), CleanStart: true})
	subscribe(t, watch, packet.Subscription{Filter: []byte("will/#")})
	for _, allow := range []bool{true, false} {
		acl.set(true)
		c := dialRaw(t, addr, packet.Version5)
		c.connect(&packet.Connect{ClientID: []byte("w"), CleanStart: true, WillFlag: true,
			WillTopic: []byte("will/x"), WillPayload: []byte("gone")})
		acl.set(allow)
		c.nc.Close() // abnormal end: the will fires
		if allow {
			if p := readPublish(t, watch); string(p.Payload) != "gone" {
				t.Fatalf("will payload %q", p.Payload)
			}
			continue
		}
		watch.expectNothing(300 * time.Millisecond)
		if s.Stats().Denied["publish"] != 1 {
			t.Fatalf("denied will not counted: %v", s.Stats().Denied)
		}
	}
}

// switchAuth allows everyone in and allows or denies every publish.
type switchAuth struct {
	mu    sync.Mutex
	allow bool
}

func (a *switchAuth) set(v bool) { a.mu.Lock(); a.allow = v; a.mu.Unlock() }

func (a *switchAuth) Authenticate(_ context.Context, c auth.Credentials) (auth.Identity, error) {
	return auth.Identity{ClientID: c.ClientID}, nil
}

func (a *switchAuth) CanPublish(auth.Identity, string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.allow
}

func (a *switchAuth) CanSubscribe(auth.Identity, string) bool { return true }

// TestAuthPasswordFlood sends a flood of wrong passwords from one address:
// after max_failures the answer is 0x9F without a hash check, every
// connection is closed, and no goroutine is left behind.
func TestAuthPasswordFlood(t *testing.T) {
	cfg := auth.DefaultConfig()
	h, _ := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	cfg.Users = []auth.UserConfig{{Username: "alice", PasswordHash: string(h)}}
	cfg.MaxFailures = 3
	a, err := auth.New(cfg, auth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, addr := startServer(t, nil, Options{Auth: a})
	before := runtime.NumGoroutine()
	codes := map[packet.ReasonCode]int{}
	for i := range 50 {
		c := dialRaw(t, addr, packet.Version5)
		ca := c.connect(&packet.Connect{ClientID: []byte(fmt.Sprint("f", i)), CleanStart: true,
			UsernameFlag: true, Username: []byte("alice"), PasswordFlag: true, Password: []byte("guess")})
		codes[ca.ReasonCode]++
		c.expectClosed(-1)
		c.nc.Close()
	}
	if codes[packet.BadUserNameOrPassword] != 3 || codes[packet.ConnectionRateExceeded] != 47 {
		t.Fatalf("CONNACK codes %v, want 3 × 0x86 then 47 × 0x9F", codes)
	}
	if got := s.Stats().Denied["connect"]; got != 50 {
		t.Errorf("denied connect = %d, want 50", got)
	}
	waitFor(t, func() bool { return runtime.NumGoroutine() <= before+2 })
}
