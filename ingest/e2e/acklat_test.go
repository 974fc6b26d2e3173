package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/broker/packet"
)

// ackLatency measures publish→PUBACK latency: a paced MQTT 3.1.1 QoS 1
// publisher on the repository's codec, stamping each PUBLISH when it is
// written and each PUBACK when it is read. It is the measuring client of
// the added-latency benchmark; sluice bench reports end-to-end latency
// through subscribers, not ack latency.
type ackLatency struct {
	conn     net.Conn
	w        *bufio.Writer
	sentAt   [1 << 16]atomic.Int64 // unix ns by packet id
	inflight atomic.Int64
	done     chan struct{} // closed when readLoop returns

	mu       sync.Mutex
	lat      []time.Duration
	rejected int64
	readErr  error
}

// ackResult is the outcome of one paced run over several connections.
type ackResult struct {
	Sent, Acked, Rejected, Behind int64
	Rate                          float64 // acked per second
	P50, P90, P99, P999, Max      time.Duration
}

func (r ackResult) String() string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }
	return fmt.Sprintf("sent %d acked %d (%.0f/s) rejected %d behind %d; ack latency p50 %s p90 %s p99 %s p99.9 %s max %s",
		r.Sent, r.Acked, r.Rate, r.Rejected, r.Behind, ms(r.P50), ms(r.P90), ms(r.P99), ms(r.P999), ms(r.Max))
}

func dialAckLatency(addr, id string) (*ackLatency, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	a := &ackLatency{conn: nc, w: bufio.NewWriterSize(nc, 64<<10), done: make(chan struct{})}
	buf, err := packet.Append(nil, &packet.Connect{
		ProtocolName: []byte("MQTT"), Version: packet.Version311, CleanStart: true, KeepAlive: 60, ClientID: []byte(id),
	}, packet.Version311)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if _, err := nc.Write(buf); err != nil {
		nc.Close()
		return nil, err
	}
	r := packet.NewReader(nc, 0)
	r.SetVersion(packet.Version311)
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := r.ReadPacket()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("reading CONNACK: %w", err)
	}
	if ca, ok := p.(*packet.Connack); !ok || ca.ReasonCode != 0 {
		nc.Close()
		return nil, fmt.Errorf("CONNACK: %v", p)
	}
	nc.SetReadDeadline(time.Time{})
	go a.readLoop(r)
	return a, nil
}

func (a *ackLatency) readLoop(r *packet.Reader) {
	defer close(a.done)
	for {
		p, err := r.ReadPacket()
		if err != nil {
			a.mu.Lock()
			a.readErr = err
			a.mu.Unlock()
			return
		}
		ack, ok := p.(*packet.Ack)
		if !ok || ack.Kind != packet.PUBACK {
			continue
		}
		now := time.Now().UnixNano()
		sent := a.sentAt[ack.PacketID].Swap(0)
		a.inflight.Add(-1)
		a.mu.Lock()
		if ack.ReasonCode >= 0x80 {
			a.rejected++
		} else if sent != 0 {
			a.lat = append(a.lat, time.Duration(now-sent))
		}
		a.mu.Unlock()
	}
}

// measureAckLatency publishes at rate messages per second in total over
// conns connections for d, QoS 1, topic prefix/<i>, and returns the ack
// latency distribution. A connection never has more than window
// PUBLISHes unacknowledged; due messages that do not fit are skipped and
// counted as behind (the broker could not keep up with the rate). A rate
// of 1e8 or more means unpaced: each connection keeps its window full.
func measureAckLatency(ctx context.Context, addr, prefix string, conns int, rate float64, d time.Duration, size int) (ackResult, error) {
	const window = 100
	clients := make([]*ackLatency, conns)
	for i := range clients {
		c, err := dialAckLatency(addr, fmt.Sprintf("acklat-%d", i))
		if err != nil {
			return ackResult{}, err
		}
		clients[i] = c
		defer func() { c.conn.Close(); <-c.done }()
	}
	perConn := rate / float64(conns)
	var sent, behind atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	start := time.Now()
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			topic := []byte(fmt.Sprintf("%s/%d", prefix, i))
			pub := &packet.Publish{QoS: 1, Topic: topic}
			client := fmt.Sprintf("acklat-%d", i)
			var id uint16
			n := 0
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for seq := 1; ; {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				el := time.Since(start)
				if el >= d {
					return
				}
				due := int(min(el.Seconds()*perConn, 1e12)) - n
				for ; due > 0; due-- {
					if c.inflight.Load() >= window {
						// The broker has not kept up: skip what is due.
						if rate < 1e8 {
							behind.Add(int64(due))
						}
						n += due
						break
					}
					n++
					id++
					if id == 0 {
						id = 1
					}
					if c.sentAt[id].Load() != 0 {
						behind.Add(1) // id still in flight after 65535 more: skip it
						continue
					}
					pub.PacketID = id
					pub.Payload = jsonPayload(client, seq, size)
					seq++
					c.inflight.Add(1)
					c.sentAt[id].Store(time.Now().UnixNano())
					buf, err := packet.Append(c.w.AvailableBuffer(), pub, packet.Version311)
					if err == nil {
						_, err = c.w.Write(buf)
					}
					if err != nil {
						errs <- err
						return
					}
					sent.Add(1)
				}
				if err := c.w.Flush(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	// Let the last acks come in.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var open int64
		for _, c := range clients {
			open += c.inflight.Load()
		}
		if open == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	elapsed := time.Since(start)
	close(errs)
	var firstErr error
	for err := range errs {
		firstErr = errors.Join(firstErr, err)
	}
	var all []time.Duration
	res := ackResult{Sent: sent.Load(), Behind: behind.Load()}
	for _, c := range clients {
		c.mu.Lock()
		all = append(all, c.lat...)
		res.Rejected += c.rejected
		if c.readErr != nil && firstErr == nil && ctx.Err() == nil {
			firstErr = fmt.Errorf("reading acks: %w", c.readErr)
		}
		c.mu.Unlock()
	}
	res.Acked = int64(len(all))
	res.Rate = float64(res.Acked) / elapsed.Seconds()
	slices.Sort(all)
	q := func(f float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(f*float64(len(all))))]
	}
	res.P50, res.P90, res.P99, res.P999 = q(0.5), q(0.9), q(0.99), q(0.999)
	if len(all) > 0 {
		res.Max = all[len(all)-1]
	}
	return res, firstErr
}

// jsonPayload is a {"client","seq","pad"} payload of about size bytes.
func jsonPayload(client string, seq, size int) []byte {
	b := fmt.Appendf(nil, `{"client":%q,"seq":%d`, client, seq)
	if pad := size - len(b) - len(`,"pad":""}`); pad > 0 {
		b = append(b, `,"pad":"`...)
		b = append(b, strings.Repeat("x", pad)...)
		b = append(b, '"')
	}
	return append(b, '}')
}
