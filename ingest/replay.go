package ingest

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Replay re-drives a dead-lettered record: its single output is spooled
// again (whatever the durability mode, so the replay itself is durable)
// and the entry is marked replayed once the spool has it. The sink's
// accounting counts the replay as a new received record.
func (p *Pipeline) Replay(ctx context.Context, id uint64) error {
	if !p.open.Load() || p.closing.Load() {
		return fmt.Errorf("replaying dead letter %d: pipeline not running", id)
	}
	e, err := p.dlq.Get(id)
	if err != nil {
		return fmt.Errorf("replaying dead letter %d: %w", id, err)
	}
	if e.Replayed {
		return fmt.Errorf("replaying dead letter %d: already replayed", id)
	}
	rec, err := decodeRecord(e.Record)
	if err != nil {
		return fmt.Errorf("replaying dead letter %d: %w", id, err)
	}
	for i := range rec.outputs {
		o := &rec.outputs[i]
		o.Err = ""
		if p.runners[o.Sink] == nil {
			return fmt.Errorf("replaying dead letter %d: sink %q is not configured", id, o.Sink)
		}
	}
	// Count before appending: the feeder may deliver the record before
	// AppendSync returns.
	for i := range rec.outputs {
		f := p.acct.flow(rec.outputs[i].Rule, rec.outputs[i].Sink)
		f.received.Add(1)
		f.buffered.Add(1)
	}
	if _, err := p.spool.AppendSync(ctx, appendRecord(nil, &rec.msg, rec.outputs)); err != nil {
		for i := range rec.outputs {
			p.acct.flow(rec.outputs[i].Rule, rec.outputs[i].Sink).drop(DropStoreFailed, 1)
		}
		return fmt.Errorf("replaying dead letter %d: %w", id, err)
	}
	if err := p.dlq.MarkReplayed(id); err != nil {
		return fmt.Errorf("replaying dead letter %d: %w", id, err)
	}
	return nil
}

// SinkStats returns the runner's view of every sink.
func (p *Pipeline) SinkStats() []SinkStats {
	out := make([]SinkStats, 0, len(p.runners))
	for name, r := range p.runners {
		st := r.stats()
		if p.open.Load() { // Open fills p.cursors before setting open
			lag := p.cursors[name].Lag()
			st.LagRecords, st.LagBytes = lag.Records, lag.Bytes
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b SinkStats) int { return strings.Compare(a.Name, b.Name) })
	return out
}
