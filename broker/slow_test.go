package broker

import (
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/packet"
)

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// A subscriber that stops reading must not block publishers, slow other
// subscribers or grow memory without bound.
func TestSlowSubscriberBoundedMemory(t *testing.T) {
	for _, qos := range []byte{0, 1} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			s, addr := startServer(t, func(c *Config) {
				c.MaxBufferedBytes = 64 << 10
				c.MaxQueuedMessages = 500
			}, Options{})

			slow := dialRaw(t, addr, packet.Version311)
			slow.nc.(*net.TCPConn).SetReadBuffer(4096)
			slow.connect(&packet.Connect{ClientID: []byte("slow"), CleanStart: true})
			subscribe(t, slow, packet.Subscription{Filter: []byte("load/#"), QoS: qos})
			// slow never reads again.

			fast := dialRaw(t, addr, packet.Version311)
			fast.connect(&packet.Connect{ClientID: []byte("fast"), CleanStart: true})
			subscribe(t, fast, packet.Subscription{Filter: []byte("load/#"), QoS: qos})
			var got atomic.Int64
			readerDone := make(chan struct{})
			go func() {
				defer close(readerDone)
				for {
					fast.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
					p, err := fast.r.ReadPacket()
					if err != nil {
						return
					}
					if pb, ok := p.(*packet.Publish); ok {
						got.Add(1)
						if pb.QoS == 1 {
							b, _ := packet.Append(nil, &packet.Ack{Kind: packet.PUBACK, PacketID: pb.PacketID}, packet.Version311)
							fast.nc.Write(b)
						}
					}
				}
			}()

			before := heapInUse()
			payload := make([]byte, 1024)
			const batches, perBatch = 600, 32 // ~19 MB in total, each batch fits the buffer
			start := time.Now()
			for b := 0; b < batches; b++ {
				for i := 0; i < perBatch; i++ {
					if err := s.Publish(&Message{Topic: "load/x", QoS: qos, Payload: payload}); err != nil {
						t.Fatal(err)
					}
				}
				want := int64((b + 1) * perBatch)
				for deadline := time.Now().Add(5 * time.Second); got.Load() < want; time.Sleep(time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("fast subscriber got %d of %d", got.Load(), want)
					}
				}
			}
			elapsed := time.Since(start)
			after := heapInUse()
			st := s.Stats()
			dropped := st.Dropped["buffer_full"] + st.Dropped["queue_full"]
			t.Logf("published %d in %v; heap %d -> %d KiB; dropped %v", batches*perBatch, elapsed, before>>10, after>>10, st.Dropped)
			if dropped < batches*perBatch/2 {
				t.Errorf("only %d messages dropped for the stalled subscriber", dropped)
			}
			if growth := int64(after) - int64(before); growth > 8<<20 {
				t.Errorf("heap grew by %d KiB with a stalled subscriber", growth>>10)
			}
			fast.nc.Close()
			<-readerDone
		})
	}
}

// A subscriber that reads, only slower than the publisher, paces QoS 0
// publishers (max_publisher_wait) instead of losing messages.
func TestPublisherPacedByLiveSubscriber(t *testing.T) {
	for _, wait := range []time.Duration{0, 50 * time.Millisecond} {
		t.Run(fmt.Sprint(wait), func(t *testing.T) {
			s, addr := startServer(t, func(c *Config) {
				c.MaxBufferedBytes = 16 << 10
				c.MaxPublisherWait = wait
			}, Options{})
			sub := dialRaw(t, addr, packet.Version311)
			sub.connect(&packet.Connect{ClientID: []byte("sub"), CleanStart: true})
			subscribe(t, sub, packet.Subscription{Filter: []byte("pace")})
			var got atomic.Int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					sub.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
					p, err := sub.r.ReadPacket()
					if err != nil {
						return
					}
					if _, ok := p.(*packet.Publish); ok {
						got.Add(1)
					}
				}
			}()
			const n = 5000
			payload := make([]byte, 1024)
			for i := 0; i < n; i++ {
				s.Publish(&Message{Topic: "pace", Payload: payload})
			}
			<-done
			dropped := s.Stats().Dropped["buffer_full"]
			t.Logf("wait %v: delivered %d, dropped %d", wait, got.Load(), dropped)
			if got.Load()+int64(dropped) != n {
				t.Errorf("delivered %d + dropped %d != %d", got.Load(), dropped, n)
			}
			if wait > 0 && dropped != 0 {
				t.Errorf("dropped %d for a reading subscriber", dropped)
			}
		})
	}
}
