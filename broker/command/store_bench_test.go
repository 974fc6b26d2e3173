package command

import (
	"fmt"
	"testing"
)

// BenchmarkStoreWrites measures the two writers on a batch like those of
// 1,000 commands/s: an accept flush of 2 new commands (one fdatasync)
// and a checkpoint of 50 delivered commands with 3 events each.
func BenchmarkStoreWrites(b *testing.B) {
	base := codecRecords()["full"]
	rec := func(i int) record {
		r := base
		r.Cmd.ID = fmt.Sprintf("commands-0-%d", i)
		r.Status.ID = r.Cmd.ID
		return r
	}
	b.Run("accept", func(b *testing.B) {
		w := &wal{dir: b.TempDir()}
		defer w.close()
		if err := w.switchSegment(); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			es := []walEntry{{Rec: rec(i), Events: []seqEvent{{Seq: uint64(i)}}}, {Rec: rec(i + 1), Events: []seqEvent{{Seq: uint64(i + 1)}}}}
			if err := w.append(es); err != nil {
				b.Fatal(err)
			}
			i += 2
			if w.size > walSegmentBytes {
				if err := w.switchSegment(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("checkpoint", func(b *testing.B) {
		d, err := openDB(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		defer d.close()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			bt := &batch{deleteBelow: uint64(3 * max(0, i-100))}
			for range 50 {
				bt.recs = append(bt.recs, rec(i))
				bt.created = append(bt.created, true)
				for k := range 3 {
					bt.events = append(bt.events, seqEvent{Seq: uint64(3*i + k), Idx: k + 1, Ev: Event{ID: bt.recs[len(bt.recs)-1].Cmd.ID}})
				}
				i++
			}
			if err := d.write(bt); err != nil {
				b.Fatal(err)
			}
		}
	})
}
