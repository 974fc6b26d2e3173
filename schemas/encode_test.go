package schemas

import (
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/sluicehq/sluice/rules"
)

// TestEncoder finds output message types in the bindings' definitions and
// in schemas.descriptors, and encodes JSON bodies that the decoder then
// reads back.
func TestEncoder(t *testing.T) {
	d, err := New(Config{
		Bindings:    []BindingConfig{{Topic: "pb/#", Decoder: DecoderProtobuf, Protobuf: ProtobufConfig{Message: "acme.v1.Reading", Files: []string{"testdata/reading.proto"}}}},
		Descriptors: []DescriptorConfig{{DescriptorSet: "testdata/reading.binpb"}},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, message, body string
		want                string // protojson of the decoded bytes (Go's protojson is not stable: compared after a round trip)
	}{
		{"camel and proto names, enum by name, int64 as string", "acme.v1.Reading",
			`{"device":"press-07","temp":71.25,"ts_ms":"1700000000123","tags":["a","b"],"status":"FAULT","counters":{"errs":3},"location":{"lat":52.5}}`,
			`{"device":"press-07","temp":71.25,"tsMs":"1700000000123","tags":["a","b"],"status":"FAULT","counters":{"errs":3},"location":{"lat":52.5}}`},
		{"int64 as a number, enum by number", "acme.v1.Reading", `{"device":"d","tsMs":5,"status":1}`, `{"device":"d","tsMs":"5","status":"OK"}`},
		{"a type only the descriptors list holds", "acme.v1.Location", `{"lat":1.5,"lon":-2}`, `{"lat":1.5,"lon":-2}`},
		{"empty message", "acme.v1.Location", `{}`, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, err := d.Encoder(rules.EncodingProtobuf, tt.message)
			if err != nil {
				t.Fatal(err)
			}
			b, err := enc.Encode([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if b == nil {
				t.Fatal("nil encoding: a sink would send the raw payload instead")
			}
			md, err := findMessage(d.protoFiles[0], tt.message)
			if err != nil {
				t.Fatal(err)
			}
			got, want := dynamicpb.NewMessage(md), dynamicpb.NewMessage(md)
			if err := proto.Unmarshal(b, got); err != nil {
				t.Fatal(err)
			}
			if err := protojson.Unmarshal([]byte(tt.want), want); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Errorf("decoded %v, want %v", got, want)
			}
		})
	}
	t.Run("decoder reads it back", func(t *testing.T) {
		enc, _ := d.Encoder(rules.EncodingProtobuf, "acme.v1.Reading")
		b, err := enc.Encode([]byte(`{"device":"press-07","temp":23,"tsMs":-5,"tags":["a"],"status":"FAULT","counters":{"errs":3}}`))
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.Decode("pb/1", b)
		if err != nil {
			t.Fatal(err)
		}
		want, err := d.Decode("pb/1", readingPB("press-07", true))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("decoded %v, want %v (the hand-made encoding)", got, want)
		}
	})
}

func TestEncoderErrors(t *testing.T) {
	d, err := New(Config{Descriptors: []DescriptorConfig{{Files: []string{"testdata/reading.proto"}}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("lookup", func(t *testing.T) {
		for _, tt := range []struct {
			d                 *Decoders
			encoding, message string
			want              string
		}{
			{d, "protobuf", "acme.v1.Nope", `unknown Protobuf message type "acme.v1.Nope": not in the definitions`},
			{d, "protobuf", "acme.v1.Reading.Status", `finding message acme.v1.Reading.Status: it is not a message`},
			{d, "avro", "acme.v1.Reading", `unknown encoding "avro"`},
			{&Decoders{}, "protobuf", "acme.v1.Reading", `no Protobuf definitions are configured`},
		} {
			_, err := tt.d.Encoder(tt.encoding, tt.message)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Encoder(%s, %s) = %v, want %q", tt.encoding, tt.message, err, tt.want)
			}
		}
	})
	enc, err := d.Encoder(rules.EncodingProtobuf, "acme.v1.Reading")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, body, want string }{
		{"unknown field", `{"device":"d","humidity":40}`, `unknown field "humidity"`},
		{"wrong type", `{"device":"d","temp":"hot"}`, `invalid value for double field temp`},
		{"required field missing", `{"temp":20}`, `required field acme.v1.Reading.device not set`},
		{"unknown enum name", `{"device":"d","status":"BROKEN"}`, `invalid value for enum field status`},
		{"not JSON", `temp=20`, `syntax error`},
		{"not an object", `[1]`, `unexpected token [`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := enc.Encode([]byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "encoding acme.v1.Reading: ") {
				t.Errorf("Encode(%s) = %v, want an error with %q", tt.body, err, tt.want)
			}
		})
	}
}

func TestDescriptorsConfig(t *testing.T) {
	errs := Config{Descriptors: []DescriptorConfig{{}, {DescriptorSet: "a.binpb", Files: []string{"a.proto"}}}}.Validate()
	want := []string{"descriptors[0]: exactly one of descriptor_set and files is required",
		"descriptors[1]: exactly one of descriptor_set and files is required"}
	if len(errs) != len(want) {
		t.Fatalf("errors %v, want %q", errs, want)
	}
	for i := range want {
		if errs[i].Error() != want[i] {
			t.Errorf("error %d = %q, want %q", i, errs[i], want[i])
		}
	}
	_, err := New(Config{Descriptors: []DescriptorConfig{{DescriptorSet: "testdata/missing.binpb"}}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "schemas.descriptors[0]: reading descriptor set") {
		t.Errorf("New with a missing descriptor set: %v", err)
	}
}
