package sparkplug

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Message is a Sparkplug B payload to encode: a Rebirth command, or test
// traffic.
type Message struct {
	Timestamp uint64
	Seq       uint64
	HasSeq    bool
	Metrics   []OutMetric
}

// OutMetric is a metric to encode. Value must suit Datatype: an integer
// type (int, int64, uint64) for the integer and DateTime types, float32 or
// float64 for Float and Double, bool, string, or []byte for Bytes, File
// and the array types. A nil Value is encoded as is_null.
type OutMetric struct {
	Name      string
	Alias     uint64
	HasAlias  bool
	Timestamp uint64
	Datatype  uint32
	Value     any
}

// Marshal encodes m in the protobuf wire format.
func (m *Message) Marshal() ([]byte, error) {
	var b []byte
	if m.Timestamp != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, m.Timestamp)
	}
	for i := range m.Metrics {
		mb, err := m.Metrics[i].marshal()
		if err != nil {
			return nil, err
		}
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, mb)
	}
	if m.HasSeq {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, m.Seq)
	}
	return b, nil
}

func (o *OutMetric) marshal() ([]byte, error) {
	var b []byte
	if o.Name != "" {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, o.Name)
	}
	if o.HasAlias {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, o.Alias)
	}
	if o.Timestamp != 0 {
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, o.Timestamp)
	}
	if o.Datatype != 0 {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(o.Datatype))
	}
	if o.Value == nil {
		b = protowire.AppendTag(b, 7, protowire.VarintType)
		return protowire.AppendVarint(b, 1), nil
	}
	var u uint64
	switch v := o.Value.(type) {
	case int:
		u = uint64(v)
	case int64:
		u = uint64(v)
	case uint64:
		u = v
	case float32:
		b = protowire.AppendTag(b, 12, protowire.Fixed32Type)
		return protowire.AppendFixed32(b, math.Float32bits(v)), nil
	case float64:
		if o.Datatype == TypeFloat {
			b = protowire.AppendTag(b, 12, protowire.Fixed32Type)
			return protowire.AppendFixed32(b, math.Float32bits(float32(v))), nil
		}
		b = protowire.AppendTag(b, 13, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, math.Float64bits(v)), nil
	case bool:
		b = protowire.AppendTag(b, 14, protowire.VarintType)
		return protowire.AppendVarint(b, protowire.EncodeBool(v)), nil
	case string:
		b = protowire.AppendTag(b, 15, protowire.BytesType)
		return protowire.AppendString(b, v), nil
	case []byte:
		b = protowire.AppendTag(b, 16, protowire.BytesType)
		return protowire.AppendBytes(b, v), nil
	default:
		return nil, fmt.Errorf("encoding metric %q: unsupported value type %T", o.Name, o.Value)
	}
	switch o.Datatype {
	case TypeInt8, TypeInt16, TypeInt32, TypeUInt8, TypeUInt16, TypeUInt32:
		b = protowire.AppendTag(b, 10, protowire.VarintType)
		return protowire.AppendVarint(b, uint64(uint32(u))), nil
	}
	b = protowire.AppendTag(b, 11, protowire.VarintType)
	return protowire.AppendVarint(b, u), nil
}

// RebirthPayload is the NCMD payload asking an edge node to publish its
// births again: the boolean metric "Node Control/Rebirth" set to true.
func RebirthPayload(timestampMs uint64) []byte {
	m := Message{Timestamp: timestampMs, Metrics: []OutMetric{{
		Name: "Node Control/Rebirth", Datatype: TypeBoolean, Value: true,
	}}}
	b, _ := m.Marshal() // a bool always encodes
	return b
}
