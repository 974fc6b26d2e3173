package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2etest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchJSONTransform wraps the binary bench payload in a JSON object, as a
// rule reshaping device data would; the consumer unwraps "data".
const benchJSONTransform = `{"site": site, "line": line, "device": clientid, "received_ms": received_ms, "data": hex(raw)}`

// TestBenchEndToEnd measures MQTT QoS 1 → rules → Kafka with spool
// durability: `sluice bench pub` publishes against the real binary while
// a Kafka consumer in this process reads the records and computes
// publish-to-Kafka latency from the send time bench stamps into every
// payload. Each case runs once as fast as acknowledgements allow and once
// paced at 1,000 messages/s per publisher. It runs only with
// SLUICE_BENCH=1; SLUICE_BENCH_DURATION (10s), SLUICE_BENCH_CLIENTS (10)
// and SLUICE_BENCH_SIZE (200 bytes) change the load.
//
//	SLUICE_BENCH=1 go test ./sinks/kafka/e2e -run TestBenchEndToEnd -v -timeout 30m
func TestBenchEndToEnd(t *testing.T) {
	if os.Getenv("SLUICE_BENCH") != "1" {
		t.Skip("set SLUICE_BENCH=1 to run the end-to-end benchmark")
	}
	tests := []struct {
		name      string
		transform string
		rate      int // per publisher; 0 = as fast as acks allow
	}{
		{name: "raw payload, unpaced", transform: ""},
		{name: "JSON transform, unpaced", transform: benchJSONTransform},
		{name: "raw payload, paced", transform: "", rate: 1000},
		{name: "JSON transform, paced", transform: benchJSONTransform, rate: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { benchEndToEnd(t, tt.transform, tt.rate) })
	}
}

func benchEndToEnd(t *testing.T, transform string, rate int) {
	duration := e2etest.BenchEnv(t, "SLUICE_BENCH_DURATION", 10*time.Second)
	clients := e2etest.BenchEnv(t, "SLUICE_BENCH_CLIENTS", 10)
	size := e2etest.BenchEnv(t, "SLUICE_BENCH_SIZE", 200)
	sluiceBin, kfakeBin := binaries(t)
	k := startKafka(t, kfakeBin, "-topics", "telemetry.berlin,telemetry.default", "-partitions", "3", "-data-dir", t.TempDir())
	s := e2etest.Start(t, sluiceBin, sluiceConfig(k.Addr, filepath.Join(t.TempDir(), "data"), transform))

	c := newLatencyConsumer(t, k.Addr, "telemetry.berlin", transform != "")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.run(ctx)
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()

	cpu0, cpuErr := e2etest.CPUTime(s.Pid())
	sum, out := e2etest.BenchPub(t, sluiceBin, s.MQTTAddr, "-clients", strconv.Itoa(clients), "-size", strconv.Itoa(size),
		"-rate", strconv.Itoa(rate), "-duration", duration.String())

	st := s.Drained(ruleName, sinkName, sum.Acked, 5*time.Minute)
	e2etest.CheckBalanced(t, st, ruleName, sinkName, 0, false)
	delivered := st.Flow(ruleName, sinkName).Delivered
	if !c.waitFor(delivered, 5*time.Minute) {
		t.Fatalf("consumer read %d distinct messages, Sluice delivered %d", c.count(), delivered)
	}
	cpu1, err := e2etest.CPUTime(s.Pid())
	if err != nil || cpuErr != nil {
		cpu1, cpu0 = 0, 0 // not Linux: no CPU figure
	}
	cancel()
	wg.Wait()

	r := c.result()
	if r.distinct < sum.Acked {
		t.Errorf("Kafka holds %d distinct messages, %d were acknowledged to MQTT", r.distinct, sum.Acked)
	}
	sinkStats := st.Sinks
	t.Logf("bench pub: %s", bytes.TrimSpace(out))
	t.Logf("sinks: %+v", sinkStats)
	pacing := "unpaced"
	if rate > 0 {
		pacing = fmt.Sprintf("%d/s per client", rate)
	}
	t.Logf("RESULT | %s, %s | %.0f | %.0f | %.1f / %.1f | %.1f / %.1f | %.1f | %.1f |",
		map[bool]string{true: "JSON transform", false: "raw payload"}[transform != ""], pacing,
		float64(sum.Acked)/sum.Seconds, r.kafkaRate, r.p50, r.p99, r.sluiceP50, r.sluiceP99, r.max,
		float64((cpu1-cpu0).Microseconds())/float64(delivered))
	t.Logf("distinct %d, duplicates %d, load average %s", r.distinct, r.dups, e2etest.LoadAvg())
}

