package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Stats are running totals of a simulator.
type Stats struct {
	// Machines is the number of simulated machines.
	Machines int
	// Sent counts telemetry and alarm messages the broker acknowledged.
	Sent int64
	// Dropped counts samples not sent because the machine was offline
	// (a real PLC without a buffer loses them the same way).
	Dropped int64
	// Unacked counts publishes whose PUBACK did not arrive in time.
	Unacked int64
	// Faulted is the number of machines in fault now.
	Faulted int64
	// Faults counts faults since the start.
	Faults int64
	// Reconnects counts connections re-established after a drop.
	Reconnects int64
	// Commands counts commands received (valid or not).
	Commands int64
	// Rebirths counts Sparkplug rebirth requests obeyed.
	Rebirths int64
	// Format is the payload format, json or sparkplugb.
	Format string
}

// Simulator runs Lines × Machines simulated machines, each with its own
// MQTT connection.
type Simulator struct {
	cfg Config
	log *slog.Logger

	sent, dropped, unacked, faulted, faults, reconnects, commands, rebirths atomic.Int64
}

// New validates cfg. It does no I/O.
func New(cfg Config, log *slog.Logger) (*Simulator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Simulator{cfg: cfg, log: log}, nil
}

// Stats returns a snapshot of the totals.
func (s *Simulator) Stats() Stats {
	return Stats{
		Machines:   s.cfg.Lines * s.cfg.Machines,
		Sent:       s.sent.Load(),
		Dropped:    s.dropped.Load(),
		Unacked:    s.unacked.Load(),
		Faulted:    s.faulted.Load(),
		Faults:     s.faults.Load(),
		Reconnects: s.reconnects.Load(),
		Commands:   s.commands.Load(),
		Rebirths:   s.rebirths.Load(),
		Format:     s.cfg.Format,
	}
}

// Run connects every machine (every edge node in Sparkplug B mode), then
// publishes until ctx is cancelled. It fails if any cannot make its first
// connection.
func (s *Simulator) Run(ctx context.Context) error {
	if s.cfg.Format == FormatSparkplugB {
		return s.runSparkplug(ctx)
	}
	n := s.cfg.Lines * s.cfg.Machines
	machines := make([]*machine, 0, n)
	defer func() {
		for _, m := range machines {
			m.client.Disconnect(250)
		}
	}()
	for line := 1; line <= s.cfg.Lines; line++ {
		for mi := 1; mi <= s.cfg.Machines; mi++ {
			m := s.newMachine(line, mi, len(machines))
			if err := m.connect(ctx); err != nil {
				return err
			}
			machines = append(machines, m)
		}
	}
	s.log.Info("machines connected", "machines", n, "addr", s.cfg.Addr, "site", s.cfg.Site)
	var wg sync.WaitGroup
	for i, m := range machines {
		// Spread the machines over one interval so the broker sees a
		// steady stream instead of bursts.
		offset := time.Duration(i) * s.cfg.Interval / time.Duration(n)
		wg.Go(func() { m.loop(ctx, offset) })
	}
	wg.Wait()
	return nil
}

// machine is one simulated machine and its MQTT connection.
type machine struct {
	sim      *Simulator
	prefix   string
	clientID string
	log      *slog.Logger
	client   mqtt.Client

	mu    sync.Mutex // guards model
	model *model

	connMu      sync.Mutex // guards conn
	conn        *dropConn  // the current connection, dropped to simulate a cable pull
	conns       atomic.Int64
	lastAttempt time.Time // of a reconnect; used by the machine's loop only
}

func (s *Simulator) newMachine(line, mi, index int) *machine {
	m := &machine{
		sim:      s,
		prefix:   machinePrefix(s.cfg.Site, line, mi),
		clientID: fmt.Sprintf("sluice-sim-%s-l%d-m%d", s.cfg.Site, line, mi),
		model:    newModel(s.cfg, index),
	}
	m.log = s.log.With("line", line, "machine", mi)
	opts := mqtt.NewClientOptions().
		AddBroker("tcp://" + s.cfg.Addr).
		SetClientID(m.clientID).
		SetCleanSession(false).
		SetAutoReconnect(false).
		SetConnectTimeout(s.cfg.ConnectTimeout).
		SetKeepAlive(30 * time.Second).
		SetCustomOpenConnectionFn(m.dial).
		SetDefaultPublishHandler(m.onMessage).
		SetOnConnectHandler(m.onConnect).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			m.log.Debug("connection lost", "err", err)
		})
	if s.cfg.Username != "" {
		opts.SetUsername(s.cfg.Username).SetPassword(s.cfg.Password)
	}
	m.client = mqtt.NewClient(opts)
	return m
}

// dial opens the TCP connection and remembers it so drop can cut it.
func (m *machine) dial(u *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	d := net.Dialer{Timeout: o.ConnectTimeout}
	nc, err := d.Dial("tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", u.Host, err)
	}
	dc := &dropConn{Conn: nc}
	m.connMu.Lock()
	m.conn = dc
	m.connMu.Unlock()
	return dc, nil
}

// errDropped is what reads and writes return once a connection is
// dropped.
var errDropped = errors.New("connection dropped by the simulator")

// dropConn is a connection the simulator can cut. paho treats "use of
// closed network connection" as its own doing and ignores it, so after a
// drop every error is reported as errDropped instead: paho then handles a
// lost connection, as it would after a real network failure.
type dropConn struct {
	net.Conn
	dropped atomic.Bool
}

func (c *dropConn) drop() {
	c.dropped.Store(true)
	c.Conn.Close()
}

func (c *dropConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil && c.dropped.Load() {
		err = errDropped
	}
	return n, err
}

