package command

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/auth"
	"github.com/sluicehq/sluice/broker/topic"
)

// Broker is what the service needs from the embedded broker
// (*broker.Server satisfies it).
type Broker interface {
	PublishCommand(ctx context.Context, m *broker.Message) ([]string, error)
	CommandPending(clientID, commandID string) bool
	Ready() error
}

var _ Broker = (*broker.Server)(nil)

// ErrBusy is returned by Submit when Config.MaxPending commands are not
// finished yet: retry later.
var ErrBusy = errors.New("too many pending commands")

// ErrNotRunning is returned by Submit before Run started or after it
// ended.
var ErrNotRunning = errors.New("command service not running")

// Options carries the service's collaborators.
type Options struct {
	Logger     *slog.Logger          // default: discard
	Registerer prometheus.Registerer // default: none
	// Sinks receive every status event, by name. Default: none.
	Sinks map[string]EventSink
	// DataDir is used when Config.Dir is empty: the store goes to
	// DataDir/commands.
	DataDir string
}

// Service submits commands to devices through the broker and tracks them
// to their end. It implements Submitter and broker.Tracker; Tap wraps
// the broker's consumer to see device replies. See DESIGN.md.
type Service struct {
	cfg     Config
	log     *slog.Logger
	dir     string
	devTmpl *template
	rspTmpl *template
	reply   *replyPattern // nil: no 3.1.1 reply topics
	acl     *auth.ACL
	tokens  []TokenConfig
	met     *metrics
	out     *outbox

	b       atomic.Pointer[brokerRef]
	db      *db           // set by Run
	stopped chan struct{} // closed when Run returns

	walMu sync.Mutex // guards wal; before mu
	wal   *wal       // the accept log, set by Run

	crashed atomic.Bool // tests: checkpoints stop, as if the process died after its accept log writes

	mu      sync.Mutex         // guards the fields below (after any session lock: Track)
	live    map[string]*record // pending commands, and changed ones until written
	fresh   []string           // created, not yet in the accept log (Submit waits for them), in order
	dirty   map[string]bool    // changed since the last checkpoint → created (needs a time index)
	pending int                // live records that are pending
	started uint64             // accept flushes started
	kick    chan struct{}      // accept flush now (capacity 1)

	written atomic.Uint64 // accept flushes written, not necessarily synced (the highest number)
	done    atomic.Uint64 // accept flushes completed: synced (the highest number)
	flushMu sync.Mutex    // guards flushed; a leaf
	flushed chan struct{} // closed when an accept flush is written or completes
}

type brokerRef struct{ b Broker }

var (
	_ Submitter      = (*Service)(nil)
	_ broker.Tracker = (*Service)(nil)
)

// New validates cfg and builds the service. It does no I/O.
func New(cfg Config, opts Options) (*Service, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("validating commands config: %w", errors.Join(errs...))
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, log: log, tokens: cfg.Tokens, live: map[string]*record{}, dirty: map[string]bool{},
		stopped: make(chan struct{}),
		kick:    make(chan struct{}, 1)}
	s.dir = cfg.Dir
	if s.dir == "" {
		s.dir = filepath.Join(opts.DataDir, "commands")
	}
	s.devTmpl, _ = compileTemplate(cfg.DeviceTopic, false)
	s.rspTmpl, _ = compileTemplate(cfg.ResponseTopic, true)
	if cfg.ReplyTopic != "" {
		s.reply, _ = compileReplyPattern(cfg.ReplyTopic)
	}
	acl, err := buildACL(cfg)
	if err != nil {
		return nil, err
	}
	s.acl = acl
	if s.met, err = newMetrics(opts.Registerer); err != nil {
		return nil, err
	}
	s.out = newOutbox(cfg.Outbox, opts.Sinks, log, s.met)
	return s, nil
}

