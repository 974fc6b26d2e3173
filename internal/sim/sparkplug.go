package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluicehq/sluice/schemas/sparkplug"
)

// In Sparkplug B mode each line is an edge node ("line{n}") of group
// Site with one MQTT connection, and its machines are devices
// ("machine{m}"). Metrics carry the JSON telemetry's names.
const (
	metricBdSeq   = "bdSeq"
	metricRebirth = "Node Control/Rebirth"
	rebirthAlias  = 1
)

// deviceMetrics are a machine's metrics in its DBIRTH, in order. A
// metric's alias is 100 × machine + its index here + 1, unique within the
// edge node as Sparkplug 3.0 requires.
var deviceMetrics = []struct {
	name     string
	datatype uint32
}{
	{"temp", sparkplug.TypeDouble},
	{"vibration", sparkplug.TypeDouble},
	{"spindle_rpm", sparkplug.TypeUInt32},
	{"state", sparkplug.TypeString},
	{"setpoint", sparkplug.TypeDouble},
	{"fault", sparkplug.TypeBoolean},
}

// metricIndex finds a device metric by name.
func metricIndex(name string) int {
	for i, m := range deviceMetrics {
		if m.name == name {
			return i
		}
	}
	return -1
}

// spTopic is a Sparkplug B topic: spBv1.0/group/type/edge[/device].
func spTopic(group, typ, edge, device string) string {
	t := sparkplug.Namespace + "/" + group + "/" + typ + "/" + edge
	if device != "" {
		t += "/" + device
	}
	return t
}

// spDevice is one machine of an edge node.
type spDevice struct {
	id    string // "machine{m}"
	base  uint64 // alias of its first metric minus one
	model *model // owned by the node's loop
}

// spInbound is a command message handed from paho's router to the node's
// loop.
type spInbound struct {
	topic   string
	payload []byte
}

// edgeNode is one line in Sparkplug B mode: an edge node with its
// devices. Everything but the inbound queue and the connection handle
// is owned by its loop goroutine, which connects, publishes (so seq
// numbers go out in order) and applies commands.
type edgeNode struct {
	sim     *Simulator
	group   string
	id      string
	log     *slog.Logger
	devices []*spDevice
	rng     *rand.Rand     // simulated drops
	inbound chan spInbound // bounded; overflow is logged and dropped
	client  mqtt.Client    // the current session's client
	bdSeq   uint64         // the current session's birth/death sequence
	seq     uint64         // the next message's seq (0-255)
	started bool           // a session was made before
	retry   time.Time      // earliest next reconnect attempt
	connMu  sync.Mutex     // guards conn, set by paho's dialer
	conn    *dropConn
}

func (s *Simulator) newEdgeNode(line int) *edgeNode {
	n := &edgeNode{
		sim:     s,
		group:   s.cfg.Site,
		id:      "line" + strconv.Itoa(line),
		rng:     rand.New(rand.NewPCG(s.cfg.Seed, uint64(line)<<32|0xb1d)),
		inbound: make(chan spInbound, 64),
		bdSeq:   255, // the first session's is 0
	}
	n.log = s.log.With("edge_node", n.id)
	for mi := 1; mi <= s.cfg.Machines; mi++ {
		index := (line-1)*s.cfg.Machines + mi - 1 // as in JSON mode: same seed, same machine
		n.devices = append(n.devices, &spDevice{
			id: "machine" + strconv.Itoa(mi), base: uint64(100 * mi), model: newModel(s.cfg, index),
		})
	}
	return n
}

// runSparkplug connects every edge node, then runs them until ctx ends.
func (s *Simulator) runSparkplug(ctx context.Context) error {
	nodes := make([]*edgeNode, 0, s.cfg.Lines)
	for line := 1; line <= s.cfg.Lines; line++ {
		n := s.newEdgeNode(line)
		if err := n.connect(ctx); err != nil {
			for _, o := range nodes {
				o.disconnect()
			}
			return err
		}
		nodes = append(nodes, n)
	}
	s.log.Info("edge nodes connected", "edge_nodes", len(nodes), "machines", s.cfg.Lines*s.cfg.Machines,
		"addr", s.cfg.Addr, "group", s.cfg.Site)
	var wg sync.WaitGroup
	for i, n := range nodes {
		offset := time.Duration(i) * s.cfg.Interval / time.Duration(len(nodes))
		wg.Go(func() { n.run(ctx, offset) })
	}
	wg.Wait()
	return nil
}

