package auth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sluicehq/sluice/broker/packet"
)

// counter returns the value of a counter in reg ("" label value: the
// unlabelled counter), 0 if absent.
func counter(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" && len(m.GetLabel()) == 0 || len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// fakeClock is a settable clock for the limiter.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// newTestAuth builds an Auth over cfg with its own registry and clock.
func newTestAuth(t *testing.T, cfg Config) (*Auth, *prometheus.Registry, *fakeClock) {
	t.Helper()
	reg := prometheus.NewRegistry()
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	a, err := New(cfg, Options{Registerer: reg, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return a, reg, clock
}

func usersConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.Users = []UserConfig{
		{Username: "alice", PasswordHash: cheapHash(t, "alice-pw", AlgoArgon2id)},
		{Username: "bob", PasswordHash: cheapHash(t, "bob-pw", AlgoBcrypt)},
	}
	return cfg
}

func TestAuthenticate(t *testing.T) {
	withUsers := usersConfig(t)
	tests := []struct {
		name       string
		cfg        Config
		cred       Credentials
		wantErr    error
		wantUser   string
		wantMethod Method
		reason     string // failure reason counted, if any
	}{
		{"argon2id user", withUsers, Credentials{Username: "alice", Password: []byte("alice-pw")}, nil, "alice", MethodPassword, ""},
		{"bcrypt user", withUsers, Credentials{Username: "bob", Password: []byte("bob-pw")}, nil, "bob", MethodPassword, ""},
		{"wrong password", withUsers, Credentials{Username: "alice", Password: []byte("bob-pw")}, ErrBadCredentials, "", 0, reasonBadPassword},
		{"no password", withUsers, Credentials{Username: "alice"}, ErrBadCredentials, "", 0, reasonBadPassword},
		{"empty password", withUsers, Credentials{Username: "alice", Password: []byte{}}, ErrBadCredentials, "", 0, reasonBadPassword},
		{"unknown user", withUsers, Credentials{Username: "carol", Password: []byte("alice-pw")}, ErrBadCredentials, "", 0, reasonUnknownUser},
		{"unknown user, anonymous listener", withUsers, Credentials{Username: "carol", Password: []byte("x"), ListenerAllowsAnonymous: true}, ErrBadCredentials, "", 0, reasonUnknownUser},
		{"anonymous allowed", withUsers, Credentials{ListenerAllowsAnonymous: true}, nil, "", MethodAnonymous, ""},
		{"anonymous refused", withUsers, Credentials{}, ErrBadCredentials, "", 0, reasonAnonymous},
		{"password without user", withUsers, Credentials{Password: []byte("alice-pw"), ListenerAllowsAnonymous: true}, ErrBadCredentials, "", 0, reasonPasswordWithoutUser},
		{"no users: name not trusted", DefaultConfig(), Credentials{Username: "root", Password: []byte("x"), ListenerAllowsAnonymous: true}, nil, "", MethodAnonymous, ""},
		{"no users: refused where not anonymous", DefaultConfig(), Credentials{Username: "root", Password: []byte("x")}, ErrBadCredentials, "", 0, reasonAnonymous},
		{"certificate", withUsers, Credentials{CertIdentity: "device-7"}, nil, "device-7", MethodCertificate, ""},
		{"certificate beats user name", withUsers, Credentials{CertIdentity: "device-7", Username: "alice", Password: []byte("wrong")}, nil, "device-7", MethodCertificate, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, reg, _ := newTestAuth(t, tt.cfg)
			tt.cred.ClientID, tt.cred.RemoteAddr = "client-1", "192.0.2.1:5555"
			id, err := a.Authenticate(context.Background(), tt.cred)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), string(tt.cred.Password)) && len(tt.cred.Password) > 0 {
					t.Errorf("error %q contains the password", err)
				}
				if !strings.Contains(err.Error(), "192.0.2.1") {
					t.Errorf("error %q does not name the address", err)
				}
				if got := counter(t, reg, "sluice_auth_failures_total", tt.reason); got != 1 {
					t.Errorf("failures{reason=%q} = %v, want 1", tt.reason, got)
				}
				return
			}
			if id.Username != tt.wantUser || id.Method != tt.wantMethod || id.ClientID != "client-1" {
				t.Errorf("identity = %+v, want user %q method %v", id, tt.wantUser, tt.wantMethod)
			}
			if got := counter(t, reg, "sluice_auth_successes_total", tt.wantMethod.String()); got != 1 {
				t.Errorf("successes{method=%q} = %v, want 1", tt.wantMethod, got)
			}
		})
	}
}

func TestConnackCode(t *testing.T) {
	tests := []struct {
		err  error
		want packet.ReasonCode
		v3   packet.ReasonCode
	}{
		{ErrBadCredentials, packet.BadUserNameOrPassword, packet.V3BadUsernameOrPassword},
		{ErrRateLimited, packet.ConnectionRateExceeded, packet.V3ServerUnavailable},
		{context.DeadlineExceeded, packet.ServerUnavailable, packet.V3ServerUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			err := errors.Join(errors.New("context"), tt.err)
			if got := ConnackCode(err); got != tt.want || packet.V3ConnackCode(got) != tt.v3 {
				t.Fatalf("ConnackCode = %v (v3 %v), want %v (%v)", got, packet.V3ConnackCode(got), tt.want, tt.v3)
			}
		})
	}
}

