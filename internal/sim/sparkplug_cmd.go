package sim

import (
	"context"
	"fmt"

	"github.com/sluicehq/sluice/schemas/sparkplug"
)

// handle applies an NCMD or DCMD on the node's loop.
func (n *edgeNode) handle(ctx context.Context, in spInbound) {
	n.sim.commands.Add(1)
	t, err := sparkplug.ParseTopic(in.topic)
	if err != nil {
		n.log.Warn("command on an unexpected topic", "topic", in.topic, "err", err)
		return
	}
	p, err := sparkplug.DecodePayload(in.payload)
	if err != nil {
		n.log.Warn("decoding command", "topic", in.topic, "err", err)
		return
	}
	switch t.Type {
	case sparkplug.NCMD:
		n.nodeCommand(ctx, p)
	case sparkplug.DCMD:
		n.deviceCommand(ctx, t.Device, p)
	}
}

// nodeCommand obeys "Node Control/Rebirth" = true: births again, seq
// from 0, same bdSeq.
func (n *edgeNode) nodeCommand(ctx context.Context, p *sparkplug.Payload) {
	for i := range p.Metrics {
		m := &p.Metrics[i]
		if (m.HasName && m.Name == metricRebirth) || (!m.HasName && m.HasAlias && m.Alias == rebirthAlias) {
			if v, err := m.Value(sparkplug.TypeBoolean); err == nil && v == true {
				n.sim.rebirths.Add(1)
				n.log.Info("rebirth requested")
				if n.client != nil && n.client.IsConnectionOpen() {
					n.birth(ctx)
				}
				continue
			}
		}
		n.log.Warn("NCMD metric not supported (only Node Control/Rebirth = true)", "name", m.Name, "alias", m.Alias)
	}
}

// deviceCommand writes setpoint and/or state ("start", "stop") of a
// device, all or nothing, and reports the new values in a DDATA.
func (n *edgeNode) deviceCommand(ctx context.Context, id string, p *sparkplug.Payload) {
	var d *spDevice
	for _, x := range n.devices {
		if x.id == id {
			d = x
		}
	}
	if d == nil {
		n.log.Warn("DCMD for an unknown device", "device", id)
		return
	}
	c, err := d.command(p)
	if err == nil {
		_, err = d.model.apply(c)
	}
	if err != nil {
		n.log.Warn("command refused", "device", id, "err", err)
		return
	}
	n.log.Info("command applied", "device", id)
	if n.client == nil || !n.client.IsConnectionOpen() {
		return
	}
	all := d.metrics(d.model.current(), false)
	report := []sparkplug.OutMetric{all[metricIndex("state")], all[metricIndex("setpoint")]}
	n.publish(ctx, spTopic(n.group, sparkplug.DDATA, n.id, d.id), &sparkplug.Message{Timestamp: nowMs(), Metrics: report})
}

// command reads a DCMD's metrics, by name or by the device's aliases.
func (d *spDevice) command(p *sparkplug.Payload) (Command, error) {
	var c Command
	if len(p.Metrics) == 0 {
		return c, fmt.Errorf("DCMD has no metrics")
	}
	for i := range p.Metrics {
		m := &p.Metrics[i]
		name := m.Name
		if !m.HasName && m.HasAlias && m.Alias > d.base && m.Alias <= d.base+uint64(len(deviceMetrics)) {
			name = deviceMetrics[m.Alias-d.base-1].name
		}
		dt := m.Datatype
		if idx := metricIndex(name); dt == sparkplug.TypeUnknown && idx >= 0 {
			dt = deviceMetrics[idx].datatype
		}
		v, err := m.Value(dt)
		if err != nil {
			return c, fmt.Errorf("metric %q: %w", name, err)
		}
		switch name {
		case "setpoint":
			f, ok := number(v)
			if !ok {
				return c, fmt.Errorf("setpoint %v (%T) is not a number", v, v)
			}
			c.Setpoint = &f
		case "state":
			s, ok := v.(string)
			if !ok {
				return c, fmt.Errorf("state %v (%T) is not a string", v, v)
			}
			c.State = s
		default:
			return c, fmt.Errorf("metric %q (alias %d) is not writable: write setpoint or state", name, m.Alias)
		}
	}
	return c, nil
}

// number converts a decoded numeric metric value to float64.
func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint32:
		return float64(x), true
	case int:
		return float64(x), true
	}
	return 0, false
}
