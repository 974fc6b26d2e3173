package broker

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/packet"
)

// benchConn dials and connects a 3.1.1 client, returning the raw socket.
func benchConn(b *testing.B, addr, id string) net.Conn {
	b.Helper()
	c := dialRaw(b, addr, packet.Version311)
	c.connect(&packet.Connect{ClientID: []byte(id), CleanStart: true})
	return c.nc
}

// countPublishes reads frames from r until n PUBLISH packets were seen or
// the connection fails, adding each to got.
func countPublishes(r io.Reader, n int64, got *atomic.Int64) {
	br := bufio.NewReaderSize(r, 64<<10)
	for got.Load() < n {
		h, err := br.ReadByte()
		if err != nil {
			return
		}
		var rem, shift int
		for {
			bt, err := br.ReadByte()
			if err != nil {
				return
			}
			rem |= int(bt&0x7f) << shift
			if bt < 0x80 {
				break
			}
			shift += 7
		}
		if _, err := br.Discard(rem); err != nil {
			return
		}
		if packet.Type(h>>4) == packet.PUBLISH {
			got.Add(1)
		}
	}
}

func subscribeRaw(b *testing.B, nc net.Conn, filter string) {
	b.Helper()
	buf, _ := packet.Append(nil, &packet.Subscribe{PacketID: 1, Subs: []packet.Subscription{{Filter: []byte(filter)}}}, packet.Version311)
	nc.Write(buf)
	var ack [5]byte
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(nc, ack[:]); err != nil {
		b.Fatalf("reading SUBACK: %v", err)
	}
	nc.SetReadDeadline(time.Time{})
}

// BenchmarkFanIn: publishers → one subscriber on '#', QoS 0, 200-byte
// payloads, over loopback. Reports delivered messages per second.
func BenchmarkFanIn(b *testing.B) {
	for _, pubs := range []int{1, 10} {
		b.Run(fmt.Sprintf("pubs=%d", pubs), func(b *testing.B) {
			_, addr := startServer(b, func(c *Config) { c.MaxBufferedBytes = 256 << 20 }, Options{})
			sub := benchConn(b, addr, "sub")
			subscribeRaw(b, sub, "#")
			frame, _ := packet.Append(nil, &packet.Publish{Topic: []byte("bench/in"), Payload: make([]byte, 200)}, packet.Version311)
			batch := make([]byte, 0, 64*len(frame))
			for i := 0; i < 64; i++ {
				batch = append(batch, frame...)
			}
			conns := make([]net.Conn, pubs)
			for i := range conns {
				conns[i] = benchConn(b, addr, fmt.Sprintf("pub%d", i))
			}
			total := int64(b.N)
			var got atomic.Int64
			done := make(chan struct{})
			go func() { defer close(done); countPublishes(sub, total, &got) }()
			b.ResetTimer()
			var wg sync.WaitGroup
			for i, nc := range conns {
				n := b.N / pubs
				if i == 0 {
					n += b.N % pubs
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for ; n >= 64; n -= 64 {
						nc.Write(batch)
					}
					nc.Write(batch[:n*len(frame)])
				}()
			}
			wg.Wait()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				b.Fatalf("delivered %d of %d", got.Load(), total)
			}
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "msgs/s")
			sub.Close()
		})
	}
}

// BenchmarkFanOut: one publisher → 100 subscribers, QoS 0, 200 bytes.
// Reports deliveries per second.
func BenchmarkFanOut(b *testing.B) {
	const subs = 100
	s, addr := startServer(b, func(c *Config) { c.MaxBufferedBytes = 64 << 20 }, Options{})
	total := int64(b.N)
	counts := make([]atomic.Int64, subs)
	var wg sync.WaitGroup
	conns := make([]net.Conn, subs)
	for i := range conns {
		conns[i] = benchConn(b, addr, fmt.Sprintf("sub%d", i))
		subscribeRaw(b, conns[i], "bench/#")
	}
	pub := benchConn(b, addr, "pub")
	frame, _ := packet.Append(nil, &packet.Publish{Topic: []byte("bench/out"), Payload: make([]byte, 200)}, packet.Version311)
	b.ResetTimer()
	for i, nc := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); countPublishes(nc, total, &counts[i]) }()
	}
	batch := make([]byte, 0, 64*len(frame))
	for i := 0; i < 64; i++ {
		batch = append(batch, frame...)
	}
	n := b.N
	for ; n >= 64; n -= 64 {
		pub.Write(batch)
	}
	pub.Write(batch[:n*len(frame)])
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(60 * time.Second):
		b.Fatalf("subscriber 0 got %d of %d; %+v", counts[0].Load(), total, s.Stats())
	}
	b.ReportMetric(float64(total*subs)/b.Elapsed().Seconds(), "deliveries/s")
	for _, nc := range conns {
		nc.Close()
	}
}

// Routing a QoS 0 message to many subscribers allocates nothing per
// subscriber: the encoding is shared and copied into their buffers.
func TestRouteAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	s, addr := startServer(t, nil, Options{})
	for i := 0; i < 20; i++ {
		c := dialRaw(t, addr, packet.Version311)
		c.connect(&packet.Connect{ClientID: []byte(fmt.Sprint("s", i)), CleanStart: true})
		subscribe(t, c, packet.Subscription{Filter: []byte("alloc/#")})
		go io.Copy(io.Discard, c.nc)
	}
	m := &Message{Topic: "alloc/x", Payload: make([]byte, 100), ReceivedAt: time.Now()}
	allocs := testing.AllocsPerRun(200, func() { s.route(m, "", false, nil) })
	if allocs > 1 {
		t.Errorf("route to 20 subscribers: %.1f allocations", allocs)
	}
}
