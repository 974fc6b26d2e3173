package bench

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/broker/packet"
)

// Payload header written by publishers (little endian):
//
//	[0:4)   magic "sbh1"
//	[4:8)   run id (random per process)
//	[8:12)  publisher index
//	[12:16) sequence number, from 0 per publisher
//	[16:24) send time, Unix nanoseconds
//
// Payloads shorter than headerSize carry no header: they are counted but
// give no latency, loss or duplicate figures.
const headerSize = 24

var headerMagic = [4]byte{'s', 'b', 'h', '1'}

// writeHeader writes the fixed part of the header into payload.
func writeHeader(payload []byte, runID, index uint32) {
	copy(payload, headerMagic[:])
	binary.LittleEndian.PutUint32(payload[4:], runID)
	binary.LittleEndian.PutUint32(payload[8:], index)
}

// stampSeq writes the per-message part of the header into payload.
func stampSeq(payload []byte, seq uint32, sentAt int64) {
	binary.LittleEndian.PutUint32(payload[12:], seq)
	binary.LittleEndian.PutUint64(payload[16:], uint64(sentAt))
}

// pacingTick is the shortest sleep of a paced publisher. Waking per
// message at high rates would cost one wakeup and one write per message;
// waking at most every pacingTick sends what is due as one batch. Every
// message is still stamped when it is written.
const pacingTick = 5 * time.Millisecond

// publisher drives one client's PUBLISH stream: rate pacing, the QoS 1/2
// window and packet identifiers. run is its only writer goroutine; the
// client's readLoop completes acknowledged packets.
type publisher struct {
	c        *client
	qos      byte
	window   int32
	rate     float64
	stamped  bool
	pkt      packet.Publish
	pktSize  int
	nextID   uint16
	inflight atomic.Int32
	ackSig   chan struct{} // buffered 1: an ack freed a window slot
	inUse    [1024]atomic.Uint64

	sent     atomic.Int64
	acked    atomic.Int64
	rejected atomic.Int64
}

// newPublisher prepares index's publisher on topic with a payload of size
// bytes stamped with runID.
func newPublisher(cfg *config, runID uint32, index int, topic string) *publisher {
	p := &publisher{
		qos:     cfg.qos,
		window:  int32(cfg.inflight),
		rate:    cfg.rate,
		stamped: cfg.size >= headerSize,
		ackSig:  make(chan struct{}, 1),
	}
	p.pkt.QoS = cfg.qos
	p.pkt.Topic = []byte(topic)
	p.pkt.Payload = make([]byte, cfg.size)
	if p.stamped {
		writeHeader(p.pkt.Payload, runID, uint32(index))
	}
	for i := headerSize; i < cfg.size; i++ {
		p.pkt.Payload[i] = 'x'
	}
	if cfg.qos > 0 {
		p.pkt.PacketID = 1 // Size needs the identifier present
	}
	p.pktSize = packet.Size(&p.pkt, cfg.version)
	return p
}

// bufSize is the write buffer a publishing client needs so that a whole
// batch of packets, and at least one packet, fits.
func (p *publisher) bufSize() int {
	return max(64<<10, 2*p.pktSize)
}

// attach binds p to its connection and caps the window at the broker's
// receive maximum.
func (p *publisher) attach(c *client) {
	p.c = c
	c.pub = p
	if int32(c.receiveMax) < p.window {
		p.window = int32(c.receiveMax)
	}
}

// run publishes until stop is closed or the connection fails, pacing to
// rate messages per second from start (if rate > 0). It flushes whenever
// it is about to wait, so batching never delays a message past the
// moment the publisher has nothing more to send.
func (p *publisher) run(stop <-chan struct{}, start time.Time) {
	defer p.flush()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var seq uint32
	for {
		select {
		case <-stop:
			return
		default:
		}
		if p.c.dead.Load() {
			return
		}
		if p.rate > 0 {
			due := start.Add(time.Duration(float64(seq) / p.rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				p.flush()
				timer.Reset(max(d, pacingTick))
				select {
				case <-timer.C:
				case <-stop:
					return
				}
				continue
			}
		}
		if p.qos > 0 {
			for p.inflight.Load() >= p.window {
				p.flush()
				select {
				case p.c.kick <- struct{}{}:
				default:
				}
				select {
				case <-p.ackSig:
				case <-stop:
					return
				}
				if p.c.dead.Load() {
					return
				}
			}
		}
		if !p.send(seq) {
			return
		}
		seq++
	}
}

// send stamps and writes message seq.
func (p *publisher) send(seq uint32) bool {
	if p.stamped {
		stampSeq(p.pkt.Payload, seq, time.Now().UnixNano())
	}
	if p.qos > 0 {
		p.pkt.PacketID = p.allocID()
		p.inflight.Add(1)
	}
	c := p.c
	c.mu.Lock()
	err := c.writeSized(&p.pkt, p.pktSize)
	c.mu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("writing PUBLISH: %w", err))
		return false
	}
	p.sent.Add(1)
	return true
}

// flush writes out whatever is buffered.
func (p *publisher) flush() {
	c := p.c
	c.mu.Lock()
	err := c.w.Flush()
	c.mu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("flushing PUBLISHes: %w", err))
	}
}

// allocID returns the next free packet identifier and marks it in use.
// A free one always exists because inflight < window <= 65535.
func (p *publisher) allocID() uint16 {
	for {
		p.nextID++
		if p.nextID == 0 {
			p.nextID = 1
		}
		w, bit := p.nextID>>6, uint64(1)<<(p.nextID&63)
		if p.inUse[w].Load()&bit == 0 {
			p.inUse[w].Or(bit)
			return p.nextID
		}
	}
}

// complete ends the flow of packet id (PUBACK, PUBCOMP, or a failing
// PUBREC) and frees its window slot. Called from readLoop.
func (p *publisher) complete(id uint16, code packet.ReasonCode) error {
	w, bit := id>>6, uint64(1)<<(id&63)
	if p.inUse[w].And(^bit)&bit == 0 {
		return fmt.Errorf("client %d: acknowledgement for packet id %d, which is not in flight", p.c.index, id)
	}
	p.inflight.Add(-1)
	p.wake()
	if code >= 0x80 {
		p.rejected.Add(1)
		return fmt.Errorf("client %d: broker rejected a PUBLISH with code 0x%02x", p.c.index, byte(code))
	}
	p.acked.Add(1)
	return nil
}

// wake lets a publisher waiting for a window slot re-check its state.
func (p *publisher) wake() {
	select {
	case p.ackSig <- struct{}{}:
	default:
	}
}
