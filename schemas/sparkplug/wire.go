package sparkplug

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The Sparkplug B payload schema (Eclipse Sparkplug 3.0, chapter 6.4),
// decoded by hand from the protobuf wire format:
//
//	Payload  { uint64 timestamp = 1; repeated Metric metrics = 2;
//	           uint64 seq = 3; string uuid = 4; bytes body = 5; }
//	Metric   { string name = 1; uint64 alias = 2; uint64 timestamp = 3;
//	           uint32 datatype = 4; bool is_historical = 5;
//	           bool is_transient = 6; bool is_null = 7; MetaData metadata = 8;
//	           PropertySet properties = 9;
//	           oneof value { uint32 int_value = 10; uint64 long_value = 11;
//	             float float_value = 12; double double_value = 13;
//	             bool boolean_value = 14; string string_value = 15;
//	             bytes bytes_value = 16; DataSet dataset_value = 17;
//	             Template template_value = 18; bytes extension_value = 19; } }
//	MetaData { bool is_multi_part = 1; string content_type = 2; uint64 size = 3;
//	           uint64 seq = 4; string file_name = 5; string file_type = 6;
//	           string md5 = 7; string description = 8; }
//	PropertySet { repeated string keys = 1; repeated PropertyValue values = 2; }
//	PropertyValue { uint32 type = 1; bool is_null = 2; oneof value {
//	           uint32 int_value = 3; uint64 long_value = 4; float float_value = 5;
//	           double double_value = 6; bool boolean_value = 7;
//	           string string_value = 8; PropertySet propertyset_value = 9;
//	           PropertySetList propertysets_value = 10; bytes extension = 11; } }
//	PropertySetList { repeated PropertySet propertyset = 1; }
//	DataSet  { uint64 num_of_columns = 1; repeated string columns = 2;
//	           repeated uint32 types = 3; repeated Row rows = 4; }
//	Row      { repeated DataSetValue elements = 1; }
//	DataSetValue { oneof value { uint32 int_value = 1; uint64 long_value = 2;
//	           float float_value = 3; double double_value = 4;
//	           bool boolean_value = 5; string string_value = 6; bytes extension = 7; } }
//	Template { string version = 1; repeated Metric metrics = 2;
//	           repeated Parameter parameters = 3; string template_ref = 4;
//	           bool is_definition = 5; }
//	Parameter { string name = 1; uint32 type = 2; oneof value {
//	           uint32 int_value = 3; uint64 long_value = 4; float float_value = 5;
//	           double double_value = 6; bool boolean_value = 7;
//	           string string_value = 8; bytes extension = 9; } }

// maxNesting bounds templates and property sets nested in one another.
const maxNesting = 16

var errTruncated = errors.New("truncated field")

// Payload is a decoded Sparkplug B payload.
type Payload struct {
	Timestamp    uint64
	HasTimestamp bool
	Metrics      []Metric
	Seq          uint64
	HasSeq       bool
	UUID         string
	Body         []byte
}

// Metric is one decoded metric. Its value is kept raw (Kind is the
// protobuf field number of the oneof, 0 when absent) until its datatype is
// known: data messages usually carry only an alias.
type Metric struct {
	Name         string
	HasName      bool
	Alias        uint64
	HasAlias     bool
	Timestamp    uint64
	HasTimestamp bool
	Datatype     uint32
	IsHistorical bool
	IsTransient  bool
	IsNull       bool
	Metadata     map[string]any
	Properties   map[string]any

	Kind  protowire.Number
	num   uint64 // int, long, float and double bits, boolean
	bytes []byte // string, bytes, extension
	tree  any    // decoded dataset or template
}

// DecodePayload decodes a Sparkplug B payload.
func DecodePayload(b []byte) (*Payload, error) {
	p := &Payload{}
	if err := p.decode(b); err != nil {
		return nil, err
	}
	return p, nil
}

// countMetrics counts the metrics field tags of a payload, so that its
// metrics slice is allocated once. It stops at the first malformed field.
func countMetrics(b []byte) int {
	n := 0
	for len(b) > 0 {
		num, _, _, _, m, err := field(b)
		if err != nil {
			break
		}
		if num == 2 {
			n++
		}
		b = b[m:]
	}
	return n
}