func TestRateLimit(t *testing.T) {
	cfg := usersConfig(t)
	cfg.MaxFailures, cfg.FailureWindow = 3, 30*time.Second // one attempt back every 10s
	a, reg, clock := newTestAuth(t, cfg)
	try := func(addr, user, pw string) error {
		_, err := a.Authenticate(context.Background(), Credentials{ClientID: "c", Username: user, Password: []byte(pw), RemoteAddr: addr})
		return err
	}
	const attacker, other = "198.51.100.7:40000", "198.51.100.8:40000"

	for i := range 3 {
		if err := try(attacker, "alice", "guess"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d: %v, want bad credentials", i, err)
		}
	}
	t.Run("limited after burst, even the right password", func(t *testing.T) {
		for _, pw := range []string{"guess", "alice-pw"} {
			if err := try("198.51.100.7:40001", "alice", pw); !errors.Is(err, ErrRateLimited) {
				t.Fatalf("password %q: %v, want rate limited", pw, err)
			}
		}
		if got := counter(t, reg, "sluice_auth_rate_limited_total", ""); got != 2 {
			t.Errorf("rate_limited_total = %v, want 2", got)
		}
		if got := counter(t, reg, "sluice_auth_failures_total", reasonBadPassword); got != 3 {
			t.Errorf("failures{bad_password} = %v, want 3 (limited attempts are not checked)", got)
		}
	})
	t.Run("other address unaffected", func(t *testing.T) {
		if err := try(other, "alice", "alice-pw"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("one attempt back per window/burst", func(t *testing.T) {
		clock.Advance(10 * time.Second)
		if err := try(attacker, "alice", "guess"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("after 10s: %v, want a checked attempt", err)
		}
		if err := try(attacker, "alice", "alice-pw"); !errors.Is(err, ErrRateLimited) {
			t.Fatalf("second attempt after 10s: %v, want rate limited", err)
		}
		clock.Advance(30 * time.Second)
		if err := try(attacker, "alice", "alice-pw"); err != nil {
			t.Fatalf("after the window: %v", err)
		}
	})
	t.Run("successes do not use the budget", func(t *testing.T) {
		for i := range 10 {
			if err := try("203.0.113.9:1", "bob", "bob-pw"); err != nil {
				t.Fatalf("login %d: %v", i, err)
			}
		}
	})
	t.Run("ipv6 counted per /64", func(t *testing.T) {
		for i, addr := range []string{"[2001:db8:1:2::1]:1", "[2001:db8:1:2::2]:1", "[2001:db8:1:2:ffff::3]:1"} {
			if err := try(addr, "alice", "guess"); !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("failure %d: %v", i, err)
			}
		}
		if err := try("[2001:db8:1:2::99]:1", "alice", "alice-pw"); !errors.Is(err, ErrRateLimited) {
			t.Fatalf("same /64: %v, want rate limited", err)
		}
		if err := try("[2001:db8:1:3::1]:1", "alice", "alice-pw"); err != nil {
			t.Fatalf("other /64: %v", err)
		}
	})
	t.Run("anonymous and certificate logins are not limited", func(t *testing.T) {
		for _, c := range []Credentials{{ListenerAllowsAnonymous: true}, {CertIdentity: "dev"}} {
			c.RemoteAddr = attacker
			if _, err := a.Authenticate(context.Background(), c); err != nil {
				t.Fatalf("%+v: %v", c, err)
			}
		}
	})
}

func TestRateLimitEviction(t *testing.T) {
	cfg := usersConfig(t)
	cfg.MaxFailures, cfg.MaxTrackedAddresses = 2, 3
	a, reg, clock := newTestAuth(t, cfg)
	for _, ip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"} {
		clock.Advance(time.Millisecond)
		_, err := a.Authenticate(context.Background(), Credentials{Username: "alice", Password: []byte("x"), RemoteAddr: ip + ":1"})
		if !errors.Is(err, ErrBadCredentials) {
			t.Fatal(err)
		}
	}
	if n := a.limiter.size(); n != 3 {
		t.Errorf("tracked %d addresses, want 3", n)
	}
	if got := counter(t, reg, "sluice_auth_rate_limit_evictions_total", ""); got != 2 {
		t.Errorf("evictions = %v, want 2", got)
	}
	// The newest addresses are kept: 10.0.0.5 has one attempt left, then none.
	try := func() error {
		_, err := a.Authenticate(context.Background(), Credentials{Username: "alice", Password: []byte("x"), RemoteAddr: "10.0.0.5:1"})
		return err
	}
	if err := try(); !errors.Is(err, ErrBadCredentials) {
		t.Fatal(err)
	}
	if err := try(); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("%v, want rate limited", err)
	}
	// Refilled buckets are dropped before anyone is evicted.
	clock.Advance(time.Hour)
	for _, ip := range []string{"10.0.1.1", "10.0.1.2", "10.0.1.3"} {
		_, _ = a.Authenticate(context.Background(), Credentials{Username: "alice", Password: []byte("x"), RemoteAddr: ip + ":1"})
	}
	if got := counter(t, reg, "sluice_auth_rate_limit_evictions_total", ""); got != 2 {
		t.Errorf("evictions = %v after refill, want still 2", got)
	}
}

