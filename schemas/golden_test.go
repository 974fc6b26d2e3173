package schemas

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
)

var update = flag.Bool("update", false, "rewrite testdata inputs and golden files")

// goldenInputs builds the testdata inputs that -update writes.
func goldenInputs(t *testing.T) map[string][]byte {
	doc := map[string]any{"device": "press-07", "temp": 71.25, "rpm": 1480, "tags": []string{"hydraulic"},
		"vibration": map[string]any{"x": 0.012}, "ok": true, "raw": []byte{0xde, 0xad}}
	pd, _, err := newProtobuf(ProtobufConfig{Message: "acme.v1.Reading", Files: []string{"testdata/reading.proto"}})
	if err != nil {
		t.Fatal(err)
	}
	set, err := proto.Marshal(&descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{
		protodesc.ToFileDescriptorProto(pd.md.ParentFile())}})
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"telemetry.msgpack": mustMarshal(t, msgpack.Marshal, doc),
		"telemetry.cbor":    mustMarshal(t, cbor.Marshal, doc),
		"reading.pb":        readingPB("press-07", true),
		"reading.binpb":     set,
	}
}

func TestGolden(t *testing.T) {
	if *update {
		for name, b := range goldenInputs(t) {
			if err := os.WriteFile(filepath.Join("testdata", name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	d, err := New(Config{Bindings: []BindingConfig{
		{Topic: "msgpack", Decoder: DecoderMsgpack},
		{Topic: "cbor", Decoder: DecoderCBOR},
		{Topic: "protobuf", Decoder: DecoderProtobuf, Protobuf: ProtobufConfig{Message: "acme.v1.Reading", DescriptorSet: "testdata/reading.binpb"}},
	}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ topic, input string }{
		{"msgpack", "telemetry.msgpack"},
		{"cbor", "telemetry.cbor"},
		{"protobuf", "reading.pb"},
	}
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", tt.input))
			if err != nil {
				t.Fatal(err)
			}
			v, err := d.Decode(tt.topic, in)
			if err != nil {
				t.Fatal(err)
			}
			// %T of every leaf keeps the golden file honest about types
			// (int64 against float64), which JSON alone would hide.
			got, err := json.MarshalIndent(map[string]any{"value": v, "types": leafTypes(v, "")}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.input+".golden.json")
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(want) != string(got)+"\n" {
				t.Fatalf("decoded %s:\n%s\nwant:\n%s", tt.input, got, want)
			}
		})
	}
}

// leafTypes maps the JSON pointer of every leaf of v to its Go type.
func leafTypes(v any, at string) map[string]string {
	out := map[string]string{}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			for p, ty := range leafTypes(e, at+"/"+k) {
				out[p] = ty
			}
		}
	case []any:
		for i, e := range x {
			for p, ty := range leafTypes(e, at+"/"+strconv.Itoa(i)) {
				out[p] = ty
			}
		}
	default:
		out[at] = typeName(v)
	}
	return out
}

func typeName(v any) string {
	if v == nil {
		return "nil"
	}
	return reflect.TypeOf(v).String()
}
