package bench

import (
	"encoding/binary"
	"sync/atomic"
)

// tracker accounts the messages one subscriber receives: per publisher a
// bitmap of the sequence numbers seen, which makes loss and duplicate
// counts exact whatever order messages arrive in, plus a latency
// histogram. record runs only on the subscriber's readLoop; the atomic
// counters may be read at any time, the rest once readLoop has ended.
type tracker struct {
	runID   uint32 // accept only this run; 0 = lock on the first run id seen per publisher
	maxPubs int    // publisher indexes at or above this are foreign
	pubs    []pubTrack
	hist    histogram

	recv      atomic.Int64 // every PUBLISH received
	unique    atomic.Int64 // stamped messages of ours, first delivery
	dups      atomic.Int64
	last      atomic.Int64 // Unix nanoseconds of the last receipt
	foreign   int64        // stamped by another run or an unknown publisher
	unstamped int64        // payload without a bench header
}

// pubTrack is what a tracker knows of one publisher.
type pubTrack struct {
	runID  uint32
	seen   []uint64 // bit seq set once seq was received
	unique int64
	span   int64 // highest sequence number seen + 1
}

// maxTrackedSeq bounds a bitmap (32 MiB) against a corrupt header.
const maxTrackedSeq = 1 << 28

func newTracker(runID uint32, maxPubs int) *tracker {
	return &tracker{runID: runID, maxPubs: maxPubs}
}

// record accounts one received payload at now (Unix nanoseconds).
func (t *tracker) record(payload []byte, now int64) {
	t.recv.Add(1)
	t.last.Store(now)
	if len(payload) < headerSize || [4]byte(payload[:4]) != headerMagic {
		t.unstamped++
		return
	}
	run := binary.LittleEndian.Uint32(payload[4:])
	pub := binary.LittleEndian.Uint32(payload[8:])
	seq := binary.LittleEndian.Uint32(payload[12:])
	sentAt := int64(binary.LittleEndian.Uint64(payload[16:]))
	if (t.runID != 0 && run != t.runID) || int64(pub) >= int64(t.maxPubs) || seq >= maxTrackedSeq {
		t.foreign++
		return
	}
	if int(pub) >= len(t.pubs) {
		t.pubs = append(t.pubs, make([]pubTrack, int(pub)+1-len(t.pubs))...)
	}
	pt := &t.pubs[pub]
	if pt.runID == 0 {
		pt.runID = run
	} else if pt.runID != run {
		t.foreign++
		return
	}
	w := int(seq >> 6)
	if w >= len(pt.seen) {
		pt.seen = append(pt.seen, make([]uint64, max(w+1-len(pt.seen), len(pt.seen)))...)
	}
	bit := uint64(1) << (seq & 63)
	if pt.seen[w]&bit != 0 {
		t.dups.Add(1)
		return
	}
	pt.seen[w] |= bit
	pt.unique++
	t.unique.Add(1)
	if int64(seq) >= pt.span {
		pt.span = int64(seq) + 1
	}
	t.hist.record(max(now-sentAt, 0))
}

// uniqueFrom reports how many distinct messages of publisher pub arrived.
func (t *tracker) uniqueFrom(pub int) int64 {
	if pub >= len(t.pubs) {
		return 0
	}
	return t.pubs[pub].unique
}

// gaps counts sequence numbers missing below the highest one seen, per
// publisher: the loss a subscriber can infer without knowing how many
// messages were sent.
func (t *tracker) gaps() int64 {
	var n int64
	for i := range t.pubs {
		n += t.pubs[i].span - t.pubs[i].unique
	}
	return n
}
