package kafka

import (
	"context"
	"fmt"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluicehq/sluice/sinks"
)

// BenchmarkWrite measures the sink alone writing batches of 1000 records
// of 200-byte values to an in-process kfake broker (3 partitions, acks
// all), from one writer and from four concurrent ones (the runner's
// default lanes). It reports msgs/s.
func BenchmarkWrite(b *testing.B) {
	for _, tc := range []struct {
		codec string
		lanes int
		batch int
	}{{"none", 1, 1000}, {"none", 4, 1000}, {"lz4", 4, 1000}, {"none", 1, 10}} {
		b.Run(fmt.Sprintf("compression=%s/lanes=%d/batch=%d", tc.codec, tc.lanes, tc.batch), func(b *testing.B) {
			cl := startCluster(b, kfake.SeedTopics(3, "bench"))
			cfg := DefaultConfig()
			cfg.Brokers = []string{cl.addr}
			cfg.Topic = "bench"
			cfg.Compression = tc.codec
			s, err := New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			batches := make([][]sinks.Record, tc.lanes)
			for l := range batches {
				batches[l] = benchBatch(l, tc.batch, 200)
			}
			if err := s.Write(context.Background(), batches[0]); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(tc.batch) * 200)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			errc := make(chan error, tc.lanes)
			next := make(chan struct{}, b.N)
			for range b.N {
				next <- struct{}{}
			}
			close(next)
			for l := range tc.lanes {
				go func() {
					for range next {
						if err := s.Write(context.Background(), batches[l]); err != nil {
							errc <- err
							return
						}
					}
					errc <- nil
				}()
			}
			for range tc.lanes {
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*tc.batch)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

func benchBatch(lane, n, size int) []sinks.Record {
	recs := make([]sinks.Record, n)
	for i := range recs {
		v := make([]byte, size)
		for j := range v {
			v[j] = byte('a' + (i+j)%26)
		}
		k := fmt.Sprintf("device-%d-%d", lane, i%50)
		recs[i] = sinks.Record{
			Key:   []byte(k),
			Value: v,
			Source: sinks.Source{
				Topic:      "sensors/" + k + "/temp",
				ClientID:   k,
				QoS:        1,
				ReceivedAt: time.Now(),
			},
		}
	}
	return recs
}

// BenchmarkWriterBaseline measures kafka-go's own kafka.Writer (Async
// false, one WriteMessages per batch) on the same load, the alternative
// this sink was measured against (see sinks/README.md).
func BenchmarkWriterBaseline(b *testing.B) {
	for _, tc := range []struct {
		timeout      time.Duration
		lanes, batch int
	}{{time.Millisecond, 4, 1000}, {5 * time.Millisecond, 4, 1000}, {5 * time.Millisecond, 1, 10}} {
		b.Run(fmt.Sprintf("batch_timeout=%s/lanes=%d/batch=%d", tc.timeout, tc.lanes, tc.batch), func(b *testing.B) {
			cl := startCluster(b, kfake.SeedTopics(3, "bench"))
			w := &kafkago.Writer{
				Addr:         kafkago.TCP(cl.addr),
				Topic:        "bench",
				Balancer:     &kafkago.Murmur2Balancer{},
				RequiredAcks: kafkago.RequireAll,
				BatchSize:    1000,
				BatchBytes:   1 << 20,
				BatchTimeout: tc.timeout,
				MaxAttempts:  1,
			}
			defer w.Close()
			lanes := tc.lanes
			msgs := make([][]kafkago.Message, lanes)
			for l := range msgs {
				for _, r := range benchBatch(l, tc.batch, 200) {
					msgs[l] = append(msgs[l], kafkago.Message{Key: r.Key, Value: r.Value, Time: r.Source.ReceivedAt, Headers: []kafkago.Header{
						{Key: HeaderMQTTTopic, Value: []byte(r.Source.Topic)},
						{Key: HeaderClientID, Value: []byte(r.Source.ClientID)},
						{Key: HeaderQoS, Value: qosValues[1]},
					}})
				}
			}
			if err := w.WriteMessages(context.Background(), msgs[0]...); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(tc.batch) * 200)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			next := make(chan struct{}, b.N)
			for range b.N {
				next <- struct{}{}
			}
			close(next)
			errc := make(chan error, lanes)
			for l := range lanes {
				go func() {
					for range next {
						if err := w.WriteMessages(context.Background(), msgs[l]...); err != nil {
							errc <- err
							return
						}
					}
					errc <- nil
				}()
			}
			for range lanes {
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*tc.batch)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}
