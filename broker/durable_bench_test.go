package broker_test

// An external test package: the disk store (broker/store) imports broker.

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/listener"
	"github.com/sluicehq/sluice/broker/packet"
	"github.com/sluicehq/sluice/broker/store"
)

// Shape of BenchmarkDurableOnlineQoS1.
const (
	durPubs    = 8   // QoS 1 publishers
	durSubs    = 2   // persistent subscribers, each gets the topics of durPubs/durSubs publishers
	durWindow  = 64  // unacknowledged PUBLISHes per publisher
	durPayload = 256 // bytes
	durWarmup  = 500 * time.Millisecond
	// durCredit bounds messages published and not yet received, all
	// publishers together. It must stay below a subscriber's
	// max_queued_messages (1,000): a received message frees its credit
	// before its PUBACK frees its inflight slot, so the queue alone may
	// hold up to durCredit.
	durCredit = 768
)

// durRunTime is how long each measured run publishes: 3 s, or
// SLUICE_DURABLE_RUN (a Go duration).
func durRunTime(b *testing.B) time.Duration {
	if v := os.Getenv("SLUICE_DURABLE_RUN"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			b.Fatalf("SLUICE_DURABLE_RUN=%q: want a positive duration", v)
		}
		return d
	}
	return 3 * time.Second
}

// BenchmarkDurableOnlineQoS1 measures what durable sessions cost online
// QoS 1 traffic at saturation: 8 publishers (window 64, 256-byte
// payloads) → broker → 2 online persistent subscribers (v5, clean start
// false, session expiry 1 h, QoS 1, acking at once), as fast as the
// broker goes. Each iteration runs the memory store (no SessionStore,
// what `broker.store.type: memory` gives) and the disk store
// (broker/store.Disk in a temporary directory) once each, alternating
// which goes first, on a fresh broker each time. It reports the mean
// delivered msg/s of each, the process CPU time per delivered message
// (broker and clients share the process; the clients' share is the same
// for both stores), and the disk/memory ratios: of the means, and the
// median of the per-pair ratios (a pair's two runs are seconds apart, so
// the load of a shared box moves them less than it moves runs apart);
// -v logs every run. Run with -benchtime=Nx for N pairs
// (README: -benchtime=15x).
func BenchmarkDurableOnlineQoS1(b *testing.B) {
	run := durRunTime(b)
	var mem, disk, memCPU, diskCPU, pairRate, pairCPU []float64
	for i := range b.N {
		order := []bool{false, true}
		if i%2 == 1 {
			order = []bool{true, false}
		}
		for _, durable := range order {
			r := durableRun(b, durable, run)
			name := "memory"
			if durable {
				name = "disk"
				disk, diskCPU = append(disk, r.rate), append(diskCPU, r.cpuPerMsg.Seconds()*1e6)
			} else {
				mem, memCPU = append(mem, r.rate), append(memCPU, r.cpuPerMsg.Seconds()*1e6)
			}
			b.Logf("pair %d %-6s delivered %8.0f msg/s, %5.2f µs CPU/msg (acked %d, delivered %d)",
				i, name, r.rate, r.cpuPerMsg.Seconds()*1e6, r.acked, r.delivered)
			if r.delivered < r.acked {
				b.Errorf("%s store: %d messages acked but not delivered", name, r.acked-r.delivered)
			}
		}
		pairRate = append(pairRate, disk[i]/mem[i])
		pairCPU = append(pairCPU, diskCPU[i]/memCPU[i])
	}
	b.ReportMetric(mean(mem), "memory-msgs/s")
	b.ReportMetric(mean(disk), "disk-msgs/s")
	b.ReportMetric(mean(disk)/mean(mem), "disk/memory")
	b.ReportMetric(median(pairRate), "disk/memory-pair-median")
	b.ReportMetric(mean(memCPU), "memory-CPU-µs/msg")
	b.ReportMetric(mean(diskCPU), "disk-CPU-µs/msg")
	b.ReportMetric(mean(diskCPU)/mean(memCPU), "disk/memory-CPU")
	b.ReportMetric(median(pairCPU), "disk/memory-CPU-pair-median")
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// durResult is one run's outcome.
type durResult struct {
	rate      float64       // delivered msg/s over the measured window
	cpuPerMsg time.Duration // process CPU time (broker and clients) per delivered message, same window
	acked     int64         // PUBACKs the publishers got in the whole run
	delivered int64         // PUBLISHes the subscribers got in the whole run
}

// durableRun starts a broker (with the disk store if durable), connects
// the subscribers and publishers, publishes for warm-up + run and returns
// the delivery rate measured over run.
func durableRun(b testing.TB, durable bool, run time.Duration) durResult {
	b.Helper()
	cfg := broker.DefaultConfig()
	cfg.Listeners = []broker.ListenerConfig{{Config: listener.Config{Name: "bench", Address: "127.0.0.1:0"}, AllowAnonymous: true}}
	cfg.ShutdownTimeout = 2 * time.Second
	cfg.SysInterval = 0
	var opts broker.Options
	var disk *store.Disk
	if durable {
		cfg.Store = broker.StoreConfig{Type: broker.StoreDisk, Dir: b.TempDir()}
		var err error
		if disk, err = store.Open(cfg.Store.Dir); err != nil {
			b.Fatal(err)
		}
		opts.Store = disk
	} else {
		cfg.Store = broker.StoreConfig{Type: broker.StoreMemory}
	}
	srv, err := broker.New(cfg, opts)
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			b.Errorf("Serve: %v", err)
		}
		if disk != nil {
			if err := disk.Close(); err != nil {
				b.Error(err)
			}
		}
	}()
	addr := srv.Addrs()["bench"].String()

	var delivered, acked atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	credit := make(chan struct{}, durCredit)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}()
	for i := range durSubs {
		c := durConnect(b, addr, fmt.Sprintf("dur-sub-%d", i), false)
		conns = append(conns, c)
		durSubscribe(b, c, fmt.Sprintf("bench/%d/+", i))
		wg.Add(1)
		go func() { defer wg.Done(); durSubscriber(c, credit, &delivered) }()
	}
	var pubs sync.WaitGroup
	for i := range durPubs {
		c := durConnect(b, addr, fmt.Sprintf("dur-pub-%d", i), true)
		conns = append(conns, c)
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			durPublisher(c, fmt.Sprintf("bench/%d/%d", i%durSubs, i), stop, credit, &acked)
		}()
	}
	time.Sleep(durWarmup)
	d0, t0, cpu0 := delivered.Load(), time.Now(), cpuTime(b)
	time.Sleep(run)
	d1, t1, cpu1 := delivered.Load(), time.Now(), cpuTime(b)
	close(stop)
	pubs.Wait() // each waits (≤ 5 s) for its PUBACKs: acked is final
	// Let what was acked arrive, so the loss figure is meaningful.
	for deadline := time.Now().Add(5 * time.Second); delivered.Load() < acked.Load() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	return durResult{rate: float64(d1-d0) / t1.Sub(t0).Seconds(), cpuPerMsg: (cpu1 - cpu0) / time.Duration(max(d1-d0, 1)),
		acked: acked.Load(), delivered: delivered.Load()}
}

