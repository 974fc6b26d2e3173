package schemas

import (
	"fmt"
	"testing"
)

// FuzzDecoders feeds every decoder the same bytes: none may panic, a
// failure must be an *InvalidError, and DecodeRecycled (released at once)
// must give what Decode gives.
func FuzzDecoders(f *testing.F) {
	d, err := New(Config{Bindings: []BindingConfig{
		{Topic: "json", Schema: "testdata/telemetry.schema.json"},
		{Topic: "plain", Decoder: DecoderJSON},
		{Topic: "mp", Decoder: DecoderMsgpack},
		{Topic: "cbor", Decoder: DecoderCBOR},
		{Topic: "pb", Decoder: DecoderProtobuf, Protobuf: ProtobufConfig{Message: "acme.v1.Reading", Files: []string{"testdata/reading.proto"}}},
	}}, Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"device":"d","temp":1}`))
	f.Add([]byte{0x82, 0xa1, 0x61, 0x01, 0xa1, 0x62, 0xc0})
	f.Add([]byte{0xa2, 0x61, 0x61, 0x01, 0x07, 0x41, 0x00})
	f.Add(readingPB("d", true))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, topic := range []string{"json", "plain", "mp", "cbor", "pb", "unbound"} {
			v, err := d.Decode(topic, b)
			if _, ok := err.(*InvalidError); err != nil && !ok && topic != "unbound" {
				t.Fatalf("%s: error %T %v, want *InvalidError", topic, err, err)
			}
			rv, r, rerr := d.DecodeRecycled(topic, b)
			if (rerr == nil) != (err == nil) || rerr != nil && rerr.Error() != err.Error() {
				t.Fatalf("%s: DecodeRecycled error %v, Decode error %v", topic, rerr, err)
			}
			// %#v, not reflect.DeepEqual: a NaN equals itself in print.
			if got, want := fmt.Sprintf("%#v", rv), fmt.Sprintf("%#v", v); got != want {
				t.Fatalf("%s: DecodeRecycled = %s, Decode = %s", topic, got, want)
			}
			if r != nil {
				r.Release()
			}
		}
	})
}

func TestInvalidErrorMessage(t *testing.T) {
	d, err := New(Config{Bindings: []BindingConfig{{Topic: "t", Schema: "testdata/telemetry.schema.json"}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Decode("t", []byte(`{"device":"d","temp":900}`))
	want := `validating payload against testdata/telemetry.schema.json at "/temp": /temp: maximum: got 900, want 150`
	if err == nil || err.Error() != want {
		t.Fatalf("error = %v, want %s", err, want)
	}
}
