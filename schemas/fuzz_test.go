package schemas

import (
	"testing"
)

// FuzzDecoders feeds every decoder the same bytes: none may panic, and a
// failure must be an *InvalidError.
func FuzzDecoders(f *testing.F) {
	d, err := New(Config{Bindings: []BindingConfig{
		{Topic: "json", Schema: "testdata/telemetry.schema.json"},
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
		for _, topic := range []string{"json", "mp", "cbor", "pb"} {
			_, err := d.Decode(topic, b)
			if _, ok := err.(*InvalidError); err != nil && !ok {
				t.Fatalf("%s: error %T %v, want *InvalidError", topic, err, err)
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
