// Package auth authenticates MQTT clients (users with bcrypt or argon2id
// password hashes, inline or in a users file; anonymous access where the
// listener allows it; client certificate names) and authorises their
// PUBLISH and SUBSCRIBE requests against an ordered list of ACL rules.
//
// The broker calls Auth.Authenticate once per CONNECT and Auth.CanPublish
// / Auth.CanSubscribe per request; see DESIGN.md for the contract.
package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options carries an Auth's collaborators.
type Options struct {
	Logger     *slog.Logger          // default: slog.New(discard)
	Registerer prometheus.Registerer // default: none (metrics not exported)
	// Now is the clock of the failed-login limiter. Default: time.Now.
	Now func() time.Time
}

// Auth authenticates clients and authorises their requests. It is safe
// for concurrent use. Reload swaps its configuration atomically; Run
// keeps the users file current.
type Auth struct {
	log     *slog.Logger
	m       *metrics
	limiter *limiter
	dummy   *passwordHash

	state atomic.Pointer[state]
	file  atomic.Pointer[fileUsers] // nil until the users file is loaded

	reloadMu sync.Mutex // serialises Reload and users file loads
	seen     fileStamp  // the users file version last read (under reloadMu)
}

// state is everything an Auth derives from a Config.
type state struct {
	cfg   Config
	users map[string]*passwordHash // inline users
	decoy *passwordHash            // the first inline user's hash, or nil
	acl   *ACL
	sem   chan struct{} // one slot per concurrent hash check
}

// New validates cfg and builds an Auth. It does no I/O: call
// LoadUsersFile before serving when cfg.UsersFile is set (until then, file
// users are unknown), and Run to follow changes to the file.
func New(cfg Config, opts Options) (*Auth, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	st, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	a := &Auth{
		log:   opts.Logger.With("component", "auth"),
		m:     m,
		dummy: newDummyHash(),
	}
	a.limiter = newLimiter(opts.Now, m.evictions.Inc)
	a.limiter.configure(cfg.MaxFailures, cfg.FailureWindow, cfg.MaxTrackedAddresses)
	a.state.Store(st)
	return a, nil
}

// compile validates cfg and derives a state from it.
func compile(cfg Config) (*state, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("validating auth config: %w", errors.Join(errs...))
	}
	st := &state{cfg: cfg, users: make(map[string]*passwordHash, len(cfg.Users))}
	for _, u := range cfg.Users {
		h, err := parseHash(u.PasswordHash)
		if err != nil { // Validate has checked; kept for safety
			return nil, fmt.Errorf("parsing hash of user %q: %w", u.Username, err)
		}
		st.users[u.Username] = h
		if st.decoy == nil {
			st.decoy = h
		}
	}
	acl, err := NewACL(cfg.ACL)
	if err != nil {
		return nil, err
	}
	st.acl = acl
	n := cfg.MaxConcurrentChecks
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	st.sem = make(chan struct{}, n)
	return st, nil
}

// Reload replaces the configuration. On error nothing changes. When the
// users file setting changed, the new file is loaded first. Identities
// already authenticated stay valid; their next checks use the new ACL.
func (a *Auth) Reload(cfg Config) error {
	st, err := compile(cfg)
	if err != nil {
		return err
	}
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if cfg.UsersFile != a.state.Load().cfg.UsersFile {
		if err := a.loadFileLocked(cfg.UsersFile, true); err != nil {
			return err
		}
	}
	a.limiter.configure(cfg.MaxFailures, cfg.FailureWindow, cfg.MaxTrackedAddresses)
	a.state.Store(st)
	return nil
}

// ACL returns the ACL in force.
func (a *Auth) ACL() *ACL { return a.state.Load().acl }

// CanPublish reports whether id may publish to the topic name (a valid
// topic name, checked by the caller).
func (a *Auth) CanPublish(id Identity, name string) bool {
	return a.state.Load().acl.CanPublish(id, name)
}

