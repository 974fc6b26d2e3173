package spool

import (
	"slices"
	"time"
)

// Stats is a snapshot of the spool for metrics.
type Stats struct {
	// Segments is the number of segment files.
	Segments int
	// Bytes is the size of all segment files.
	Bytes int64
	// Tail is the offset of the oldest stored record.
	Tail uint64
	// Head is the offset the next committed record will get.
	Head uint64
	// QueuedBytes is framed record bytes accepted by Append but not yet
	// durable (bounded by Options.QueueBytes).
	QueuedBytes int64
	// BlockedAppends is the number of Append calls waiting for MaxBytes
	// space right now (PolicyBlock).
	BlockedAppends int64
	// Appended is the number of records committed since Open.
	Appended uint64
	// Fsyncs is the number of data fsyncs (one per committed batch).
	Fsyncs uint64
	// FsyncTime is the total time spent in data fsyncs.
	FsyncTime time.Duration
	// FsyncMax is the longest data fsync.
	FsyncMax time.Duration
	// FsyncBuckets counts data fsyncs by duration: FsyncBuckets[i] those
	// up to FsyncBucketBounds[i], the last one those above every bound.
	// It tells a slow disk from slow scheduling when acks are late.
	FsyncBuckets []uint64
	// AvgBatch is Appended / Fsyncs: records made durable per fsync.
	AvgBatch float64
	// Dropped is the number of records lost to cursors since Open, summed
	// over cursors (see Options.OnDrop).
	Dropped uint64
	// SegmentsDeleted counts segments removed by retention or drop_oldest.
	SegmentsDeleted uint64
	// Cursors has one entry per cursor, sorted by name.
	Cursors []CursorStats
}

// FsyncBucketBounds are the upper bounds of Stats.FsyncBuckets.
var FsyncBucketBounds = []time.Duration{
	250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 2 * time.Millisecond,
	4 * time.Millisecond, 8 * time.Millisecond, 16 * time.Millisecond, 32 * time.Millisecond,
	64 * time.Millisecond, 128 * time.Millisecond,
}

// fsyncBucket is the index in Stats.FsyncBuckets for an fsync of d.
func fsyncBucket(d time.Duration) int {
	for i, b := range FsyncBucketBounds {
		if d <= b {
			return i
		}
	}
	return len(FsyncBucketBounds)
}

// CursorStats describes one cursor.
type CursorStats struct {
	// Name is the cursor's name.
	Name string
	// Durable is the persisted position: where the cursor resumes after a
	// restart.
	Durable uint64
	// Acked is the lowest unacknowledged offset (persisted at the next
	// checkpoint).
	Acked uint64
	// ReadPos is the next offset Next delivers.
	ReadPos uint64
	// Lag is the distance from Acked to the head.
	Lag Lag
	// Dropped is the number of records this cursor lost since Open.
	Dropped uint64
}

// Lag is a distance between a position and the head of the spool.
type Lag struct {
	// Records is exact.
	Records uint64
	// Bytes is exact for whole segments and interpolated (by the
	// segment's average record size) inside the segment holding the
	// position, since offsets are not indexed by byte position.
	Bytes int64
}

// Stats returns a snapshot of the spool's state and counters.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		Segments:        len(s.segs),
		Bytes:           s.diskBytes,
		Tail:            s.tail(),
		Head:            s.head,
		QueuedBytes:     s.queueFrame,
		BlockedAppends:  s.blocked.Load(),
		Appended:        s.counters.appended,
		Fsyncs:          s.counters.fsyncs,
		FsyncTime:       s.counters.fsyncTime,
		FsyncMax:        s.counters.fsyncMax,
		FsyncBuckets:    slices.Clone(s.counters.fsyncBuckets[:]),
		Dropped:         s.counters.dropped,
		SegmentsDeleted: s.counters.deleted,
	}
	if st.Fsyncs > 0 {
		st.AvgBatch = float64(st.Appended) / float64(st.Fsyncs)
	}
	for _, c := range s.cursors {
		c.mu.Lock()
		cs := CursorStats{
			Name:    c.name,
			Durable: c.persisted,
			Acked:   c.base,
			ReadPos: c.readPos,
			Dropped: c.dropped,
		}
		c.mu.Unlock()
		cs.Lag = s.lagFrom(cs.Acked)
		st.Cursors = append(st.Cursors, cs)
	}
	slices.SortFunc(st.Cursors, func(a, b CursorStats) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return st
}

// Lag returns the distance from the cursor's acknowledged position to the
// head of the spool.
func (c *Cursor) Lag() Lag {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	c.mu.Lock()
	pos := c.base
	c.mu.Unlock()
	return c.s.lagFrom(pos)
}

// Position returns the cursor's durable (persisted) position.
func (c *Cursor) Position() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.persisted
}

// lagFrom computes the Lag of pos. Callers hold s.mu.
func (s *Spool) lagFrom(pos uint64) Lag {
	if pos >= s.head {
		return Lag{}
	}
	lag := Lag{Records: s.head - pos}
	for _, g := range s.segs {
		switch {
		case g.end() <= pos:
		case g.base >= pos:
			lag.Bytes += g.bytes - segHeaderSize
		case g.records > 0:
			data := g.bytes - segHeaderSize
			lag.Bytes += int64(float64(data) * float64(g.end()-pos) / float64(g.records))
		}
	}
	return lag
}
