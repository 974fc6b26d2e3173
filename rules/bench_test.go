package rules

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/ingest"
)

// benchPayload is a 300-byte JSON telemetry reading.
var benchPayload = []byte(`{"device":"press-07","site":"berlin","line":3,"temp":85.25,"humidity":41.5,"pressure":1013.2,"vibration":{"x":0.012,"y":0.034,"z":0.101},"status":"running","alarms":[],"firmware":"4.2.1","seq":123456,"uptime_s":86400,"operator":"shift-b","batch":"B-2024-11-0042"}`)

func benchInput(b *testing.B, topic string) *ingest.Input {
	var p any
	if err := json.Unmarshal(benchPayload, &p); err != nil {
		b.Fatal(err)
	}
	return &ingest.Input{Msg: &broker.Message{Topic: topic, Payload: benchPayload, ClientID: "press-07", QoS: 1,
		ReceivedAt: time.Unix(1700000000, 0)}, Payload: p}
}

func mustCompile(tb testing.TB, src string) *Engine {
	tb.Helper()
	e, errs := CompileBytes("bench.yaml", []byte(src), Options{})
	if errs != nil {
		tb.Fatal(errs)
	}
	return e
}

// BenchmarkWhenSimple routes a message through one rule with a simple
// predicate and no transform.
func BenchmarkWhenSimple(b *testing.B) {
	e := mustCompile(b, `
- name: hot
  topics: ["plant/+/line/+/telemetry"]
  when: payload.temp > 80
  to: [{sink: k}]
`)
	in := benchInput(b, "plant/berlin/line/3/telemetry")
	dst := make([]ingest.Output, 0, 8)
	loop(b, func() { dst = e.Route(in, dst[:0]) })
	if len(dst) != 1 {
		b.Fatal(dst)
	}
}

// BenchmarkWhenLevel uses level(n) and a string comparison.
func BenchmarkWhenLevel(b *testing.B) {
	e := mustCompile(b, `
- name: hot
  topics: ["plant/+/line/+/telemetry"]
  when: payload.temp > 80 && level(1) == "berlin"
  to: [{sink: k}]
`)
	in := benchInput(b, "plant/berlin/line/3/telemetry")
	dst := make([]ingest.Output, 0, 8)
	loop(b, func() { dst = e.Route(in, dst[:0]) })
	if len(dst) != 1 {
		b.Fatal(dst)
	}
}

// manyRules builds n rules on distinct filters "site{i}/+/telemetry".
func manyRules(n int) string {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "- name: r%d\n  topics: [\"site%d/+/telemetry\"]\n  when: payload.temp > 80\n  to: [{sink: k}]\n", i, i)
	}
	return sb.String()
}

// BenchmarkRouteRules compares per-message routing cost with 10 and 1,000
// rules on distinct filters; one rule matches each message.
func BenchmarkRouteRules(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			e := mustCompile(b, manyRules(n))
			ins := make([]*ingest.Input, 10)
			for i := range ins {
				ins[i] = benchInput(b, fmt.Sprintf("site%d/dev%d/telemetry", i*(n/10), i))
			}
			dst := make([]ingest.Output, 0, 8)
			i := 0
			loop(b, func() {
				dst = e.Route(ins[i%len(ins)], dst[:0])
				i++
			})
			if len(dst) != 1 {
				b.Fatal(dst)
			}
		})
	}
}

// BenchmarkRouteTransform is the pipeline's per-message work: decode the
// 300-byte JSON payload once (with encoding/json, or with DecodeJSON),
// route, transform to JSON, render the topic template and the key.
func BenchmarkRouteTransform(b *testing.B) {
	e := mustCompile(b, `
- name: line-telemetry
  topics: ["plant/+/line/+/telemetry"]
  when: payload.temp > 80 && level(1) == "berlin"
  let: { site: level(1), line: level(3) }
  transform: '{"site": site, "line": line, "temp": payload.temp, "ts": received_ms}'
  to:
    - sink: kafka-main
      topic: 'telemetry.{{ site }}'
      key: clientid
`)
	msg := &broker.Message{Topic: "plant/berlin/line/3/telemetry", Payload: benchPayload, ClientID: "press-07",
		QoS: 1, ReceivedAt: time.Unix(1700000000, 0)}
	keys, _ := e.PayloadKeys()
	decoders := []struct {
		name   string
		decode func([]byte, *Scratch) (any, error)
	}{
		{"std", func(b []byte, _ *Scratch) (v any, err error) { err = json.Unmarshal(b, &v); return v, err }},
		{"rules", func(b []byte, _ *Scratch) (any, error) { return DecodeJSON(b) }},
		{"rules-keys", func(b []byte, _ *Scratch) (any, error) { return DecodeJSONKeys(b, keys) }},
		// What the pipeline does: decode only the fields the rules read,
		// into recycled memory released after routing.
		{"rules-keys-recycled", func(b []byte, s *Scratch) (any, error) { return s.DecodeJSONKeys(b, keys) }},
		// The same for a rule set that reads the payload whole.
		{"rules-recycled", func(b []byte, s *Scratch) (any, error) { return s.DecodeJSON(b) }},
	}
	for _, d := range decoders {
		b.Run("decode="+d.name, func(b *testing.B) {
			dst := make([]ingest.Output, 0, 8)
			b.SetBytes(int64(len(benchPayload)))
			loop(b, func() {
				in := ingest.Input{Msg: msg}
				s := NewScratch()
				in.Payload, in.DecodeErr = d.decode(msg.Payload, s)
				dst = e.Route(&in, dst[:0])
				s.Release()
			})
			if len(dst) != 1 || dst[0].Err != "" || string(dst[0].Value) != `{"line":"3","site":"berlin","temp":85.25,"ts":1700000000000}` {
				b.Fatalf("%+v %s", dst, dst[0].Value)
			}
		})
	}
}

// cpuTime returns the CPU time the process has used (user + system, every
// thread). Benchmarks report it per op as cpu-ns/op, a figure that the
// other processes sharing the machine do not inflate, unlike ns/op.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loop runs f b.N times and reports cpu-ns/op and msgs/cpu-s besides the
// wall-clock figures.
func loop(b *testing.B, f func()) {
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		f()
	}
	cpu := cpuTime() - start
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	if cpu > 0 {
		b.ReportMetric(float64(b.N)/cpu.Seconds(), "msgs/cpu-s")
	}
}

// BenchmarkDecode is decoding alone on the 300-byte payload.
func BenchmarkDecode(b *testing.B) {
	b.Run("decode=std", func(b *testing.B) {
		loop(b, func() {
			var v any
			if err := json.Unmarshal(benchPayload, &v); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("decode=rules", func(b *testing.B) {
		loop(b, func() {
			if _, err := DecodeJSON(benchPayload); err != nil {
				b.Fatal(err)
			}
		})
	})
	// What the pipeline does: decode into a Scratch, released after
	// routing.
	b.Run("decode=recycled", func(b *testing.B) {
		loop(b, func() {
			s := NewScratch()
			if _, err := s.DecodeJSON(benchPayload); err != nil {
				b.Fatal(err)
			}
			s.Release()
		})
	})
}
