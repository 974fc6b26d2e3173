package kafka

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/sinks/sinktest"
)

// cluster is an in-process Kafka (kfake) that can be stopped and started
// again on the same port, with the options it was created with.
type cluster struct {
	t    testing.TB
	opts []kfake.Opt
	c    *kfake.Cluster
	addr string
}

// startCluster starts a one-broker kfake cluster with topic "events" of 3
// partitions (plus opts) and stops it when the test ends.
func startCluster(t testing.TB, opts ...kfake.Opt) *cluster {
	t.Helper()
	cl := &cluster{t: t, opts: append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(3, "events")}, opts...)}
	cl.start(0)
	t.Cleanup(cl.stop)
	return cl
}

func (cl *cluster) start(port int) {
	cl.t.Helper()
	opts := cl.opts
	if port != 0 {
		opts = append(opts[:len(opts):len(opts)], kfake.Ports(port))
	}
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if cl.c, err = kfake.NewCluster(opts...); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond) // the old listener may linger a moment
	}
	if err != nil {
		cl.t.Fatalf("starting kfake: %v", err)
	}
	cl.addr = cl.c.ListenAddrs()[0]
}

func (cl *cluster) stop() {
	if cl.c != nil {
		cl.c.Close()
		cl.c = nil
	}
}

// restart stops the cluster and starts an empty one on the same port.
func (cl *cluster) restart() {
	_, p, err := net.SplitHostPort(cl.addr)
	if err != nil {
		cl.t.Fatal(err)
	}
	port, _ := strconv.Atoi(p)
	cl.stop()
	cl.start(port)
}

// consumed is a record read back with a real consumer (franz-go).
type consumed struct {
	topic     string
	partition int32
	key       []byte
	value     []byte
	headers   []kgo.RecordHeader
	ts        time.Time
}

// consume reads topic from the start until at least n records arrived,
// then briefly keeps reading to catch extras (duplicates).
func consume(ctx context.Context, addr, topic string, n int, opts ...kgo.Opt) ([]consumed, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(50 * time.Millisecond),
	}, opts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []consumed
	var extra <-chan time.Time
	for {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		for _, r := range fs.Records() {
			out = append(out, consumed{topic: r.Topic, partition: r.Partition, key: r.Key, value: r.Value, headers: r.Headers, ts: r.Timestamp})
		}
		if len(out) >= n && extra == nil {
			extra = time.After(300 * time.Millisecond)
		}
		select {
		case <-extra:
			return out, nil
		case <-ctx.Done():
			return out, fmt.Errorf("consuming %s: %w (%d of %d records)", topic, ctx.Err(), len(out), n)
		default:
		}
	}
}

// harness runs the sink contract against kfake; the outage restarts the
// cluster on the same port.
func harness(t *testing.T) sinktest.Harness {
	return sinktest.Harness{
		LargeValue: 512 << 10,
		New: func(t *testing.T) *sinktest.Peer {
			cl := startCluster(t)
			cfg := DefaultConfig()
			cfg.Brokers = []string{cl.addr}
			cfg.Topic = "events"
			cfg.MetadataTTL = time.Second
			s, err := New(cfg, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return &sinktest.Peer{
				Sink: s,
				Read: func(ctx context.Context, n int) ([]sinktest.Message, error) {
					recs, err := consume(ctx, cl.addr, "events", n)
					out := make([]sinktest.Message, len(recs))
					for i, r := range recs {
						out[i] = sinktest.Message{Key: r.key, Value: r.value}
					}
					return out, err
				},
				Down: func(t *testing.T) { cl.stop() },
				Up:   func(t *testing.T) { cl.restart() },
			}
		},
	}
}
