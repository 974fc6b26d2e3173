package schemas

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
)

func mustMarshal(t testing.TB, f func(any) ([]byte, error), v any) []byte {
	t.Helper()
	b, err := f(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readingPB encodes acme.v1.Reading by hand.
func readingPB(device string, withDevice bool) []byte {
	var b []byte
	if withDevice {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, device)
	}
	b = protowire.AppendTag(b, 2, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, 0x4037000000000000) // 23.0
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	minus5 := int64(-5)
	b = protowire.AppendVarint(b, uint64(minus5))
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendString(b, "a")
	b = protowire.AppendTag(b, 5, protowire.VarintType)
	b = protowire.AppendVarint(b, 2)
	var e []byte
	e = protowire.AppendTag(e, 1, protowire.BytesType)
	e = protowire.AppendString(e, "errs")
	e = protowire.AppendTag(e, 2, protowire.VarintType)
	e = protowire.AppendVarint(e, 3)
	b = protowire.AppendTag(b, 6, protowire.BytesType)
	b = protowire.AppendBytes(b, e)
	return b
}

// descriptorSet compiles testdata/reading.proto and writes its descriptor
// set, as protoc -o would.
func descriptorSet(t *testing.T) string {
	t.Helper()
	pd, _, err := newProtobuf(ProtobufConfig{Message: "acme.v1.Reading", Files: []string{"testdata/reading.proto"}})
	if err != nil {
		t.Fatal(err)
	}
	set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{protodesc.ToFileDescriptorProto(pd.md.ParentFile())}}
	b, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "reading.binpb")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDecode(t *testing.T) {
	ds := descriptorSet(t)
	cfg := Config{Bindings: []BindingConfig{
		{Topic: "json/valid/#", Schema: "testdata/telemetry.schema.json"},
		{Topic: "json/pass/#", Schema: "testdata/telemetry.schema.json", OnInvalid: OnInvalidPass},
		{Topic: "raw/#", Decoder: DecoderRaw},
		{Topic: "mp/#", Decoder: DecoderMsgpack, Schema: "testdata/telemetry.schema.json"},
		{Topic: "cbor/#", Decoder: DecoderCBOR},
		{Topic: "pb/src/#", Decoder: DecoderProtobuf, Protobuf: ProtobufConfig{Message: "acme.v1.Reading", Files: []string{"testdata/reading.proto"}}},
		{Topic: "pb/set/#", Decoder: DecoderProtobuf, Protobuf: ProtobufConfig{Message: "acme.v1.Reading", DescriptorSet: ds}},
		{Topic: "+/valid/#", Decoder: DecoderRaw}, // shadowed by json/valid/#: the first match wins
	}}
	reg := prometheus.NewRegistry()
	d, err := New(cfg, Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	telemetry := map[string]any{"device": "d1", "temp": 21.5}
	wantPB := map[string]any{"device": "d1", "temp": 23.0, "tsMs": int64(-5), "tags": []any{"a"},
		"status": "FAULT", "counters": map[string]any{"errs": int64(3)}}
	tests := []struct {
		name, topic string
		payload     []byte
		want        any
		wantErr     string // substring of the error
		dead        bool
		path        string
	}{
		{name: "json valid", topic: "json/valid/x", payload: []byte(`{"device":"d1","temp":21.5}`), want: telemetry},
		{name: "json invalid", topic: "json/valid/x", payload: []byte(`{"device":"d1","temp":900}`),
			wantErr: "maximum", dead: true, path: "/temp"},
		{name: "json missing", topic: "json/valid/x", payload: []byte(`{"temp":1}`), wantErr: "device", dead: true, path: ""},
		{name: "json undecodable", topic: "json/valid/x", payload: []byte(`{"device":`), wantErr: "decoding json", dead: true},
		{name: "json pass", topic: "json/pass/x", payload: []byte(`{"device":1,"temp":1}`), wantErr: "/device", path: "/device"},
		{name: "unbound json", topic: "other", payload: []byte(`[1,"a",null]`), want: []any{1.0, "a", nil}},
		{name: "raw", topic: "raw/x", payload: []byte{0, 1, 2}, want: []byte{0, 1, 2}},
		{name: "msgpack", topic: "mp/x", payload: mustMarshal(t, msgpack.Marshal, map[string]any{"device": "d1", "temp": 21.5, "n": uint8(7), "tags": []string{"a"}}),
			want: map[string]any{"device": "d1", "temp": 21.5, "n": int64(7), "tags": []any{"a"}}},
		{name: "msgpack invalid", topic: "mp/x", payload: mustMarshal(t, msgpack.Marshal, map[string]any{"device": "d1"}), wantErr: "temp", dead: true},
		{name: "msgpack trailing", topic: "mp/x", payload: append(mustMarshal(t, msgpack.Marshal, 1), 1), wantErr: "after the value", dead: true},
		{name: "msgpack huge array", topic: "mp/x", payload: []byte{0xdd, 0xdd, 0x30, 0x22, 0x01, 0x30}, wantErr: "declares", dead: true},
		{name: "msgpack too deep", topic: "mp/x", payload: append(bytes.Repeat([]byte{0x91}, 100), 1), wantErr: "too deeply", dead: true},
		{name: "cbor", topic: "cbor/x", payload: mustMarshal(t, cbor.Marshal, map[any]any{"a": -3, 7: []byte{1}, "f": float32(1.5), "big": uint64(1 << 63)}),
			want: map[string]any{"a": int64(-3), "7": []byte{1}, "f": 1.5, "big": uint64(1 << 63)}},
		{name: "cbor truncated", topic: "cbor/x", payload: []byte{0xa1, 0x61}, wantErr: "CBOR", dead: true},
		// Keys 3 and "3" (or simple value 3) both read as "3": keeping
		// either value would depend on map order (found by FuzzDecoders).
		{name: "cbor keys colliding", topic: "cbor/x", payload: mustMarshal(t, cbor.Marshal, map[any]any{3: 1, "3": 2}),
			wantErr: `two map keys read as "3"`, dead: true},
		{name: "cbor int and simple keys colliding", topic: "cbor/x", payload: []byte("\xa3\x30\x00\xe3\x00\x03\x30"),
			wantErr: `two map keys read as "3"`, dead: true},
		{name: "protobuf from source", topic: "pb/src/x", payload: readingPB("d1", true), want: wantPB},
		{name: "protobuf from descriptor set", topic: "pb/set/x", payload: readingPB("d1", true), want: wantPB},
		{name: "protobuf required field", topic: "pb/set/x", payload: readingPB("", false), wantErr: "required", dead: true},
		{name: "protobuf garbage", topic: "pb/src/x", payload: []byte{0xff}, wantErr: "acme.v1.Reading", dead: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Decode(tt.topic, tt.payload)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("Decode = %#v, want %#v", got, tt.want)
				}
				return
			}
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("Decode error = %v, want *InvalidError", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || inv.DeadLetter != tt.dead || inv.Path != tt.path || got != nil {
				t.Fatalf("Decode = %v, %q (dead %v, path %q), want error containing %q, dead %v, path %q",
					got, err, inv.DeadLetter, inv.Path, tt.wantErr, tt.dead, tt.path)
			}
		})
	}
	if n := testutil.ToFloat64(invalidCounter(t, reg, "json/valid/#", "validate")); n != 2 {
		t.Fatalf("validate errors = %v, want 2", n)
	}
}