// run publishes every device's data once per interval and applies
// commands until ctx ends, then says goodbye with an NDEATH.
func (n *edgeNode) run(ctx context.Context, offset time.Duration) {
	defer n.disconnect()
	select {
	case <-time.After(offset):
	case <-ctx.Done():
		return
	}
	t := time.NewTicker(n.sim.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case in := <-n.inbound:
			n.handle(ctx, in)
		case <-t.C:
			n.tick(ctx)
		}
	}
}

// connect starts a new session: a new client whose will is the NDEATH of
// the next bdSeq, the command subscriptions, then the births.
func (n *edgeNode) connect(ctx context.Context) error {
	cfg := n.sim.cfg
	bdSeq := (n.bdSeq + 1) % 256
	death, err := (&sparkplug.Message{Timestamp: nowMs(), Metrics: []sparkplug.OutMetric{
		{Name: metricBdSeq, Datatype: sparkplug.TypeInt64, Value: bdSeq},
	}}).Marshal()
	if err != nil {
		return fmt.Errorf("encoding NDEATH: %w", err)
	}
	opts := mqtt.NewClientOptions().
		AddBroker("tcp://"+cfg.Addr).
		SetClientID(fmt.Sprintf("sluice-sim-%s-l%s", cfg.Site, n.id[len("line"):])).
		SetCleanSession(true). // Sparkplug 3.0 with MQTT 3.1.1: clean sessions
		SetAutoReconnect(false).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetKeepAlive(30*time.Second).
		SetBinaryWill(spTopic(n.group, sparkplug.NDEATH, n.id, ""), death, 1, false).
		SetCustomOpenConnectionFn(n.dial).
		SetDefaultPublishHandler(n.onMessage)
	if cfg.Username != "" {
		opts.SetUsername(cfg.Username).SetPassword(cfg.Password)
	}
	c := mqtt.NewClient(opts)
	if err := wait(ctx, c.Connect(), cfg.ConnectTimeout); err != nil {
		return fmt.Errorf("connecting edge node %s to %s: %w", n.id, cfg.Addr, err)
	}
	subs := map[string]byte{
		spTopic(n.group, sparkplug.NCMD, n.id, ""):  1,
		spTopic(n.group, sparkplug.DCMD, n.id, "+"): 1,
	}
	if err := wait(ctx, c.SubscribeMultiple(subs, n.onMessage), cfg.PublishTimeout); err != nil {
		c.Disconnect(0)
		return fmt.Errorf("subscribing edge node %s to its commands: %w", n.id, err)
	}
	n.client, n.bdSeq = c, bdSeq
	if n.started {
		n.sim.reconnects.Add(1)
		n.log.Info("reconnected", "bd_seq", bdSeq)
	}
	n.started = true
	n.birth(ctx)
	return nil
}

// wait waits for tok, bounded by d and ctx.
func wait(ctx context.Context, tok mqtt.Token, d time.Duration) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return errors.New("timed out")
	}
}

// dial opens the TCP connection and remembers it so drop can cut it.
func (n *edgeNode) dial(u *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	d := net.Dialer{Timeout: o.ConnectTimeout}
	nc, err := d.Dial("tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", u.Host, err)
	}
	dc := &dropConn{Conn: nc}
	n.connMu.Lock()
	n.conn = dc
	n.connMu.Unlock()
	return dc, nil
}

// drop cuts the connection without DISCONNECT: the broker publishes the
// will, the NDEATH of this session's bdSeq. The next tick reconnects.
func (n *edgeNode) drop() {
	n.log.Info("dropping connection")
	n.connMu.Lock()
	if n.conn != nil {
		n.conn.drop()
	}
	n.connMu.Unlock()
}

// disconnect ends the session cleanly: an NDEATH first, as the broker
// sends no will after a DISCONNECT.
func (n *edgeNode) disconnect() {
	if n.client == nil || !n.client.IsConnectionOpen() {
		return
	}
	death, _ := (&sparkplug.Message{Timestamp: nowMs(), Metrics: []sparkplug.OutMetric{
		{Name: metricBdSeq, Datatype: sparkplug.TypeInt64, Value: n.bdSeq},
	}}).Marshal() // an int always encodes
	n.client.Publish(spTopic(n.group, sparkplug.NDEATH, n.id, ""), 1, false, death).WaitTimeout(n.sim.cfg.PublishTimeout)
	n.client.Disconnect(250)
}