// buildACL compiles the tokens' Allow filters and the ACL rules into one
// ACL; with no rule at all it denies everything (an empty auth.ACL
// would allow everything).
func buildACL(cfg Config) (*auth.ACL, error) {
	var rules []auth.ACLRule
	for _, t := range cfg.Tokens {
		for _, f := range t.Allow {
			rules = append(rules, auth.ACLRule{Permission: auth.PermissionAllow, Action: auth.ActionPublish, Topic: f, Users: []string{t.Name}})
		}
	}
	rules = append(rules, cfg.ACL...)
	rules = append(rules, auth.ACLRule{Permission: auth.PermissionDeny, Action: auth.ActionAll, Topic: "#"})
	acl, err := auth.NewACL(rules)
	if err != nil {
		return nil, fmt.Errorf("compiling commands ACL: %w", err)
	}
	return acl, nil
}

// pending reports whether the command still waits for the broker: it is
// re-driven after a restart, counted against MaxPending and expired when
// its TTL runs out.
func (r *record) pending() bool {
	switch r.Status.State {
	case Accepted, Queued:
		return true
	case Sent:
		return r.Cmd.QoS > 0
	}
	return false
}

// Run opens the store (replaying the accept log), re-drives the commands
// a restart interrupted once the broker serves, and then flushes,
// expires, purges and drains the outbox until ctx ends. It closes the
// store before it returns.
func (s *Service) Run(ctx context.Context, b Broker) error {
	defer close(s.stopped)
	if err := s.open(); err != nil {
		return err
	}
	var wg sync.WaitGroup
	acceptDone := make(chan struct{})
	wg.Go(func() {
		defer close(acceptDone)
		s.acceptLoop(ctx)
	})
	wg.Go(func() { s.checkpointLoop(ctx, acceptDone) })
	wg.Go(func() { s.out.run(ctx) })
	for b.Ready() != nil {
		select {
		case <-ctx.Done():
			wg.Wait()
			return s.close()
		case <-time.After(10 * time.Millisecond):
		}
	}
	s.b.Store(&brokerRef{b})
	s.redrive(ctx, b)
	s.sweepLoop(ctx)
	s.b.Store(nil)
	wg.Wait()
	return s.close()
}

// Ready reports whether the service takes commands (a readiness check).
func (s *Service) Ready() error {
	if s.b.Load() == nil {
		return ErrNotRunning
	}
	return nil
}

// redrive continues the commands found pending at start.
func (s *Service) redrive(ctx context.Context, b Broker) {
	s.mu.Lock()
	var todo []*record
	for _, r := range s.live {
		if r.pending() {
			todo = append(todo, r)
		}
	}
	s.mu.Unlock()
	n := 0
	for _, r := range todo {
		s.mu.Lock()
		st, dev, id := r.Status.State, r.Cmd.Device, r.Status.ID
		s.mu.Unlock()
		switch {
		case st == Accepted || st == Queued:
			// Never written to a connection as far as the store knows:
			// published again (a session still holding it gets no copy).
			_, _ = s.publish(ctx, b, id, true)
			n++
		case dev != "" && !b.CommandPending(dev, id):
			s.transition(id, "", Failed, "not held by the broker after a restart: outcome unknown (it may have been delivered)", nil)
		}
	}
	if len(todo) > 0 {
		s.log.Info("commands re-driven after restart", "pending", len(todo), "republished", n)
	}
}

// Submit implements Submitter, checking the command ACL for c.Principal.
func (s *Service) Submit(ctx context.Context, c Command) (Status, error) {
	return s.submit(ctx, c, true)
}

// SubmitTrusted submits without the ACL check (the admin token).
func (s *Service) SubmitTrusted(ctx context.Context, c Command) (Status, error) {
	return s.submit(ctx, c, false)
}

