package command

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestWALReplay: entries come back in order across segments; a segment
// ends at a torn or corrupt frame (an append a crash interrupted), and
// the later segments are still read.
func TestWALReplay(t *testing.T) {
	entry := func(id string) walEntry {
		return walEntry{Rec: record{Cmd: Command{ID: id}, Status: Status{ID: id, State: Accepted, History: []Transition{{State: Accepted}}}},
			Events: []seqEvent{{Seq: 7, Idx: 0}}}
	}
	cases := []struct {
		name    string
		damage  func(b []byte) []byte // applied to the first segment
		want    []string
		wantBad int
	}{
		{"clean", nil, []string{"a", "b", "c", "d"}, 0},
		{"torn frame", func(b []byte) []byte { return b[:len(b)-3] }, []string{"a", "c", "d"}, 1},
		{"torn header", func(b []byte) []byte { return append(b, 1, 2, 3) }, []string{"a", "b", "c", "d"}, 1},
		{"bad checksum", func(b []byte) []byte { b[len(b)-2] ^= 0xff; return b }, []string{"a", "c", "d"}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			w := &wal{dir: dir}
			for _, batch := range [][]string{{"a", "b"}, {"c", "d"}} {
				var es []walEntry
				for _, id := range batch {
					es = append(es, entry(id))
				}
				if err := w.switchSegment(); err != nil {
					t.Fatal(err)
				}
				if err := w.append(es); err != nil {
					t.Fatal(err)
				}
			}
			w.close()
			if c.damage != nil {
				p := filepath.Join(dir, segName(1))
				b, _ := os.ReadFile(p)
				if err := os.WriteFile(p, c.damage(b), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			next, bad, err := replayWAL(dir, func(e walEntry) error {
				if len(e.Events) != 1 || e.Events[0].Seq != 7 || e.Events[0].Idx != 0 {
					return fmt.Errorf("entry %s lost its events", e.Rec.Status.ID)
				}
				got = append(got, e.Rec.Status.ID)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) || bad != c.wantBad || next != 3 {
				t.Errorf("replayed %v (bad %d, next %d), want %v (bad %d, next 3)", got, bad, next, c.want, c.wantBad)
			}
		})
	}
}