// decode decodes b into p, reusing p's metrics slice. A new slice is
// sized by counting the metrics first; a reused one (Decoder pools
// payloads) grows as needed, so b is read once.
func (p *Payload) decode(b []byte) error {
	if cap(p.Metrics) == 0 {
		p.Metrics = make([]Metric, 0, countMetrics(b))
	}
	for len(b) > 0 {
		num, typ, u, v, n, err := field(b)
		if err != nil {
			return fmt.Errorf("decoding payload: %w", err)
		}
		b = b[n:]
		switch num {
		case 1:
			err = want(num, typ, protowire.VarintType)
			p.Timestamp, p.HasTimestamp = u, true
		case 2:
			if err = want(num, typ, protowire.BytesType); err == nil {
				p.Metrics = append(p.Metrics, Metric{})
				err = decodeMetric(v, &p.Metrics[len(p.Metrics)-1], 0)
			}
		case 3:
			err = want(num, typ, protowire.VarintType)
			p.Seq, p.HasSeq = u, true
		case 4:
			err = want(num, typ, protowire.BytesType)
			p.UUID = string(v)
		case 5:
			err = want(num, typ, protowire.BytesType)
			p.Body = v
		}
		if err != nil {
			return fmt.Errorf("decoding payload: %w", err)
		}
	}
	return nil
}

func decodeMetric(b []byte, m *Metric, depth int) error {
	if depth > maxNesting {
		return errors.New("metrics nested too deeply")
	}
	for len(b) > 0 {
		// Fast path: the fields of a data metric, read in place. Any other
		// field, and any field that does not fit b, takes the general path.
		switch tag := b[0]; tag {
		case 0x10, 0x18, 0x20, 0x50, 0x58, 0x70: // alias, timestamp, datatype, int, long, boolean
			u, n := uvarint(b[1:])
			if n == 0 {
				break
			}
			b = b[1+n:]
			switch tag {
			case 0x10:
				m.Alias, m.HasAlias = u, true
			case 0x18:
				m.Timestamp, m.HasTimestamp = u, true
			case 0x20:
				m.Datatype = uint32(u)
			default:
				m.Kind, m.num = protowire.Number(tag>>3), u
			}
			continue
		case 0x65: // float
			if len(b) >= 5 {
				m.Kind, m.num = 12, uint64(binary.LittleEndian.Uint32(b[1:]))
				b = b[5:]
				continue
			}
		case 0x69: // double
			if len(b) >= 9 {
				m.Kind, m.num = 13, binary.LittleEndian.Uint64(b[1:])
				b = b[9:]
				continue
			}
		}
		num, typ, u, v, n, err := field(b)
		if err != nil {
			return fmt.Errorf("metric: %w", err)
		}
		b = b[n:]
		switch num {
		case 1:
			err = want(num, typ, protowire.BytesType)
			m.Name, m.HasName = string(v), true
		case 2:
			err = want(num, typ, protowire.VarintType)
			m.Alias, m.HasAlias = u, true
		case 3:
			err = want(num, typ, protowire.VarintType)
			m.Timestamp, m.HasTimestamp = u, true
		case 4:
			err = want(num, typ, protowire.VarintType)
			m.Datatype = uint32(u)
		case 5:
			err = want(num, typ, protowire.VarintType)
			m.IsHistorical = u != 0
		case 6:
			err = want(num, typ, protowire.VarintType)
			m.IsTransient = u != 0
		case 7:
			err = want(num, typ, protowire.VarintType)
			m.IsNull = u != 0
		case 8:
			if err = want(num, typ, protowire.BytesType); err == nil {
				m.Metadata, err = decodeMetadata(v)
			}
		case 9:
			if err = want(num, typ, protowire.BytesType); err == nil {
				m.Properties, err = decodePropertySet(v, depth+1)
			}
		case 10, 11, 14:
			err = want(num, typ, protowire.VarintType)
			m.Kind, m.num = num, u
		case 12:
			err = want(num, typ, protowire.Fixed32Type)
			m.Kind, m.num = num, u
		case 13:
			err = want(num, typ, protowire.Fixed64Type)
			m.Kind, m.num = num, u
		case 15, 16, 19:
			err = want(num, typ, protowire.BytesType)
			m.Kind, m.bytes = num, v
		case 17:
			if err = want(num, typ, protowire.BytesType); err == nil {
				m.Kind = num
				m.tree, err = decodeDataSet(v)
			}
		case 18:
			if err = want(num, typ, protowire.BytesType); err == nil {
				m.Kind = num
				m.tree, err = decodeTemplate(v, depth+1)
			}
		}
		if err != nil {
			return fmt.Errorf("metric %q: %w", m.Name, err)
		}
	}
	return nil
}