// cpuTime is the CPU time (user + system) this process used so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// durConnect dials and sends a v5 CONNECT: a publisher with clean start,
// a subscriber with clean start false and a 1 h session expiry.
func durConnect(b testing.TB, addr, id string, clean bool) net.Conn {
	b.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	cp := &packet.Connect{ProtocolName: []byte("MQTT"), Version: packet.Version5, CleanStart: clean, KeepAlive: 60, ClientID: []byte(id)}
	if !clean {
		cp.Props = packet.Properties{Present: packet.PropSessionExpiry, SessionExpiry: 3600}
	}
	durWrite(b, c, cp)
	r := packet.NewReader(c, 0)
	r.SetVersion(packet.Version5)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := r.ReadPacket()
	if ca, ok := p.(*packet.Connack); err != nil || !ok || ca.ReasonCode != 0 {
		b.Fatalf("CONNECT %s: %v %+v", id, err, p)
	}
	c.SetReadDeadline(time.Time{})
	return c
}

func durSubscribe(b testing.TB, c net.Conn, filter string) {
	b.Helper()
	durWrite(b, c, &packet.Subscribe{PacketID: 1, Subs: []packet.Subscription{{Filter: []byte(filter), QoS: 1}}})
	r := packet.NewReader(c, 0)
	r.SetVersion(packet.Version5)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	p, err := r.ReadPacket()
	if sa, ok := p.(*packet.Suback); err != nil || !ok || len(sa.Codes) != 1 || sa.Codes[0] != 1 {
		b.Fatalf("SUBSCRIBE %s: %v %+v", filter, err, p)
	}
	c.SetReadDeadline(time.Time{})
}

