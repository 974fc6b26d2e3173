package webhook

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sluicehq/sluice/sinks"
)

// BenchmarkWrite measures the sink alone sending batches of 1000 records
// with 200-byte values (JSON and binary, half each) to a local receiver
// that reads every body, from one writer and from four (the runner's
// default lanes). It reports msgs/s.
func BenchmarkWrite(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		body         string
		lanes, batch int
	}{{BodyArray, 1, 1000}, {BodyArray, 4, 1000}, {BodyNDJSON, 4, 1000}, {BodyObject, 4, 100}} {
		b.Run(fmt.Sprintf("body=%s/lanes=%d/batch=%d", tc.body, tc.lanes, tc.batch), func(b *testing.B) {
			s, err := New(Config{URL: srv.URL + "/{topic}", Body: tc.body, Secret: "bench-secret"}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			batches := make([][]sinks.Record, tc.lanes)
			for l := range batches {
				batches[l] = benchBatch(l, tc.batch, 200)
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
			errc := make(chan error, tc.lanes)
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
	now := time.Now()
	for i := range recs {
		k := fmt.Sprintf("device-%d-%d", lane, i%50)
		var v []byte
		if i%2 == 0 {
			v = fmt.Appendf(nil, `{"device":%q,"seq":%d,"temp":21.5,"pad":"`, k, i)
			for len(v) < size-2 {
				v = append(v, 'x')
			}
			v = append(v, `"}`...)
		} else {
			v = make([]byte, size)
			for j := range v {
				v[j] = byte(i + j)
			}
		}
		recs[i] = sinks.Record{
			Rule:   "bench",
			Topic:  "telemetry",
			Key:    []byte(k),
			Value:  v,
			Source: sinks.Source{Topic: "sensors/" + k + "/temp", ClientID: k, QoS: 1, ReceivedAt: now},
		}
	}
	return recs
}
