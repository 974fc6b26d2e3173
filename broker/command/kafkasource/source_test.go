package kafkasource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/broker/command"
)

// fakeSubmitter is an idempotent command store in memory: it keeps the
// first command of each id and counts every call. hook, when set, runs
// first and may block or fail the call.
type fakeSubmitter struct {
	mu    sync.Mutex
	cmds  map[string]command.Command
	order []string // ids in first-submit order
	calls map[string]int
	hook  func(ctx context.Context, c command.Command) error
	seen  chan string // every call's id, when not nil
}

func newFakeSubmitter() *fakeSubmitter {
	return &fakeSubmitter{cmds: map[string]command.Command{}, calls: map[string]int{}, seen: make(chan string, 1000)}
}

func (f *fakeSubmitter) Submit(ctx context.Context, c command.Command) (command.Status, error) {
	f.mu.Lock()
	f.calls[c.ID]++
	hook := f.hook
	f.mu.Unlock()
	select {
	case f.seen <- c.ID:
	default:
	}
	if hook != nil {
		if err := hook(ctx, c); err != nil {
			return command.Status{}, err
		}
	}
	if c.Device == "" && c.Topic == "" {
		return command.Status{}, &command.RejectedError{Reason: "no device or topic"}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.cmds[c.ID]; !ok {
		f.cmds[c.ID] = c
		f.order = append(f.order, c.ID)
	}
	return command.Status{ID: c.ID, State: command.Accepted}, nil
}

func (f *fakeSubmitter) snapshot() (map[string]command.Command, []string, map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps(f.cmds), slices.Clone(f.order), maps(f.calls)
}

func maps[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// startKafka runs an in-process Kafka with the given one-partition topics.
func startKafka(t testing.TB, topics ...string) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

// produce writes records with a real producer (franz-go), in order.
func produce(t testing.TB, addr string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing: %v", err)
	}
}

// committed returns the group's committed offset of partition 0 (-1: none).
func committed(t testing.TB, addr, group, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl := &kafkago.Client{Addr: kafkago.TCP(addr)}
	res, err := cl.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {0}}})
	if err != nil {
		t.Fatalf("fetching offsets: %v", err)
	}
	if errors.Is(res.Error, kafkago.GroupIdNotFound) {
		return -1 // not joined yet
	}
	if res.Error != nil {
		t.Fatalf("fetching offsets: %v", res.Error)
	}
	for _, p := range res.Topics[topic] {
		if p.Partition == 0 {
			return p.CommittedOffset
		}
	}
	return -1
}

