// Package sparkplug decodes Sparkplug B (Eclipse Sparkplug 3.0) payloads:
// the protobuf wire format by hand, aliases resolved from the alias tables
// of NBIRTH and DBIRTH kept per edge node and device (and persisted so they
// survive a restart), sequence numbers checked, deaths tracked. See
// DESIGN.md.
package sparkplug

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RebirthRequest asks an edge node to publish its births again: Publish
// Payload to Topic at QoS 0, not retained.
type RebirthRequest struct {
	Group    string
	EdgeNode string
	// Reason is why: "unknown alias", "sequence gap" or "unknown node".
	Reason  string
	Topic   string
	Payload []byte
}

// RebirthFunc is called, outside any lock, on the goroutine decoding the
// offending message. It must not block: hand the publish to a bounded
// queue or a non-blocking broker publish.
type RebirthFunc func(RebirthRequest)

// Options configures a Decoder.
type Options struct {
	// StateDir holds the alias tables; "" keeps them in memory only.
	StateDir string
	// Rebirth enables rebirth requests.
	Rebirth bool
	// RebirthInterval is the least time between two requests to a node;
	// 0 means 10s.
	RebirthInterval time.Duration
	// OnRebirth receives rebirth requests; nil drops them (they are
	// still counted).
	OnRebirth RebirthFunc
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Registerer receives the metrics; nil exports none.
	Registerer prometheus.Registerer
	// Now defaults to time.Now.
	Now func() time.Time
}

// Decoder decodes Sparkplug B messages and keeps the edge nodes' state. It
// is safe for concurrent use.
type Decoder struct {
	opts Options
	log  *slog.Logger
	m    *metrics

	mu    sync.Mutex
	nodes map[nodeKey]*node
}

type nodeKey struct{ group, edge string }

// alias is one alias table entry.
type alias struct {
	Name     string `json:"name"`
	Datatype uint32 `json:"datatype"`
	boxed    any    // Name as an any, so resolving it allocates nothing
	// tmpl is what the metric map of a data metric carrying only this
	// alias starts with.
	tmpl *metricTemplate
}

// metricTemplate is the start of a data metric's map when the metric
// carries only its alias: name, datatype and alias, boxed once.
type metricTemplate struct {
	// m holds them as a map, cloned, never written.
	m                     map[string]any
	name, datatype, alias any
}

func newAlias(num uint64, name string, dt uint32) alias {
	t := &metricTemplate{name: name, datatype: typeNameValue(dt), alias: intValue(num)}
	t.m = map[string]any{"name": t.name, "datatype": t.datatype, "alias": t.alias}
	return alias{Name: name, Datatype: dt, boxed: name, tmpl: t}
}

// node is one edge node's state, guarded by its mu.
type node struct {
	mu       sync.Mutex
	loaded   bool // the state file was looked for
	born     bool // an NBIRTH was seen (or its tables loaded)
	online   bool
	seqKnown bool
	seq      uint64
	bdSeq    int64 // -1 when unknown
	aliases  map[uint64]alias
	devices  map[string]*device
	lastReq  time.Time
	// group and edge are the ids, boxed once for every decoded message.
	group, edge any
}

type device struct {
	online  bool
	aliases map[uint64]alias
	name    any // the device id, boxed once
}

