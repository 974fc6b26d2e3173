package schemas

import (
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// telemetry is a 300-byte JSON telemetry payload, the target case
// (≤ 2 µs to decode; validation adds ≤ 50%).
var telemetry = []byte(`{"device":"press-07","site":"plant-north","line":"L3","ts":1700000000123,"temp":71.25,"pressure":1013.4,"humidity":41.2,"rpm":1480,"vibration":{"x":0.012,"y":0.009,"z":0.021},"status":"running","alarms":[],"tags":["hydraulic","critical"],"firmware":"4.2.1","seq":982341,"ok":true}`)

func benchDecode(b *testing.B, cfg Config, topic string, payload []byte) {
	d, err := New(cfg, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Decode(topic, payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeJSON(b *testing.B) {
	benchDecode(b, Config{Bindings: []BindingConfig{{Topic: "t/#"}}}, "t/1", telemetry)
}

func BenchmarkDecodeJSONValidated(b *testing.B) {
	benchDecode(b, Config{Bindings: []BindingConfig{{Topic: "t/#", Schema: "testdata/telemetry.schema.json"}}}, "t/1",
		[]byte(`{"device":"press-07","site":"plant-north","line":"L3","ts":1700000000123,"temp":71.25,"pressure":1013.4,"humidity":41.2,"rpm":1480,"vibration":{"x":0.012,"y":0.009,"z":0.021},"status":"running","alarms":[],"tags":["hydraulic","critical"],"firmware":"4.2.1","seq":982341,"ok":true}`))
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