func TestAuthenticateWaitsForHashSlot(t *testing.T) {
	cfg := usersConfig(t)
	cfg.MaxConcurrentChecks = 1
	a, _, _ := newTestAuth(t, cfg)
	a.state.Load().sem <- struct{}{} // the only slot is busy
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := a.Authenticate(ctx, Credentials{Username: "alice", Password: []byte("alice-pw"), RemoteAddr: "10.1.1.1:1"})
	if !errors.Is(err, context.DeadlineExceeded) || ConnackCode(err) != packet.ServerUnavailable {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if n := a.limiter.size(); n != 0 {
		t.Errorf("an abandoned attempt was counted against the address (%d tracked)", n)
	}
	<-a.state.Load().sem
	if _, err := a.Authenticate(context.Background(), Credentials{Username: "alice", Password: []byte("alice-pw"), RemoteAddr: "10.1.1.1:1"}); err != nil {
		t.Fatal(err)
	}
}

func TestReloadSwapsACL(t *testing.T) {
	cfg := usersConfig(t)
	cfg.ACL = []ACLRule{{Permission: "allow", Topic: "a/#"}}
	a, _, _ := newTestAuth(t, cfg)
	id, err := a.Authenticate(context.Background(), Credentials{ClientID: "c", Username: "alice", Password: []byte("alice-pw")})
	if err != nil {
		t.Fatal(err)
	}
	if !a.CanPublish(id, "a/1") || a.CanPublish(id, "b/1") || !a.CanSubscribe(id, "a/#") {
		t.Fatal("unexpected answers before reload")
	}
	cfg.ACL = []ACLRule{{Permission: "allow", Topic: "b/#"}}
	if err := a.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if a.CanPublish(id, "a/1") || !a.CanPublish(id, "b/1") || a.CanSubscribe(id, "a/#") {
		t.Fatal("the identity's cached view survived the reload")
	}
	bad := cfg
	bad.ACL = []ACLRule{{Permission: "perhaps", Topic: "x"}}
	if err := a.Reload(bad); err == nil || !strings.Contains(err.Error(), "acl[0].permission") {
		t.Fatalf("Reload(bad) = %v, want an acl[0].permission error", err)
	}
	if !a.CanPublish(id, "b/1") {
		t.Fatal("a failed reload changed the ACL")
	}
	cfg.ACL = nil
	if err := a.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if !a.CanPublish(id, "anything") {
		t.Fatal("no rules must allow everything")
	}
}

// TestConcurrentUse runs logins and checks against reloads (for -race).
func TestConcurrentUse(t *testing.T) {
	cfg := usersConfig(t)
	cfg.ACL = []ACLRule{{Permission: "allow", Topic: "devices/%u/#"}}
	a, _, _ := newTestAuth(t, cfg)
	id, err := a.Authenticate(context.Background(), Credentials{ClientID: "c", Username: "alice", Password: []byte("alice-pw")})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for range 200 {
				if !a.CanPublish(id, "devices/alice/x") || a.CanPublish(id, "devices/bob/x") {
					t.Error("wrong answer")
					return
				}
				_ = a.CanSubscribe(id, "devices/alice/#")
			}
			if g == 0 {
				_, _ = a.Authenticate(context.Background(), Credentials{Username: "bob", Password: []byte("no"), RemoteAddr: "10.9.9.9:1"})
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if err := a.Reload(cfg); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
}

// TestUnknownUserCostsAHashCheck: an unknown user must take about as long
// as a wrong password, or timing would tell which user names exist.
func TestUnknownUserCostsAHashCheck(t *testing.T) {
	h, err := hashWith("pw", AlgoArgon2id, hashCost{argon: argonParams{memory: 8192, time: 2, threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.MaxFailures = 0
	cfg.Users = []UserConfig{{Username: "alice", PasswordHash: h}}
	a, _, _ := newTestAuth(t, cfg)
	login := func(user string) time.Duration {
		start := time.Now()
		_, err := a.Authenticate(context.Background(), Credentials{Username: user, Password: []byte("wrong")})
		if !errors.Is(err, ErrBadCredentials) {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	login("alice") // warm up
	known, unknown := time.Hour, time.Hour
	for range 5 { // interleaved, fastest of each
		known = min(known, login("alice"))
		unknown = min(unknown, login("mallory"))
	}
	t.Logf("wrong password %v, unknown user %v", known, unknown)
	if unknown < known/3 {
		t.Errorf("unknown user took %v, wrong password %v: the difference tells which users exist", unknown, known)
	}
}