func decodeMetadata(b []byte) (map[string]any, error) {
	out := map[string]any{}
	names := [...]string{1: "is_multi_part", 2: "content_type", 3: "size", 4: "seq", 5: "file_name", 6: "file_type", 7: "md5", 8: "description"}
	for len(b) > 0 {
		num, typ, u, v, n, err := field(b)
		if err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
		b = b[n:]
		switch num {
		case 1:
			err = want(num, typ, protowire.VarintType)
			out[names[num]] = u != 0
		case 3, 4:
			err = want(num, typ, protowire.VarintType)
			out[names[num]] = intValue(u)
		case 2, 5, 6, 7, 8:
			err = want(num, typ, protowire.BytesType)
			out[names[num]] = string(v)
		}
		if err != nil {
			return nil, fmt.Errorf("metadata: %w", err)
		}
	}
	return out, nil
}

// decodePropertySet decodes keys and values into one map.
func decodePropertySet(b []byte, depth int) (map[string]any, error) {
	if depth > maxNesting {
		return nil, errors.New("property sets nested too deeply")
	}
	var keys []string
	var vals []any
	for len(b) > 0 {
		num, typ, _, v, n, err := field(b)
		if err != nil {
			return nil, fmt.Errorf("property set: %w", err)
		}
		b = b[n:]
		switch num {
		case 1:
			err = want(num, typ, protowire.BytesType)
			keys = append(keys, string(v))
		case 2:
			if err = want(num, typ, protowire.BytesType); err == nil {
				var pv any
				pv, err = decodePropertyValue(v, depth)
				vals = append(vals, pv)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("property set: %w", err)
		}
	}
	if len(keys) != len(vals) {
		return nil, fmt.Errorf("property set: %d keys and %d values", len(keys), len(vals))
	}
	out := make(map[string]any, len(keys))
	for i, k := range keys {
		out[k] = vals[i]
	}
	return out, nil
}

// decodePropertyValue returns the value converted by its type.
func decodePropertyValue(b []byte, depth int) (any, error) {
	var dt uint32
	var isNull bool
	var kind protowire.Number
	var u uint64
	var raw []byte
	var tree any
	for len(b) > 0 {
		num, typ, x, v, n, err := field(b)
		if err != nil {
			return nil, fmt.Errorf("property value: %w", err)
		}
		b = b[n:]
		switch num {
		case 1:
			err = want(num, typ, protowire.VarintType)
			dt = uint32(x)
		case 2:
			err = want(num, typ, protowire.VarintType)
			isNull = x != 0
		case 3, 4, 7:
			err = want(num, typ, protowire.VarintType)
			kind, u = num, x
		case 5:
			err = want(num, typ, protowire.Fixed32Type)
			kind, u = num, x
		case 6:
			err = want(num, typ, protowire.Fixed64Type)
			kind, u = num, x
		case 8, 11:
			err = want(num, typ, protowire.BytesType)
			kind, raw = num, v
		case 9:
			if err = want(num, typ, protowire.BytesType); err == nil {
				kind = num
				tree, err = decodePropertySet(v, depth+1)
			}
		case 10:
			if err = want(num, typ, protowire.BytesType); err == nil {
				kind = num
				tree, err = decodePropertySetList(v, depth+1)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("property value: %w", err)
		}
	}
	if isNull {
		return nil, nil
	}
	// PropertyValue numbers its oneof from 3; Metric from 10: shift.
	switch kind {
	case 0:
		return nil, nil
	case 9, 10:
		return tree, nil
	case 11:
		return raw, nil
	}
	return scalar(nil, dt, kind+7, u, raw)
}

func decodePropertySetList(b []byte, depth int) ([]any, error) {
	var out []any
	for len(b) > 0 {
		num, typ, _, v, n, err := field(b)
		if err != nil {
			return nil, fmt.Errorf("property set list: %w", err)
		}
		b = b[n:]
		if num == 1 {
			if err := want(num, typ, protowire.BytesType); err != nil {
				return nil, err
			}
			ps, err := decodePropertySet(v, depth)
			if err != nil {
				return nil, err
			}
			out = append(out, ps)
		}
	}
	return out, nil
}

// intValue is u as int64, or as uint64 beyond math.MaxInt64.
func intValue(u uint64) any {
	if u > math.MaxInt64 {
		return u
	}
	return int64(u)
}
