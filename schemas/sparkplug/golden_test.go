package sparkplug

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func msg(fields ...[]byte) []byte {
	var b []byte
	for _, f := range fields {
		b = append(b, f...)
	}
	return b
}

func str(num protowire.Number, s string) []byte {
	return protowire.AppendString(protowire.AppendTag(nil, num, protowire.BytesType), s)
}

func sub(num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), v)
}

func vint(num protowire.Number, u uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), u)
}

func f32(num protowire.Number, f float32) []byte {
	return protowire.AppendFixed32(protowire.AppendTag(nil, num, protowire.Fixed32Type), math.Float32bits(f))
}

// complexPayload is a DBIRTH-like payload with every value kind of the
// specification: arrays, a data set, a template, properties and metadata.
func complexPayload() []byte {
	i16 := binary.LittleEndian.AppendUint16(nil, uint16(0xfffe))
	i16 = binary.LittleEndian.AppendUint16(i16, 300)
	bools := []byte{12, 0, 0, 0, 0x34, 0xd0}
	props := msg(str(1, "engUnit"), sub(2, msg(vint(1, TypeString), str(8, "degC"))),
		str(1, "nested"), sub(2, msg(vint(1, TypePropertySet), sub(9, msg(str(1, "k"), sub(2, msg(vint(1, TypeInt32), vint(3, uint64(uint32(0xffffffff))))))))))
	dataset := msg(vint(1, 2), str(2, "name"), str(2, "v"), sub(3, []byte{TypeString, TypeDouble}),
		sub(4, msg(sub(1, str(6, "a")), sub(1, protowire.AppendFixed64(protowire.AppendTag(nil, 4, protowire.Fixed64Type), math.Float64bits(1.5))))))
	template := msg(str(1, "v1"), str(4, "Motor"), sub(2, msg(str(1, "amps"), vint(4, TypeFloat), f32(12, 3.5))),
		sub(3, msg(str(1, "max"), vint(2, TypeInt8), vint(3, 0xff))))
	return msg(vint(1, 1700000000000), vint(3, 9), str(4, "uuid-1"), sub(5, []byte{1, 2}),
		sub(2, msg(str(1, "i16s"), vint(2, 1), vint(4, TypeInt16Array), sub(16, i16))),
		sub(2, msg(str(1, "bools"), vint(2, 2), vint(4, TypeBooleanArray), sub(16, bools))),
		sub(2, msg(str(1, "strs"), vint(2, 3), vint(4, TypeStringArray), sub(16, []byte("ab\x00c\x00")))),
		sub(2, msg(str(1, "temp"), vint(2, 4), vint(4, TypeDouble), vint(5, 1), sub(9, props),
			sub(8, msg(vint(1, 0), str(2, "text/plain"), vint(3, 10), str(8, "probe"))),
			protowire.AppendFixed64(protowire.AppendTag(nil, 13, protowire.Fixed64Type), math.Float64bits(-1.25)))),
		sub(2, msg(str(1, "table"), vint(2, 5), vint(4, TypeDataSet), sub(17, dataset))),
		sub(2, msg(str(1, "motor"), vint(2, 6), vint(4, TypeTemplate), sub(18, template))),
		sub(2, msg(str(1, "missing"), vint(2, 7), vint(4, TypeInt32), vint(7, 1))),
		sub(2, msg(str(1, "dt"), vint(2, 8), vint(4, TypeDateTime), vint(11, 1700000000001))),
	)
}

func TestGolden(t *testing.T) {
	d, _, _ := newDecoder(t, "")
	tests := []struct {
		name, topic string
		payload     []byte
	}{
		{"nbirth", "spBv1.0/plant/NBIRTH/edge1", nbirth(t)},
		{"dbirth_all_types", "spBv1.0/plant/DBIRTH/edge1/dev1", complexPayload()},
		{"ddata_aliases", "spBv1.0/plant/DDATA/edge1/dev1", enc(t, 10,
			OutMetric{Alias: 1, HasAlias: true, Value: binary.LittleEndian.AppendUint16(nil, 7)},
			OutMetric{Alias: 4, HasAlias: true, Value: 2.5},
			OutMetric{Alias: 2, HasAlias: true, Value: float32(1)}, // the device table shadows the node's alias 2
		)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := filepath.Join("testdata", tt.name+".bin")
			golden := filepath.Join("testdata", tt.name+".golden.json")
			v, err := d.Decode(tt.topic, tt.payload)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				if err := os.WriteFile(in, tt.payload, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(want) != string(got)+"\n" {
				t.Fatalf("decoded %s:\n%s\nwant:\n%s", tt.name, got, want)
			}
		})
	}
}