// online reports whether the node has a session, starting a new one (at
// most once a second) when the last was lost.
func (n *edgeNode) online(ctx context.Context) bool {
	if n.client != nil && n.client.IsConnectionOpen() {
		return true
	}
	if time.Now().Before(n.retry) {
		return false
	}
	n.retry = time.Now().Add(time.Second)
	if n.client != nil {
		n.client.Disconnect(0) // release the lost session's client
	}
	if err := n.connect(ctx); err != nil {
		if ctx.Err() == nil {
			n.log.Debug("reconnecting", "err", err)
		}
		return false
	}
	return true
}

// birth publishes the NBIRTH (seq 0, this session's bdSeq) and every
// device's DBIRTH with each metric's name, alias, datatype and value.
func (n *edgeNode) birth(ctx context.Context) {
	n.seq = 0
	ts := nowMs()
	n.publish(ctx, spTopic(n.group, sparkplug.NBIRTH, n.id, ""), &sparkplug.Message{Timestamp: ts, Metrics: []sparkplug.OutMetric{
		{Name: metricBdSeq, Datatype: sparkplug.TypeInt64, Value: n.bdSeq},
		{Name: metricRebirth, Alias: rebirthAlias, HasAlias: true, Datatype: sparkplug.TypeBoolean, Value: false},
	}})
	for _, d := range n.devices {
		ms := d.metrics(d.model.current(), true)
		n.publish(ctx, spTopic(n.group, sparkplug.DBIRTH, n.id, d.id), &sparkplug.Message{Timestamp: ts, Metrics: ms})
	}
}

// metrics lists the device's metrics for sample s: with names and
// datatypes for a birth, by alias only for data.
func (d *spDevice) metrics(s Sample, birth bool) []sparkplug.OutMetric {
	values := []any{s.Temp, s.Vibration, uint64(s.SpindleRPM), string(s.State), s.Setpoint, s.State == StateFault}
	out := make([]sparkplug.OutMetric, len(deviceMetrics))
	for i, m := range deviceMetrics {
		out[i] = sparkplug.OutMetric{Alias: d.base + uint64(i) + 1, HasAlias: true, Value: values[i]}
		if birth {
			out[i].Name, out[i].Datatype = m.name, m.datatype
		}
	}
	return out
}

// publish sends one message with the node's next seq at QoS 0, as
// Sparkplug wants for births and data, and waits until it is written.
func (n *edgeNode) publish(ctx context.Context, topic string, msg *sparkplug.Message) {
	msg.Seq, msg.HasSeq = n.seq, true
	n.seq = (n.seq + 1) % 256
	b, err := msg.Marshal()
	if err != nil {
		n.log.Error("encoding sparkplug message", "topic", topic, "err", err)
		return
	}
	if err := wait(ctx, n.client.Publish(topic, 0, false, b), n.sim.cfg.PublishTimeout); err != nil {
		if ctx.Err() == nil {
			n.log.Debug("publishing", "topic", topic, "err", err)
		}
		n.sim.dropped.Add(1)
		return
	}
	n.sim.sent.Add(1)
}

// tick advances every device by one interval and publishes its DDATA.
func (n *edgeNode) tick(ctx context.Context) {
	cfg := n.sim.cfg
	if n.rng.Float64() < cfg.ReconnectRate*cfg.Interval.Seconds() {
		n.drop()
	}
	samples := make([]Sample, len(n.devices))
	for i, d := range n.devices {
		s, ev := d.model.step(cfg.Interval)
		samples[i] = s
		if ev.faultStarted {
			n.sim.faults.Add(1)
			n.sim.faulted.Add(1)
			n.log.Info("fault", "device", d.id, "vibration", s.Vibration)
		}
		if ev.faultCleared {
			n.sim.faulted.Add(-1)
			n.log.Info("fault cleared", "device", d.id)
		}
	}
	if !n.online(ctx) {
		n.sim.dropped.Add(int64(len(n.devices)))
		return
	}
	ts := nowMs()
	for i, d := range n.devices {
		n.publish(ctx, spTopic(n.group, sparkplug.DDATA, n.id, d.id), &sparkplug.Message{Timestamp: ts, Metrics: d.metrics(samples[i], false)})
	}
}

// onMessage runs on paho's router goroutine: it hands the command to the
// node's loop without blocking.
func (n *edgeNode) onMessage(_ mqtt.Client, msg mqtt.Message) {
	select {
	case n.inbound <- spInbound{topic: msg.Topic(), payload: msg.Payload()}:
	default:
		n.log.Warn("command queue full; command dropped", "topic", msg.Topic())
	}
}

func nowMs() uint64 { return uint64(time.Now().UnixMilli()) }