func (c *dropConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil && c.dropped.Load() {
		err = errDropped
	}
	return n, err
}

// drop closes the TCP connection without DISCONNECT, as a pulled cable
// or a crashed PLC would, and connects again at once with the persistent
// session, which the broker resumes with its subscription.
func (m *machine) drop(ctx context.Context) {
	m.connMu.Lock()
	if m.conn != nil {
		m.conn.drop()
	}
	m.connMu.Unlock()
	// paho refuses Connect until its reader has seen the closed socket
	// and it has stopped its workers: retry for a moment.
	deadline := time.Now().Add(2 * time.Second)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		if m.connect(ctx) == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	m.lastAttempt = time.Now()
}

// ensureConnected reports whether the machine is online, trying to
// connect again (at most once a second) when it is not. Reconnecting is
// the machine loop's job, not paho's: paho's automatic reconnect raced
// the simulated drops and could leave a machine offline for good.
func (m *machine) ensureConnected(ctx context.Context) bool {
	if m.client.IsConnectionOpen() {
		return true
	}
	if time.Since(m.lastAttempt) < time.Second {
		return false
	}
	m.lastAttempt = time.Now()
	if err := m.connect(ctx); err != nil {
		if ctx.Err() == nil {
			m.log.Debug("reconnecting", "err", err)
		}
		return false
	}
	return m.client.IsConnectionOpen()
}

func (m *machine) connect(ctx context.Context) error {
	tok := m.client.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(m.sim.cfg.ConnectTimeout):
		return fmt.Errorf("connecting %s to %s: timed out", m.prefix, m.sim.cfg.Addr)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("connecting %s to %s: %w", m.prefix, m.sim.cfg.Addr, err)
	}
	return nil
}

// onConnect (re)subscribes to the command topic. With a resumed session
// the broker already has the subscription; subscribing again is harmless
// and covers a broker that lost it.
func (m *machine) onConnect(c mqtt.Client) {
	if m.conns.Add(1) > 1 {
		m.sim.reconnects.Add(1)
		m.log.Info("reconnected")
	}
	c.Subscribe(m.prefix+"/cmd", 1, m.onMessage) // failure shows up as commands not obeyed; paho logs nothing
}

// onMessage handles a command. It runs on paho's router goroutine, so it
// publishes the reply without waiting for its PUBACK.
func (m *machine) onMessage(c mqtt.Client, msg mqtt.Message) {
	if msg.Topic() != m.prefix+"/cmd" {
		return
	}
	m.sim.commands.Add(1)
	reply := Reply{}
	cmd, err := parseCommand(msg.Payload())
	reply.ID = cmd.ID
	if err == nil {
		m.mu.Lock()
		reply.Applied, err = m.model.apply(cmd)
		m.mu.Unlock()
	}
	if err != nil {
		reply.Error = err.Error()
		m.log.Info("command refused", "err", err)
	} else {
		reply.OK = true
		m.log.Info("command applied", "applied", reply.Applied)
	}
	b, _ := json.Marshal(reply) // a Reply always marshals
	c.Publish(replyTopic(m.sim.cfg.ReplyTopic, m.prefix, m.clientID, reply.ID), 1, false, b)
}

// loop publishes one sample per interval until ctx ends.
func (m *machine) loop(ctx context.Context, offset time.Duration) {
	cfg := m.sim.cfg
	select {
	case <-time.After(offset):
	case <-ctx.Done():
		return
	}
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		m.tick(ctx)
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

func (m *machine) tick(ctx context.Context) {
	m.mu.Lock()
	sample, ev := m.model.step(m.sim.cfg.Interval)
	m.mu.Unlock()
	now := time.Now().UnixMilli()
	sample.TS = now
	if ev.faultStarted {
		m.sim.faults.Add(1)
		m.sim.faulted.Add(1)
		m.log.Info("fault", "vibration", sample.Vibration)
	}
	if ev.faultCleared {
		m.sim.faulted.Add(-1)
		m.log.Info("fault cleared")
	}
	if ev.dropConnection {
		m.log.Info("dropping connection")
		m.drop(ctx)
	}
	if !m.ensureConnected(ctx) {
		m.sim.dropped.Add(1)
		return
	}
	b, _ := json.Marshal(sample) // a Sample always marshals
	m.publish(ctx, m.prefix+"/telemetry", b)
	if ev.faultStarted || ev.faultCleared {
		a := Alarm{TS: now, Active: ev.faultStarted, Code: "VIB_HIGH", Vibration: sample.Vibration}
		if a.Active {
			a.Severity = "critical"
			a.Message = fmt.Sprintf("vibration %.1f mm/s above %.1f mm/s limit, spindle stopping", sample.Vibration, vibrationLimit)
		} else {
			a.Severity = "info"
			a.Message = "fault cleared"
		}
		b, _ := json.Marshal(a)
		m.publish(ctx, m.prefix+"/alarm", b)
	}
}

// publish sends at QoS 1 and waits for the PUBACK, bounded by
// PublishTimeout, so a machine never has more than one message in flight.
func (m *machine) publish(ctx context.Context, topic string, payload []byte) {
	tok := m.client.Publish(topic, 1, false, payload)
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return
	case <-time.After(m.sim.cfg.PublishTimeout):
		m.sim.unacked.Add(1)
		return
	}
	if err := tok.Error(); err != nil {
		if !errors.Is(err, mqtt.ErrNotConnected) {
			m.log.Warn("publishing", "topic", topic, "err", err)
		}
		m.sim.dropped.Add(1)
		return
	}
	m.sim.sent.Add(1)
}
