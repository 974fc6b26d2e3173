package conformance

import (
	"bytes"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker/packet"
	"github.com/sluicehq/sluice/internal/mqtttest"
)

const (
	floodPayload = 64 << 10 // bytes per message
	floodTotal   = 50 << 20 // bytes pushed in all
	floodWindow  = 8        // QoS 1 publishes in flight
	// heapBound is the most the broker's live heap may grow while a
	// stalled subscriber holds 50 MB of undelivered messages. The broker
	// under test is configured to queue at most 2 MiB plus 16 in flight
	// (1 MiB) per session, so anything near 50 MB means an unbounded queue.
	heapBound = 24 << 20
)

// TestSlowReader pushes 50 MB at a subscriber that has stopped reading.
// The broker must keep serving a healthy subscriber of the same messages,
// and (Sluice in-process) its heap must not grow with what the stalled one
// cannot take. It runs serially so MemStats see only this test.
func TestSlowReader(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			name := "§4.13 MQTT-4.5.0-1 a stalled subscriber neither blocks other subscribers nor grows broker memory without bound"
			record(t, name)
			t.Run(name, func(t *testing.T) {
				if reason, ok := tg.deviations[name]; ok {
					t.Skipf("%s deviates: %s", tg.name, reason)
				}
				slowReader(t, tg)
			})
		})
	}
}

func slowReader(t *testing.T, tg *target) {
	o := opts{MaxQueuedBytes: 2 << 20, MaxQueuedMessages: 1000, MaxInflight: 16}
	if tg == mosquittoTarget {
		// mosquitto counts in-flight bytes against max_queued_bytes and
		// then drops QoS 1 for the healthy client too; its memory is not
		// measured here, so leave its queue at the defaults.
		o = opts{MaxInflight: 16}
	}
	s := tg.start(t, o)

	stalled := dialSmallBuffer(t, s.addr)
	stalled.SendRaw(v3Connect(uniq("stalled")))
	mqtttest.ExpectType[*packet.Connack](stalled, wait)
	rawSub(t, stalled, 1, "flood/#", 1)
	// From here on the stalled client never reads again.

	healthy := dialRaw(t, s, packet.Version311, uniq("healthy"))
	// QoS 1 end to end for the healthy path: a broker may drop QoS 0
	// under load, but not acknowledged QoS 1 within its queue limits.
	rawSub(t, healthy, 1, "flood/#", 1)
	var received atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			f, err := healthy.ReadFrame(10 * time.Second)
			if err != nil {
				return
			}
			if f[0]>>4 == byte(packet.PUBLISH) {
				received.Add(1)
				// Packet id follows the topic ("flood/x": 2+7 bytes).
				id := uint16(f[len(f)-floodPayload-2])<<8 | uint16(f[len(f)-floodPayload-1])
				healthy.SendRaw(frame(0x40, u16b(id)))
			}
		}
	}()

	pub := dialRaw(t, s, packet.Version311, uniq("pub"))
	window := make(chan struct{}, floodWindow)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			f, err := pub.ReadFrame(10 * time.Second)
			if err != nil {
				return
			}
			if f[0]>>4 == byte(packet.PUBACK) {
				<-window
			}
		}
	}()
	t.Cleanup(func() { pub.Close(); healthy.Close(); wg.Wait() })

	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	base := heap()
	payload := bytes.Repeat([]byte("z"), floodPayload)
	n := floodTotal / floodPayload
	var peak uint64
	start := time.Now()
	for i := 0; i < n; i++ {
		window <- struct{}{}
		// Keep the healthy subscriber within 16 messages (1 MiB) of the
		// publisher: it reads as fast as it can, so a longer lag means the
		// broker is holding its messages back.
		lagDeadline := time.Now().Add(10 * time.Second)
		for received.Load() < int64(i)-16 {
			if time.Now().After(lagDeadline) {
				t.Fatalf("healthy subscriber stuck at %d of %d messages while another subscriber stalls", received.Load(), i)
			}
			time.Sleep(time.Millisecond)
		}
		b, err := packet.Append(nil, &packet.Publish{Topic: []byte("flood/x"), QoS: 1, PacketID: uint16(i%60000 + 1), Payload: payload}, packet.Version311)
		if err != nil {
			t.Fatal(err)
		}
		pub.SendRaw(b)
		if (i+1)%(n/4) == 0 {
			// The healthy subscriber must keep up while the stalled one
			// holds its share.
			deadline := time.Now().Add(10 * time.Second)
			for received.Load() < int64(i+1)-floodWindow && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if got := received.Load(); got < int64(i+1)-floodWindow {
				t.Fatalf("healthy subscriber stuck at %d of %d messages while another subscriber stalls", got, i+1)
			}
			if s.sluice != nil {
				peak = max(peak, heap())
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for received.Load() < int64(n) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	if got := received.Load(); got != int64(n) {
		t.Fatalf("healthy subscriber received %d of %d messages", got, n)
	}
	t.Logf("pushed %d MiB in %v; healthy subscriber received all %d messages", floodTotal>>20, took.Round(time.Millisecond), n)
	if s.sluice == nil {
		return // memory of an external process is not measured here
	}
	growth := int64(peak) - int64(base)
	t.Logf("broker heap: base %.1f MiB, peak after GC %.1f MiB, growth %.1f MiB (bound %d MiB)",
		mib(base), mib(peak), float64(growth)/(1<<20), heapBound>>20)
	if growth > heapBound {
		t.Fatalf("heap grew %.1f MiB while a subscriber stalled (bound %d MiB): the session queue is not bounded",
			float64(growth)/(1<<20), heapBound>>20)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// dialSmallBuffer opens a raw 3.1.1 connection whose socket receive
// buffer is tiny, so a client that stops reading pushes back at once.
func dialSmallBuffer(t *testing.T, addr string) *mqtttest.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dialling %s: %v", addr, err)
	}
	return mqtttest.Wrap(t, nc, packet.Version311)
}