// waitFor polls cond until it holds or 20s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running is a Source started in the background.
type running struct {
	src    *Source
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func startSource(t testing.TB, cfg Config, sub command.Submitter) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	s, err := New(cfg, sub, Options{Logger: log, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{src: s, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends Run and checks it returned nil; safe to call twice.
func (r *running) stop(t testing.TB) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func (r *running) count(result string) float64 {
	return testutil.ToFloat64(r.src.m.records.WithLabelValues(result))
}

func testConfig(addr, topic, group string) Config {
	c := DefaultConfig()
	c.Enabled, c.Brokers, c.Topics, c.GroupID = true, []string{addr}, []string{topic}, group
	c.MaxWait, c.CommitInterval, c.RetryInitial = 100*time.Millisecond, 0, 10*time.Millisecond
	return c
}

func keyed(keys ...string) []*kgo.Record {
	recs := make([]*kgo.Record, len(keys))
	for i, k := range keys {
		recs[i] = &kgo.Record{Topic: "commands", Key: []byte(k), Value: fmt.Appendf(nil, `{"n":%d}`, i)}
	}
	return recs
}

// TestCommitAfterDurable holds one record's submit: later records of the
// partition are submitted (other devices) but the commit stops before the
// held one. A crash then (the source stopped) rereads from it, and the
// records submitted twice carry the same ids.
func TestCommitAfterDurable(t *testing.T) {
	cfg := testConfig("", "commands", "g1")
	addr := startKafka(t, "commands")
	cfg.Brokers = []string{addr}
	produce(t, addr, keyed("d0", "d1", "d2", "d3", "d4", "d5")...)
	sub := newFakeSubmitter()
	release := make(chan struct{})
	sub.hook = func(ctx context.Context, c command.Command) error {
		if c.ID != "commands-0-3" {
			return nil
		}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r := startSource(t, cfg, sub)
	waitFor(t, "records 0-2 and 4-5 durable", func() bool {
		_, order, _ := sub.snapshot()
		return len(order) == 5
	})
	waitFor(t, "offset 3 committed", func() bool { return committed(t, addr, "g1", "commands") == 3 })
	time.Sleep(300 * time.Millisecond) // give a wrong commit of 4-5 time to happen
	if got := committed(t, addr, "g1", "commands"); got != 3 {
		t.Fatalf("committed offset %d while record 3 is not durable, want 3", got)
	}
	r.stop(t) // "crash" with record 3 in Submit
	if got := committed(t, addr, "g1", "commands"); got != 3 {
		t.Fatalf("committed offset %d after stop, want 3", got)
	}

	close(release)
	r2 := startSource(t, cfg, sub)
	waitFor(t, "everything committed after the restart", func() bool { return committed(t, addr, "g1", "commands") == 6 })
	r2.stop(t)
	cmds, order, calls := sub.snapshot()
	if len(cmds) != 6 {
		t.Fatalf("%d distinct commands, want 6: %v", len(cmds), order)
	}
	for i := range 6 {
		id := fmt.Sprintf("commands-0-%d", i)
		c, ok := cmds[id]
		if !ok || c.Device != fmt.Sprintf("d%d", i) {
			t.Fatalf("command %s = %+v, want device d%d", id, c, i)
		}
	}
	for id, want := range map[string]int{"commands-0-0": 1, "commands-0-2": 1, "commands-0-3": 2, "commands-0-4": 2, "commands-0-5": 2} {
		if calls[id] != want {
			t.Errorf("%s submitted %d times, want %d (%v)", id, calls[id], want, calls)
		}
	}
	if got := r2.count(resultAccepted); got != 3 {
		t.Errorf("second run accepted %v records, want 3 (3, 4 and 5 again)", got)
	}
}

// TestBadRecordsDoNotStick sends records the service rejects, records
// that map to no device and one whose submit fails twice: all end
// committed, each counted once under its result.
func TestBadRecordsDoNotStick(t *testing.T) {
	addr := startKafka(t, "commands")
	recs := keyed("", "denied", "flaky", "ok")
	recs = append(recs, &kgo.Record{Topic: "commands", Key: []byte("d"), Headers: []kgo.RecordHeader{{Key: "qos", Value: []byte("7")}}})
	produce(t, addr, recs...)
	sub := newFakeSubmitter()
	failures := 0
	sub.hook = func(_ context.Context, c command.Command) error {
		switch c.Device {
		case "denied":
			return &command.RejectedError{Reason: "acl"}
		case "flaky":
			if failures < 2 {
				failures++ // one device's submits run one after another: no race
				return errors.New("store busy")
			}
		}
		return nil
	}
	r := startSource(t, testConfig(addr, "commands", "g2"), sub)
	waitFor(t, "every record committed", func() bool { return committed(t, addr, "g2", "commands") == 5 })
	for _, c := range []struct {
		result string
		want   float64
	}{{resultAccepted, 2}, {resultRejected, 1}, {resultInvalid, 2}} {
		if got := r.count(c.result); got != c.want {
			t.Errorf("records_total{result=%q} = %v, want %v", c.result, got, c.want)
		}
	}
	if got := testutil.ToFloat64(r.src.m.retries); got != 2 {
		t.Errorf("retries = %v, want 2", got)
	}
	_, _, calls := sub.snapshot()
	if calls["commands-0-0"] != 1 || calls["commands-0-4"] != 1 {
		t.Errorf("invalid records are submitted once (to be recorded as rejected), calls %v", calls)
	}
}

// TestMappingAndOrder reads the device from a header and the payload from
// a JSON field, through a real broker, and keeps one device's records in
// order across concurrent lanes.
func TestMappingAndOrder(t *testing.T) {
	addr := startKafka(t, "commands")
	const n = 60
	var recs []*kgo.Record
	for i := range n {
		dev := fmt.Sprintf("m%d", i%3)
		recs = append(recs, &kgo.Record{
			Topic:   "commands",
			Value:   fmt.Appendf(nil, `{"seq":%d,"cmd":{"sp":%d}}`, i, i),
			Headers: []kgo.RecordHeader{{Key: "device", Value: []byte(dev)}, {Key: "command-id", Value: fmt.Appendf(nil, "c%d", i)}, {Key: "ttl", Value: []byte("1h")}},
		})
	}
	produce(t, addr, recs...)
	sub := newFakeSubmitter()
	cfg := testConfig(addr, "commands", "g3")
	cfg.Device, cfg.Topic, cfg.PayloadField = "{{ header.device }}", "plant/{{ header.device }}/cmd", "cmd"
	startSource(t, cfg, sub)
	waitFor(t, "every record committed", func() bool { return committed(t, addr, "g3", "commands") == n })
	cmds, order, _ := sub.snapshot()
	last := map[string]int{}
	for _, id := range order {
		var i int
		fmt.Sscanf(id, "c%d", &i)
		c := cmds[id]
		dev := fmt.Sprintf("m%d", i%3)
		if c.Device != dev || c.Topic != "plant/"+dev+"/cmd" || string(c.Payload) != fmt.Sprintf(`{"sp":%d}`, i) || c.TTL != time.Hour || time.Until(c.Deadline) <= 59*time.Minute {
			t.Fatalf("command %s = %+v", id, c)
		}
		if p, ok := last[dev]; ok && p > i {
			t.Fatalf("device %s got c%d after c%d", dev, i, p)
		}
		last[dev] = i
	}
	if len(order) != n {
		t.Fatalf("%d commands, want %d", len(order), n)
	}
}
