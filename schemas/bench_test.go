package schemas

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/sluicehq/sluice/rules"
	"github.com/sluicehq/sluice/schemas/sparkplug"
)

// telemetry is a 300-byte JSON telemetry payload, the target case
// (≤ 2 µs to decode; validation adds ≤ 50%).
var telemetry = []byte(`{"device":"press-07","site":"plant-north","line":"L3","ts":1700000000123,"temp":71.25,"pressure":1013.4,"humidity":41.2,"rpm":1480,"vibration":{"x":0.012,"y":0.009,"z":0.021},"status":"running","alarms":[],"tags":["hydraulic","critical"],"firmware":"4.2.1","seq":982341,"ok":true}`)

// cpuTime is the CPU time the process has used (user + system, every
// thread). Benchmarks report it per op as cpu-ns/op, which the other
// processes sharing the machine inflate less than ns/op.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loop runs f b.N times, reporting allocations and cpu-ns/op.
func loop(b *testing.B, f func()) {
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		f()
	}
	b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// benchDecode decodes payload as the pipeline does: recycled, released
// once routed (sub-benchmark recycled), and afresh (fresh: what
// Decoders.Decode costs callers that keep the value).
func benchDecode(b *testing.B, cfg Config, topic string, payload []byte) {
	d, err := New(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	benchDecoder(b, d, topic, func() []byte { return payload })
}

func benchDecoder(b *testing.B, d *Decoders, topic string, payload func() []byte) {
	b.Run("mode=recycled", func(b *testing.B) {
		b.SetBytes(int64(len(payload())))
		loop(b, func() {
			_, r, err := d.DecodeRecycled(topic, payload())
			if err != nil {
				b.Fatal(err)
			}
			if r != nil {
				r.Release()
			}
		})
	})
	b.Run("mode=fresh", func(b *testing.B) {
		b.SetBytes(int64(len(payload())))
		loop(b, func() {
			if _, err := d.Decode(topic, payload()); err != nil {
				b.Fatal(err)
			}
		})
	})
}

func BenchmarkDecodeJSON(b *testing.B) {
	benchDecode(b, Config{Bindings: []BindingConfig{{Topic: "t/#"}}}, "t/1", telemetry)
}

// BenchmarkDecodeJSONKeys decodes the same payload for rules that read
// three of its fields (Options.PayloadKeys): the other members are
// checked, not built.
func BenchmarkDecodeJSONKeys(b *testing.B) {
	keys := []string{"device", "temp", "ts"} // as rules.Holder.PayloadKeys: computed once
	d, err := New(Config{Bindings: []BindingConfig{{Topic: "t/#"}}}, Options{
		PayloadKeys: func() ([]string, bool) { return keys, false },
	})
	if err != nil {
		b.Fatal(err)
	}
	benchDecoder(b, d, "t/1", func() []byte { return telemetry })
}

func BenchmarkDecodeJSONValidated(b *testing.B) {
	benchDecode(b, Config{Bindings: []BindingConfig{{Topic: "t/#", Schema: "testdata/telemetry.schema.json"}}}, "t/1", telemetry)
}

func BenchmarkDecodeMsgpack(b *testing.B) {
	v, err := decodeJSON("", telemetry)
	if err != nil {
		b.Fatal(err)
	}
	p, err := msgpack.Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	benchDecode(b, Config{Bindings: []BindingConfig{{Topic: "t/#", Decoder: DecoderMsgpack}}}, "t/1", p)
}

// BenchmarkDecodeSparkplugDDATA decodes a DDATA of 20 aliased metrics
// through a sparkplugb binding, the target case (≤ 10 µs).
func BenchmarkDecodeSparkplugDDATA(b *testing.B) {
	d, err := New(Config{Bindings: []BindingConfig{{Topic: "spBv1.0/#", Decoder: DecoderSparkplugB}}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	birth, data := ddataMetrics(20)
	for i, m := range []sparkplug.Message{{HasSeq: true}, {Seq: 1, HasSeq: true, Metrics: birth}} {
		p, err := m.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.Decode([]string{"spBv1.0/g/NBIRTH/e", "spBv1.0/g/DBIRTH/e/d"}[i], p); err != nil {
			b.Fatal(err)
		}
	}
	// seq 2 as the last byte: a one-byte varint, rewritten per message.
	msg := sparkplug.Message{Timestamp: 1700000000000, Seq: 2, HasSeq: true, Metrics: data}
	payload, err := msg.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	benchDecoder(b, d, "spBv1.0/g/DDATA/e/d", func() []byte {
		i++
		payload[len(payload)-1] = byte((2 + i) % 128) // a gap once per 128
		return payload
	})
}

// ddataMetrics returns the birth and the data metrics of n aliased
// metrics, doubles and int32s alternately, each data metric with its
// alias, timestamp and value only (the datatype comes from the birth).
func ddataMetrics(n int) (birth, data []sparkplug.OutMetric) {
	for i := range n {
		dt, v := uint32(sparkplug.TypeDouble), any(float64(i)+0.5)
		if i%2 == 1 {
			dt, v = sparkplug.TypeInt32, int64(-i)
		}
		birth = append(birth, sparkplug.OutMetric{Name: fmt.Sprintf("line1/cell%d/value", i), Alias: uint64(i), HasAlias: true, Datatype: dt, Value: v})
		data = append(data, sparkplug.OutMetric{Alias: uint64(i), HasAlias: true, Timestamp: 1700000000000, Datatype: dt, Value: v})
	}
	return birth, data
}

// BenchmarkEncodeProtobuf encodes a transform's JSON body as
// acme.v1.Reading (a rule target with encoding: protobuf).
func BenchmarkEncodeProtobuf(b *testing.B) {
	d, err := New(Config{Descriptors: []DescriptorConfig{{DescriptorSet: "testdata/reading.binpb"}}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	enc, err := d.Encoder(rules.EncodingProtobuf, "acme.v1.Reading")
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"device":"press-07","temp":71.25,"tsMs":1700000000123,"tags":["hydraulic","critical"],"status":"OK","counters":{"errs":3},"location":{"lat":52.5,"lon":13.4}}`)
	b.SetBytes(int64(len(body)))
	loop(b, func() {
		if _, err := enc.Encode(body); err != nil {
			b.Fatal(err)
		}
	})
}
