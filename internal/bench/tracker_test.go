package bench

import "testing"

// stamp builds the payload publisher index of run sends as message seq
// at sentAt, with the functions the publisher uses.
func stamp(run, index, seq uint32, sentAt int64) []byte {
	b := make([]byte, 40)
	writeHeader(b, run, index)
	stampSeq(b, seq, sentAt)
	return b
}

func TestTracker(t *testing.T) {
	type msg struct {
		run, pub, seq uint32
	}
	tests := []struct {
		name      string
		runID     uint32
		maxPubs   int
		msgs      []msg
		raw       [][]byte
		unique    int64
		dups      int64
		foreign   int64
		unstamped int64
		gaps      int64
		perPub    map[int]int64
	}{
		{
			name: "in order", runID: 7, maxPubs: 2,
			msgs:   []msg{{7, 0, 0}, {7, 0, 1}, {7, 1, 0}, {7, 0, 2}},
			unique: 4, perPub: map[int]int64{0: 3, 1: 1, 2: 0},
		},
		{
			name: "out of order across a word boundary", runID: 7, maxPubs: 1,
			msgs:   []msg{{7, 0, 130}, {7, 0, 2}, {7, 0, 64}, {7, 0, 63}},
			unique: 4, gaps: 131 - 4, perPub: map[int]int64{0: 4},
		},
		{
			name: "duplicates counted once", runID: 7, maxPubs: 1,
			msgs:   []msg{{7, 0, 5}, {7, 0, 5}, {7, 0, 5}, {7, 0, 6}},
			unique: 2, dups: 2, gaps: 5, perPub: map[int]int64{0: 2},
		},
		{
			name: "other run and unknown publisher are foreign", runID: 7, maxPubs: 2,
			msgs:   []msg{{8, 0, 0}, {7, 2, 0}, {7, 1, 0}},
			unique: 1, foreign: 2, gaps: 0, perPub: map[int]int64{1: 1},
		},
		{
			name: "any run locks on the first seen per publisher", runID: 0, maxPubs: 1 << 16,
			msgs:   []msg{{3, 0, 0}, {4, 0, 1}, {4, 1, 0}},
			unique: 2, foreign: 1, perPub: map[int]int64{0: 1, 1: 1},
		},
		{
			name: "payloads without a header", runID: 7, maxPubs: 1,
			raw:       [][]byte{nil, []byte("hello"), make([]byte, 100)},
			unstamped: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(tt.runID, tt.maxPubs)
			for _, m := range tt.msgs {
				tr.record(stamp(m.run, m.pub, m.seq, 1000), 1500)
			}
			for _, b := range tt.raw {
				tr.record(b, 1500)
			}
			if got := tr.recv.Load(); got != int64(len(tt.msgs)+len(tt.raw)) {
				t.Errorf("recv = %d, want %d", got, len(tt.msgs)+len(tt.raw))
			}
			if got := tr.unique.Load(); got != tt.unique {
				t.Errorf("unique = %d, want %d", got, tt.unique)
			}
			if got := tr.dups.Load(); got != tt.dups {
				t.Errorf("dups = %d, want %d", got, tt.dups)
			}
			if tr.foreign != tt.foreign || tr.unstamped != tt.unstamped {
				t.Errorf("foreign, unstamped = %d, %d, want %d, %d", tr.foreign, tr.unstamped, tt.foreign, tt.unstamped)
			}
			if got := tr.gaps(); got != tt.gaps {
				t.Errorf("gaps = %d, want %d", got, tt.gaps)
			}
			for pub, want := range tt.perPub {
				if got := tr.uniqueFrom(pub); got != want {
					t.Errorf("uniqueFrom(%d) = %d, want %d", pub, got, want)
				}
			}
			if tt.unique > 0 && (tr.hist.n != uint64(tt.unique) || tr.hist.max != 500) {
				t.Errorf("latency histogram n=%d max=%d, want n=%d max=500", tr.hist.n, tr.hist.max, tt.unique)
			}
		})
	}
}

func TestAllocIDSkipsIDsInFlight(t *testing.T) {
	p := &publisher{ackSig: make(chan struct{}, 1), c: &client{}}
	p.nextID = 65533
	a, b := p.allocID(), p.allocID()
	if a != 65534 || b != 65535 {
		t.Fatalf("ids %d, %d, want 65534, 65535", a, b)
	}
	if c := p.allocID(); c != 1 {
		t.Fatalf("after wrap id %d, want 1 (0 is never used)", c)
	}
	p.nextID = 65533 // 65534 and 65535 are still in flight
	if c := p.allocID(); c != 2 {
		t.Fatalf("id %d, want 2: ids in flight must be skipped", c)
	}
	p.inflight.Store(4)
	if err := p.complete(65535, 0); err != nil {
		t.Fatalf("complete: %v", err)
	}
	if err := p.complete(65535, 0); err == nil {
		t.Fatal("completing an id twice: no error")
	}
	if err := p.complete(1, 0x97); err == nil || p.rejected.Load() != 1 {
		t.Fatalf("rejected ack: err %v rejected %d", err, p.rejected.Load())
	}
	if got := p.inflight.Load(); got != 2 || p.acked.Load() != 1 {
		t.Fatalf("inflight %d acked %d, want 2 and 1", got, p.acked.Load())
	}
}

func TestMayDelayReads(t *testing.T) {
	pub := func(qos byte, inflight, window int32) *publisher {
		p := &publisher{qos: qos, window: window}
		p.inflight.Store(inflight)
		return p
	}
	tests := []struct {
		name string
		c    *client
		want bool
	}{
		{"idle connection", &client{}, true},
		{"QoS 0 subscriber", &client{sub: newTracker(1, 1), subQoS: 0}, true},
		{"QoS 1 subscriber: the broker waits for our acks", &client{sub: newTracker(1, 1), subQoS: 1}, false},
		{"QoS 2 subscriber", &client{sub: newTracker(1, 1), subQoS: 2}, false},
		{"QoS 0 publisher", &client{pub: pub(0, 0, 8)}, true},
		{"QoS 1 publisher with room in its window", &client{pub: pub(1, 7, 8)}, true},
		{"QoS 1 publisher with a full window", &client{pub: pub(1, 8, 8)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.mayDelayReads(); got != tt.want {
				t.Errorf("mayDelayReads() = %v, want %v", got, tt.want)
			}
		})
	}
}
