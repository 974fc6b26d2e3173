package bench

import (
	"bufio"
	"io"
	"testing"

	"github.com/sluicehq/sluice/broker/packet"
)

// The per-message paths must not allocate: the client shares the CPU
// with the broker under test.

func newDiscardPublisher(qos byte) *publisher {
	cfg := &config{qos: qos, inflight: 65535, size: 200, version: packet.Version311}
	p := newPublisher(cfg, 1, 0, "bench/0")
	c := &client{version: cfg.version, w: bufio.NewWriterSize(io.Discard, p.bufSize()), receiveMax: 65535}
	p.attach(c)
	return p
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	tests := []struct {
		name string
		fn   func() func()
	}{
		{"publish QoS 0", func() func() {
			p := newDiscardPublisher(0)
			var seq uint32
			return func() { p.send(seq); seq++ }
		}},
		{"publish QoS 1 and complete", func() func() {
			p := newDiscardPublisher(1)
			var seq uint32
			return func() {
				p.send(seq)
				seq++
				_ = p.complete(p.pkt.PacketID, packet.Success)
			}
		}},
		{"track a delivery", func() func() {
			tr := newTracker(1, 1)
			payload := stamp(1, 0, 0, 0)
			tr.record(stamp(1, 0, 1<<16, 0), 1) // bitmap grown in advance
			var seq uint32
			return func() { stampSeq(payload, seq%(1<<16), 5); tr.record(payload, 10); seq++ }
		}},
		{"encode an ack", func() func() {
			c := &client{version: packet.Version5, w: bufio.NewWriterSize(io.Discard, 4096)}
			return func() { _ = c.write(c.ackPacket(packet.PUBACK, 7)) }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(1000, tt.fn()); n != 0 {
				t.Errorf("%v allocations per message, want 0", n)
			}
		})
	}
}

func BenchmarkPublishQoS0(b *testing.B) {
	p := newDiscardPublisher(0)
	b.ReportAllocs()
	var seq uint32
	for b.Loop() {
		p.send(seq)
		seq++
	}
}

func BenchmarkTrackerRecord(b *testing.B) {
	tr := newTracker(1, 1)
	payload := stamp(1, 0, 0, 0)
	b.ReportAllocs()
	var seq uint32
	for b.Loop() {
		stampSeq(payload, seq%(1<<20), 5)
		tr.record(payload, 10)
		seq++
	}
}