// New builds a Decoder. It does no I/O: state files are read when a node
// is first seen.
func New(opts Options) (*Decoder, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RebirthInterval == 0 {
		opts.RebirthInterval = 10 * time.Second
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Decoder{opts: opts, log: opts.Logger, m: m, nodes: map[nodeKey]*node{}}, nil
}

// payloads recycles decoded payloads: their metrics are copied into the
// maps Decode returns.
var payloads sync.Pool

// Decode decodes a message on a Sparkplug topic into the map rules see:
// the topic's parts (group_id, message_type, edge_node_id, device_id),
// timestamp, seq, uuid, body and metrics, a list of maps with name, alias,
// timestamp, datatype and value (and is_historical, is_transient, is_null,
// metadata, properties when set). A STATE payload is JSON and decodes to
// host_id plus its fields.
func (d *Decoder) Decode(topicName string, payload []byte) (any, error) {
	return d.decode(topicName, payload, nil)
}

// decode is Decode, building the value in sc when not nil.
func (d *Decoder) decode(topicName string, payload []byte, sc *Scratch) (any, error) {
	t, err := ParseTopic(topicName)
	if err != nil {
		return nil, err
	}
	if t.Type == STATE {
		var st map[string]any
		if err := json.Unmarshal(payload, &st); err != nil {
			return nil, fmt.Errorf("decoding STATE payload: %w", err)
		}
		st["message_type"], st["host_id"] = STATE, t.HostID
		return st, nil
	}
	p, _ := payloads.Get().(*Payload)
	if p == nil {
		p = &Payload{}
	}
	defer func() {
		clear(p.Metrics) // drop references into this message
		*p = Payload{Metrics: p.Metrics[:0]}
		payloads.Put(p)
	}()
	if err := p.decode(payload); err != nil {
		return nil, err
	}
	d.m.message(t.Type)
	var s *slab
	if sc != nil {
		s = sc.slab(boxesOf(p))
	} else {
		s = newSlab(boxesOf(p))
	}
	n := d.node(t.Group, t.EdgeNode)
	n.mu.Lock()
	out, req, err := d.apply(n, t, p, s)
	n.mu.Unlock()
	if req != "" {
		d.requestRebirth(t, req)
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// node returns the state of an edge node, loading it on first sight.
func (d *Decoder) node(group, edge string) *node {
	k := nodeKey{group, edge}
	d.mu.Lock()
	n := d.nodes[k]
	if n == nil {
		n = &node{bdSeq: -1, devices: map[string]*device{}, group: group, edge: edge}
		d.nodes[k] = n
	}
	d.mu.Unlock()
	n.mu.Lock()
	if !n.loaded {
		n.loaded = true
		if d.opts.StateDir != "" {
			if err := d.load(group, edge, n); err != nil {
				d.log.Warn("loading sparkplug alias tables", "group", group, "edge_node", edge, "error", err)
			}
		}
	}
	n.mu.Unlock()
	return n
}

// apply updates n from one message and builds its decoded form. It
// returns the reason to request a rebirth, if one is needed. Values are
// boxed into s.
func (d *Decoder) apply(n *node, t Topic, p *Payload, s *slab) (map[string]any, string, error) {
	var rebirth string
	switch t.Type {
	case NBIRTH:
		n.born, n.seqKnown, n.seq = true, p.HasSeq, p.Seq
		d.setOnline(n, nil, true)
		for _, dv := range n.devices {
			d.setOnline(n, dv, false)
		}
		n.devices = map[string]*device{}
		n.aliases = birthAliases(p)
		n.bdSeq = bdSeq(p)
		n.lastReq = time.Time{}
		d.persist(t, n)
	case NDEATH:
		if bs := bdSeq(p); bs >= 0 && n.bdSeq >= 0 && bs != n.bdSeq {
			d.m.staleDeaths.Inc() // the death of an earlier session
			break
		}
		d.setOnline(n, nil, false)
		for _, dv := range n.devices {
			d.setOnline(n, dv, false)
		}
		n.seqKnown = false
	case NCMD, DCMD:
		// Commands go to the node: no sequence, no state.
	default:
		rebirth = d.checkSeq(n, p)
		if !n.born {
			rebirth = "unknown node"
		}
		if t.Type == DBIRTH {
			dv := n.devices[t.Device]
			if dv == nil {
				dv = &device{name: t.Device}
				n.devices[t.Device] = dv
			}
			dv.aliases = birthAliases(p)
			d.setOnline(n, dv, true)
			d.persist(t, n)
		} else if t.Type == DDEATH {
			if dv := n.devices[t.Device]; dv != nil {
				d.setOnline(n, dv, false)
			}
		}
	}
	var dev *device
	if t.Device != "" {
		dev = n.devices[t.Device]
	}
	metrics := s.list(len(p.Metrics))
	// Consecutive metrics with the payload's timestamp, or the previous
	// metric's, share its boxed value.
	var lastTS uint64
	var lastTSV, tsV any
	if p.HasTimestamp {
		tsV = s.int(p.Timestamp)
		lastTS, lastTSV = p.Timestamp, tsV
	}
	for i := range p.Metrics {
		m := &p.Metrics[i]
		name := noName
		if m.HasName {
			name = s.string(m.Name)
		}
		var tmpl *metricTemplate
		dt := m.Datatype
		if m.HasAlias && (!m.HasName || dt == TypeUnknown) {
			a, ok := lookup(n, dev, m.Alias)
			if ok {
				if !m.HasName {
					name = a.boxed
				}
				if dt == TypeUnknown {
					dt = a.Datatype
				}
				if !m.HasName && dt == a.Datatype {
					tmpl = a.tmpl
				}
			} else if !m.HasName && t.Type != NDEATH {
				d.m.unknownAliases.Inc()
				if rebirth == "" {
					rebirth = "unknown alias"
				}
			}
		}
		if m.HasTimestamp && (lastTSV == nil || m.Timestamp != lastTS) {
			lastTS, lastTSV = m.Timestamp, s.int(m.Timestamp)
		}
		mm, err := m.metricMap(s, name, dt, lastTSV, tmpl)
		if err != nil {
			return nil, rebirth, err
		}
		metrics[i] = mm
	}
	out := s.newMap(8) // one group: uuid and body, rare, grow it
	out["group_id"], out["message_type"], out["edge_node_id"] = n.group, boxedType(t.Type), n.edge
	if t.Device != "" {
		if dev != nil {
			out["device_id"] = dev.name
		} else {
			out["device_id"] = t.Device
		}
	}
	if p.HasTimestamp {
		out["timestamp"] = tsV
	}
	if p.HasSeq {
		out["seq"] = s.int(p.Seq)
	}
	if p.UUID != "" {
		out["uuid"] = s.string(p.UUID)
	}
	if p.Body != nil {
		out["body"] = p.Body
	}
	out["metrics"] = metrics
	return out, rebirth, nil
}

// noName is the name of a metric with neither a name nor a known alias.
var noName any = ""

// checkSeq checks a message's seq against the node's last one (0-255,
// wrapping) and returns "sequence gap" on a gap.
func (d *Decoder) checkSeq(n *node, p *Payload) string {
	if !p.HasSeq {
		return ""
	}
	gap := n.seqKnown && p.Seq != (n.seq+1)%256
	n.seq, n.seqKnown = p.Seq, true
	if gap {
		d.m.seqGaps.Inc()
		return "sequence gap"
	}
	return ""
}

func lookup(n *node, dev *device, a uint64) (alias, bool) {
	if dev != nil {
		if x, ok := dev.aliases[a]; ok {
			return x, true
		}
	}
	x, ok := n.aliases[a]
	return x, ok
}

// birthAliases builds the alias table of a birth certificate.
func birthAliases(p *Payload) map[uint64]alias {
	t := make(map[uint64]alias, len(p.Metrics))
	for i := range p.Metrics {
		m := &p.Metrics[i]
		if m.HasAlias && m.HasName {
			t[m.Alias] = newAlias(m.Alias, m.Name, m.Datatype)
		}
	}
	return t
}

// bdSeq returns the bdSeq metric of a birth or death, or -1.
func bdSeq(p *Payload) int64 {
	for i := range p.Metrics {
		if m := &p.Metrics[i]; m.Name == "bdSeq" && (m.Kind == 10 || m.Kind == 11) {
			return int64(m.num)
		}
	}
	return -1
}

// setOnline moves the node (dv nil) or device dv online or offline,
// keeping the gauges right.
func (d *Decoder) setOnline(n *node, dv *device, on bool) {
	cur, g := &n.online, d.m.nodesOnline
	if dv != nil {
		cur, g = &dv.online, d.m.devicesOnline
	}
	if *cur == on {
		return
	}
	*cur = on
	if on {
		g.Inc()
	} else {
		g.Dec()
	}
}

// requestRebirth calls OnRebirth unless disabled or too recent.
func (d *Decoder) requestRebirth(t Topic, reason string) {
	if !d.opts.Rebirth {
		return
	}
	n := d.node(t.Group, t.EdgeNode)
	now := d.opts.Now()
	n.mu.Lock()
	if !n.lastReq.IsZero() && now.Sub(n.lastReq) < d.opts.RebirthInterval {
		n.mu.Unlock()
		return
	}
	n.lastReq = now
	n.mu.Unlock()
	d.m.rebirths.WithLabelValues(reason).Inc()
	d.log.Info("requesting sparkplug rebirth", "group", t.Group, "edge_node", t.EdgeNode, "reason", reason)
	if d.opts.OnRebirth != nil {
		d.opts.OnRebirth(RebirthRequest{
			Group: t.Group, EdgeNode: t.EdgeNode, Reason: reason,
			Topic: RebirthTopic(t.Group, t.EdgeNode), Payload: RebirthPayload(uint64(now.UnixMilli())),
		})
	}
}

// Online reports whether an edge node (device "") or one of its devices
// is online: born and not dead since.
func (d *Decoder) Online(group, edge, device string) bool {
	d.mu.Lock()
	n := d.nodes[nodeKey{group, edge}]
	d.mu.Unlock()
	if n == nil {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if device == "" {
		return n.online
	}
	dv := n.devices[device]
	return dv != nil && dv.online
}