// latencyConsumer reads bench payloads from Kafka and records, per
// message, the time from the publisher's send stamp to the consumer.
type latencyConsumer struct {
	t       *testing.T
	cl      *kgo.Client
	wrapped bool // values are benchJSONTransform objects

	mu         sync.Mutex
	seen       map[uint64]bool // publisher index << 32 | seq
	latencies  []int64         // ns from the send stamp, first delivery of each message
	inSluice   []int64         // ns from the record timestamp (Sluice's receive time)
	dups       int64
	firstSent  int64 // Unix ns
	lastRead   int64
	badRecords int64
}

func newLatencyConsumer(t *testing.T, addr, topic string, wrapped bool) *latencyConsumer {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &latencyConsumer{t: t, cl: cl, wrapped: wrapped, seen: map[uint64]bool{}}
}

// run polls until ctx ends.
func (c *latencyConsumer) run(ctx context.Context) {
	for ctx.Err() == nil {
		fs := c.cl.PollFetches(ctx)
		now := time.Now().UnixNano()
		c.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) { c.add(r.Value, r.Timestamp.UnixNano(), now) })
		c.mu.Unlock()
	}
}

// add records one value read at now. c.mu is held.
func (c *latencyConsumer) add(v []byte, received, now int64) {
	if c.wrapped {
		var w struct {
			Data string `json:"data"`
		}
		if json.Unmarshal(v, &w) != nil {
			c.badRecords++
			return
		}
		var err error
		if v, err = hex.DecodeString(w.Data); err != nil {
			c.badRecords++
			return
		}
	}
	if len(v) < 24 || string(v[:4]) != "sbh1" {
		c.badRecords++
		return
	}
	id := uint64(binary.LittleEndian.Uint32(v[8:]))<<32 | uint64(binary.LittleEndian.Uint32(v[12:]))
	sent := int64(binary.LittleEndian.Uint64(v[16:]))
	if c.seen[id] {
		c.dups++
		return
	}
	c.seen[id] = true
	c.latencies = append(c.latencies, now-sent)
	c.inSluice = append(c.inSluice, now-received)
	if c.firstSent == 0 || sent < c.firstSent {
		c.firstSent = sent
	}
	c.lastRead = now
}

func (c *latencyConsumer) count() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int64(len(c.seen))
}

// waitFor waits until n distinct messages were read.
func (c *latencyConsumer) waitFor(n int64, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c.count() >= n {
			return true
		}
	}
	return false
}

// benchResult summarizes a run: distinct messages, duplicates, the rate
// from the first send to the last read, and latency quantiles in ms.
type benchResult struct {
	distinct, dups int64
	kafkaRate      float64
	p50, p99, max  float64 // send stamp to consumer
	sluiceP50      float64 // Sluice's receive time (the record timestamp) to consumer
	sluiceP99      float64
}

func (c *latencyConsumer) result() benchResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.badRecords > 0 {
		c.t.Errorf("%d records without a bench payload", c.badRecords)
	}
	r := benchResult{distinct: int64(len(c.seen)), dups: c.dups}
	if len(c.latencies) == 0 {
		return r
	}
	slices.Sort(c.latencies)
	slices.Sort(c.inSluice)
	q := func(l []int64, p float64) float64 {
		return float64(l[int(p*float64(len(l)-1))]) / 1e6
	}
	r.p50, r.p99, r.max = q(c.latencies, 0.5), q(c.latencies, 0.99), q(c.latencies, 1)
	r.sluiceP50, r.sluiceP99 = q(c.inSluice, 0.5), q(c.inSluice, 0.99)
	r.kafkaRate = float64(r.distinct) / (float64(c.lastRead-c.firstSent) / 1e9)
	return r
}
