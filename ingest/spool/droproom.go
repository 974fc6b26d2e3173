package spool

import (
	"errors"
	"io"
	"os"
)

// makeRoom applies PolicyDropOldest before need more bytes are written:
// it deletes the oldest sealed segments until the spool fits in MaxBytes,
// moves every cursor that had not read them past them and reports the loss.
func (w *writer) makeRoom(need int64) {
	s := w.s
	var (
		removed     []uint64
		removedSegs []segment
		drops       []dropEvent
	)
	s.mu.Lock()
	unpublished := w.size - w.seg.bytes
	for s.diskBytes+unpublished+need > s.opts.MaxBytes && len(s.segs) > 1 {
		g := s.segs[0]
		s.segs = s.segs[1:]
		s.diskBytes -= g.bytes
		s.counters.deleted++
		removed = append(removed, g.base)
		removedSegs = append(removedSegs, *g)
		newTail := s.segs[0].base
		for _, c := range s.cursors {
			if lost := c.jumpTo(newTail); lost > 0 {
				drops = append(drops, dropEvent{cursor: c.name, records: lost, from: newTail - lost, to: newTail})
			}
		}
	}
	s.mu.Unlock()
	if len(removed) == 0 {
		return
	}
	if s.opts.OnDropRecord != nil && len(drops) > 0 {
		s.reportDroppedRecords(removedSegs, drops)
	}
	s.removeSegmentFiles(removed)
	for _, d := range drops {
		s.reportDrop(d.cursor, d.records, ReasonSpoolFull, nil)
	}
}

// dropEvent is one cursor's loss, reported after locks are released.
type dropEvent struct {
	cursor   string
	records  uint64
	from, to uint64 // the offsets lost: [from, to)
}

// reportDroppedRecords hands every record a cursor lost to
// Options.OnDropRecord, reading the segments before they are deleted, so
// the caller can account for each one by what it held.
func (s *Spool) reportDroppedRecords(segs []segment, drops []dropEvent) {
	for _, g := range segs {
		f, err := os.Open(segPath(s.dir, g.base))
		if err != nil {
			s.log.Error("reading dropped segment", "segment", segName(g.base), "error", err)
			continue
		}
		if _, err := f.Seek(segHeaderSize, io.SeekStart); err != nil {
			f.Close()
			s.log.Error("reading dropped segment", "segment", segName(g.base), "error", err)
			continue
		}
		off := g.base
		_, _, stop := scanValid(f, g.bytes-segHeaderSize, func(data []byte) {
			for _, d := range drops {
				if off >= d.from && off < d.to {
					s.opts.OnDropRecord(d.cursor, off, data, ReasonSpoolFull)
				}
			}
			off++
		})
		f.Close()
		if stop != nil {
			s.log.Error("reading dropped segment", "segment", segName(g.base), "error", stop)
		}
	}
}

// removeSegmentFiles deletes segment files already taken out of s.segs.
func (s *Spool) removeSegmentFiles(bases []uint64) {
	for _, base := range bases {
		if err := os.Remove(segPath(s.dir, base)); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Error("removing segment", "segment", segName(base), "error", err)
		}
	}
	if err := syncDir(s.dir); err != nil {
		s.log.Warn("syncing directory after segment removal", "error", err)
	}
}