func durWrite(b testing.TB, c net.Conn, p packet.Packet) {
	b.Helper()
	buf, err := packet.Append(nil, p, packet.Version5)
	if err == nil {
		_, err = c.Write(buf)
	}
	if err != nil {
		b.Fatal(err)
	}
}

// durSubscriber counts PUBLISHes, frees a publisher credit for each and
// acknowledges them, one write per read batch, until the connection
// closes.
func durSubscriber(c net.Conn, credit chan struct{}, delivered *atomic.Int64) {
	r := packet.NewReader(c, 0)
	r.SetVersion(packet.Version5)
	var out []byte
	for {
		p, err := r.ReadPacket()
		if err != nil {
			return
		}
		if pub, ok := p.(*packet.Publish); ok {
			delivered.Add(1)
			select {
			case <-credit:
			default: // a duplicate: its credit was freed by the first copy
			}
			if pub.QoS == 1 {
				out, _ = packet.Append(out, &packet.Ack{Kind: packet.PUBACK, PacketID: pub.PacketID}, packet.Version5)
			}
		}
		if r.Buffered() == 0 && len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return
			}
			out = out[:0]
		}
	}
}

// durPublisher publishes QoS 1 to topic with up to durWindow unacked,
// until stop is closed, counting PUBACKs in acked. Each message also
// takes a slot in credit, which the subscriber frees when the message
// arrives: the loop is closed end to end, so publishers run at the speed
// the broker delivers instead of overflowing the subscribers' queues
// (the broker never slows publishers for subscribers; it drops).
func durPublisher(c net.Conn, topic string, stop <-chan struct{}, credit chan struct{}, acked *atomic.Int64) {
	window := make(chan struct{}, durWindow)
	done := make(chan struct{})
	go func() { // reader: PUBACKs free window slots
		defer close(done)
		r := packet.NewReader(c, 0)
		r.SetVersion(packet.Version5)
		for {
			p, err := r.ReadPacket()
			if err != nil {
				return
			}
			if a, ok := p.(*packet.Ack); ok && a.Kind == packet.PUBACK {
				acked.Add(1)
				<-window
			}
		}
	}()
	defer func() { c.Close(); <-done }()
	payload := make([]byte, durPayload)
	var buf []byte
	var pid uint16
	for {
		// Block for one slot of each, then take what else is free: one
		// write.
		select {
		case window <- struct{}{}:
		case <-stop:
			durDrain(window)
			return
		case <-done:
			return
		}
		select {
		case credit <- struct{}{}:
		case <-stop:
			<-window
			durDrain(window)
			return
		case <-done:
			return
		}
		n := 1
		for n < durWindow && durTake(window, credit) {
			n++
		}
		buf = buf[:0]
		for range n {
			pid = pid%math.MaxUint16 + 1
			buf, _ = packet.Append(buf, &packet.Publish{QoS: 1, Topic: []byte(topic), PacketID: pid, Payload: payload}, packet.Version5)
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

// durTake takes a window slot and a credit if both are free at once.
func durTake(window, credit chan struct{}) bool {
	select {
	case window <- struct{}{}:
	default:
		return false
	}
	select {
	case credit <- struct{}{}:
		return true
	default:
		<-window
		return false
	}
}

// durDrain waits (≤ 5 s) until the publisher's window is empty: every
// message sent was acknowledged.
func durDrain(window chan struct{}) {
	// The credit of a message sent but never delivered is not given back;
	// the run is over by then.
	for deadline := time.Now().Add(5 * time.Second); len(window) > 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDurableBenchShape runs one short pair so the benchmark's clients
// and accounting are checked by go test: everything acked is delivered
// with both stores.
func TestDurableBenchShape(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two brokers under load")
	}
	for _, durable := range []bool{false, true} {
		t.Run(fmt.Sprintf("durable=%v", durable), func(t *testing.T) {
			r := durableRun(t, durable, 300*time.Millisecond)
			if r.acked == 0 || r.delivered != r.acked || r.rate <= 0 {
				t.Errorf("acked %d, delivered %d, rate %.0f msg/s", r.acked, r.delivered, r.rate)
			}
		})
	}
}