func (s *Service) submit(ctx context.Context, c Command, checkACL bool) (Status, error) {
	ref := s.b.Load()
	if ref == nil {
		return Status{}, ErrNotRunning
	}
	now := time.Now()
	generated := c.ID == ""
	if generated {
		c.ID = newID()
	} else if err := validID(c.ID); err != nil {
		return Status{}, &RejectedError{Reason: err.Error()}
	}
	reason := s.normalise(&c)
	denied := reason == "" && checkACL && !s.Allowed(c.Principal, c.Device, c.Topic)
	if denied {
		reason = fmt.Sprintf("principal %q may not command topic %q", c.Principal, c.Topic)
	}
	s.mu.Lock()
	if r, ok := s.live[c.ID]; ok {
		st := copyStatus(r.Status)
		need := r.gen // not durable yet, when done is below it
		if r.fresh {
			need = s.started + 1
		}
		s.mu.Unlock()
		// A known id (a record read again) returns once the first Submit's
		// record is durable too: its offset must not be committed before.
		if s.done.Load() < need {
			s.kickFlush()
			if err := s.waitFlush(ctx, &s.done, need); err != nil {
				return Status{}, fmt.Errorf("storing command %s: %w", c.ID, err)
			}
		}
		return st, rejectedErr(st)
	}
	if s.db != nil && !generated {
		if r, ok, err := s.db.get(c.ID); err != nil {
			s.mu.Unlock()
			return Status{}, err
		} else if ok {
			s.mu.Unlock()
			return r.Status, rejectedErr(r.Status)
		}
	}
	if reason == "" && (s.pending >= s.cfg.MaxPending || len(s.dirty) >= s.cfg.MaxPending) {
		s.mu.Unlock()
		s.met.busy.Inc()
		return Status{}, ErrBusy
	}
	r := &record{Cmd: c, Expires: expiresAt(c, now), fresh: true}
	r.Status = Status{ID: c.ID, Device: c.Device, Topic: c.Topic, Source: c.Source, CorrelationID: c.CorrelationID, CreatedAt: now}
	s.live[c.ID] = r
	s.fresh = append(s.fresh, c.ID)
	s.dirty[c.ID] = true
	if reason != "" {
		s.applyLocked(r, Rejected, reason, nil, now)
	} else {
		s.pending++
		s.met.pending.Set(float64(s.pending))
		s.applyLocked(r, Accepted, "", nil, now)
	}
	need := s.started + 1 // a flush that begins from now on writes r
	s.mu.Unlock()
	s.kickFlush()
	if reason != "" {
		if err := s.waitFlush(ctx, &s.done, need); err != nil {
			return Status{}, fmt.Errorf("storing command %s: %w", c.ID, err)
		}
		return s.status(c.ID), &RejectedError{Reason: reason, Denied: denied}
	}
	// Routed once written to the accept log, while it syncs: the device
	// does not wait for the fdatasync, the caller (the Kafka offset
	// commit) does. A crash in between loses a command the device may
	// have got, which the caller then submits again (DESIGN.md).
	if err := s.waitFlush(ctx, &s.written, need); err != nil {
		return Status{}, fmt.Errorf("storing command %s: %w", c.ID, err)
	}
	st, ok := s.publish(ctx, ref.b, c.ID, false)
	if err := s.waitFlush(ctx, &s.done, need); err != nil {
		return Status{}, fmt.Errorf("storing command %s: %w", c.ID, err)
	}
	if !ok {
		st = s.status(c.ID)
	}
	return st, rejectedErr(st)
}

// Allowed reports whether principal may command topic (of device, ""
// for an explicit topic) under the command ACL.
func (s *Service) Allowed(principal, device, topicName string) bool {
	return s.acl.CanPublish(auth.Identity{Username: principal, ClientID: device}, topicName)
}

// normalise fills defaults and checks c; it returns why c is invalid.
func (s *Service) normalise(c *Command) string {
	if c.Topic == "" {
		if c.Device == "" {
			return "neither device nor topic given"
		}
		if strings.ContainsAny(c.Device, "/+#\x00") {
			return fmt.Sprintf("invalid device %q", c.Device)
		}
		c.Topic = s.devTmpl.render(c.Device, c.ID)
	}
	switch {
	case !topic.ValidName([]byte(c.Topic)):
		return fmt.Sprintf("invalid topic %q", c.Topic)
	case strings.HasPrefix(c.Topic, "$"):
		return fmt.Sprintf("topic %q: $ topics cannot be commanded", c.Topic)
	case c.QoS > 2:
		return fmt.Sprintf("invalid QoS %d", c.QoS)
	case len(c.Payload) > s.cfg.MaxPayloadBytes:
		return fmt.Sprintf("payload of %d bytes exceeds %d", len(c.Payload), s.cfg.MaxPayloadBytes)
	case c.TTL < 0:
		return "negative TTL"
	}
	if c.TTL == 0 {
		c.TTL = s.cfg.DefaultTTL
	}
	c.TTL = min(c.TTL, s.cfg.MaxTTL) // not rounded: publish aligns the whole-second MQTT expiry with it
	return ""
}