func invalidCounter(t *testing.T, reg *prometheus.Registry, binding, stage string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "sluice_schemas_invalid_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := m.GetLabel()
			if l[0].GetValue() == binding && l[1].GetValue() == stage {
				c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
				c.Add(m.GetCounter().GetValue())
				return c
			}
		}
	}
	t.Fatalf("no counter for %s %s", binding, stage)
	return nil
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"valid", Config{Bindings: []BindingConfig{{Topic: "a/+"}}}, nil},
		{"bad binding", Config{Bindings: []BindingConfig{{Topic: "a/#/b", Decoder: "xml", OnInvalid: "drop"}}},
			[]string{"bindings[0].topic: invalid", "bindings[0].decoder: unknown", "bindings[0].on_invalid: unknown"}},
		{"protobuf", Config{Bindings: []BindingConfig{{Topic: "a"}, {Topic: "b", Decoder: DecoderProtobuf}}},
			[]string{"bindings[1].protobuf.message: required", "bindings[1].protobuf: exactly one"}},
		{"raw schema", Config{Bindings: []BindingConfig{{Decoder: DecoderRaw, Schema: "x.json"}}},
			[]string{"bindings[0].topic: required", "bindings[0].schema: a raw payload"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.cfg.Validate()
			if len(errs) != len(tt.want) {
				t.Fatalf("Validate = %v, want %d errors", errs, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want prefix %q", i, errs[i], w)
				}
			}
		})
	}
}

func TestNewCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		b    BindingConfig
		want string
	}{
		{"broken schema", BindingConfig{Topic: "a", Schema: "testdata/broken.schema.json"}, "schemas.bindings[0].schema: compiling JSON Schema testdata/broken.schema.json"},
		{"missing schema", BindingConfig{Topic: "a", Schema: "testdata/none.json"}, "schemas.bindings[0].schema: compiling JSON Schema testdata/none.json"},
		{"unknown message", BindingConfig{Topic: "a", Decoder: DecoderProtobuf, Protobuf: ProtobufConfig{Message: "acme.v1.Nope", Files: []string{"testdata/reading.proto"}}}, "finding message acme.v1.Nope"},
		{"bad descriptor set", BindingConfig{Topic: "a", Decoder: DecoderProtobuf, Protobuf: ProtobufConfig{Message: "acme.v1.Reading", DescriptorSet: "testdata/reading.proto"}}, "parsing descriptor set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{Bindings: []BindingConfig{tt.b}}, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v, want %q", err, tt.want)
			}
		})
	}
}