// CanSubscribe reports whether id may subscribe to filter.
func (a *Auth) CanSubscribe(id Identity, filter string) bool {
	return a.state.Load().acl.CanSubscribe(id, filter)
}

// Authenticate establishes who a connecting client is, or returns an
// error wrapping ErrBadCredentials or ErrRateLimited (or ctx's error while
// waiting for a hash check slot). Errors name the address and user name,
// never the password; the caller logs them. In order:
//
//   - a certificate name (c.CertIdentity) is the user name, unchecked;
//   - no user name: anonymous if the listener allows it, else refused (a
//     password without a user name is refused too);
//   - a user name where no users are configured at all: anonymous (user
//     name not trusted) if the listener allows it, else refused;
//   - otherwise the password is checked against the user's hash (an
//     unknown user costs the same time as a wrong password), unless the
//     source address has too many recent failures.
func (a *Auth) Authenticate(ctx context.Context, c Credentials) (Identity, error) {
	st := a.state.Load()
	id := Identity{ClientID: c.ClientID}
	fail := func(reason string, err error) (Identity, error) {
		a.m.failures.WithLabelValues(reason).Inc()
		return Identity{}, fmt.Errorf("authenticating client %q user %q from %s: %w", c.ClientID, c.Username, c.RemoteAddr, err)
	}
	file := a.file.Load()
	haveUsers := len(st.users) > 0 || st.cfg.UsersFile != ""
	switch {
	case c.CertIdentity != "":
		id.Username, id.Method = c.CertIdentity, MethodCertificate
		a.m.success(id.Method)
		return id, nil
	case c.Username == "" && c.Password != nil:
		return fail(reasonPasswordWithoutUser, ErrBadCredentials)
	case c.Username == "" || !haveUsers:
		if !c.ListenerAllowsAnonymous {
			return fail(reasonAnonymous, ErrBadCredentials)
		}
		id.Method = MethodAnonymous
		a.m.success(id.Method)
		return id, nil
	}

	h := st.users[c.Username]
	if h == nil && file != nil && file.path == st.cfg.UsersFile {
		h = file.users[c.Username]
	}
	key := limitKey(c.RemoteAddr)
	if !a.limiter.take(key) {
		a.m.rateLimited.Inc()
		return Identity{}, fmt.Errorf("authenticating client %q user %q from %s: %w", c.ClientID, c.Username, c.RemoteAddr, ErrRateLimited)
	}
	select {
	case st.sem <- struct{}{}:
	case <-ctx.Done():
		a.limiter.refund(key)
		return Identity{}, fmt.Errorf("authenticating client %q from %s: waiting for a hash check: %w", c.ClientID, c.RemoteAddr, ctx.Err())
	}
	var ok bool
	if h == nil {
		a.decoy(st, file).verify(c.Password) // same cost, result ignored
	} else {
		ok = h.verify(c.Password)
	}
	<-st.sem
	switch {
	case h == nil:
		return fail(reasonUnknownUser, ErrBadCredentials)
	case !ok:
		return fail(reasonBadPassword, ErrBadCredentials)
	}
	a.limiter.refund(key)
	id.Username, id.Method = c.Username, MethodPassword
	a.m.success(id.Method)
	return id, nil
}

// decoy returns the hash an unknown user's password is checked against,
// so that an unknown user takes as long as a wrong password and timing does
// not tell which user names exist: a configured user's hash (typical cost),
// else one of default cost.
func (a *Auth) decoy(st *state, file *fileUsers) *passwordHash {
	switch {
	case st.decoy != nil:
		return st.decoy
	case file != nil && file.decoy != nil:
		return file.decoy
	}
	return a.dummy
}

// limitKey is the source address whose failures are counted together:
// the host, with IPv6 addresses reduced to their /64 (one host's share).
// An address that does not parse (a pipe, say) shares the zero key.
func limitKey(remote string) netip.Addr {
	host := remote
	if h, _, err := net.SplitHostPort(remote); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}