// expiresAt is when c's TTL (or its earlier deadline) runs out, for c
// accepted at now.
func expiresAt(c Command, now time.Time) time.Time {
	exp := now.Add(c.TTL)
	if !c.Deadline.IsZero() && c.Deadline.Before(exp) {
		exp = c.Deadline
	}
	return exp
}

// mqttExpiry returns the message expiry interval (whole seconds, as MQTT
// has them) and the receive time to stamp a command with so that the
// broker drops it exactly at expires: the interval is rounded up and the
// receive time moved back by the rounding.
func mqttExpiry(created, expires time.Time) (uint32, time.Time) {
	secs := (expires.Sub(created) + time.Second - 1) / time.Second
	if secs < 1 {
		secs = 1
	}
	return uint32(secs), expires.Add(-secs * time.Second)
}

// publish hands an accepted command (or, with again, a queued one after
// a restart) to the broker, records the outcome and returns the status
// (ok false: it was not published, being published or not accepted).
func (s *Service) publish(ctx context.Context, b Broker, id string, again bool) (st Status, ok bool) {
	s.mu.Lock()
	r := s.live[id]
	if r == nil || r.publishing || (r.Status.State != Accepted && !(again && r.Status.State == Queued)) {
		s.mu.Unlock()
		return Status{}, false
	}
	r.publishing = true // r stays in live: it is pending
	c := r.Cmd
	expiry, received := mqttExpiry(r.Status.CreatedAt, r.Expires)
	m := &broker.Message{
		Topic: c.Topic, Payload: c.Payload, QoS: c.QoS, ReceivedAt: received,
		MessageExpiry: expiry, ContentType: c.ContentType,
		CorrelationData: []byte(c.ID), UserProperties: c.UserProperties, CommandID: c.ID,
	}
	m.ResponseTopic = s.rspTmpl.render(c.Device, c.ID)
	s.mu.Unlock()
	to, reason := s.route(ctx, b, r, m)
	s.mu.Lock()
	defer s.mu.Unlock()
	r.publishing = false
	if to != "" {
		s.applyLocked(r, to, reason, nil, time.Now())
	}
	return copyStatus(r.Status), true
}

// route publishes m (of r) and returns the state it moves r to ("" to
// stay accepted: the sweep retries) and why.
func (s *Service) route(ctx context.Context, b Broker, r *record, m *broker.Message) (State, string) {
	const expired = "TTL ran out before it was handed to the broker"
	if !r.Expires.After(time.Now()) {
		return Expired, expired
	}
	matched, err := b.PublishCommand(ctx, m)
	c := &r.Cmd
	found := len(matched) > 0
	if c.Device != "" {
		found = slices.Contains(matched, c.Device)
	}
	switch {
	case !found && err != nil:
		s.log.Warn("publishing command", "id", c.ID, "err", err)
		return "", ""
	case !found && !r.Expires.After(time.Now()):
		return Expired, expired
	case !found && c.Device != "":
		return Rejected, fmt.Sprintf("no such device: %q has no session subscribed to %q", c.Device, c.Topic)
	case !found:
		return Rejected, fmt.Sprintf("no session subscribed to %q", c.Topic)
	}
	return Queued, ""
}

func rejectedErr(st Status) error {
	if st.State == Rejected {
		return &RejectedError{Reason: st.Reason}
	}
	return nil
}

// newID returns a random command id.
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validID checks a caller's id: it becomes a topic level of reply
// topics, so 1-128 characters from [A-Za-z0-9._:-].
func validID(id string) error {
	if len(id) > 128 {
		return errors.New("id longer than 128 characters")
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return fmt.Errorf("id %q: only letters, digits and . _ : - are allowed", id)
		}
	}
	return nil
}
