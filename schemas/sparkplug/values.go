package sparkplug

import (
	"encoding/binary"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Datatype numbers from the Sparkplug 3.0 specification (6.4.16).
const (
	TypeUnknown         = 0
	TypeInt8            = 1
	TypeInt16           = 2
	TypeInt32           = 3
	TypeInt64           = 4
	TypeUInt8           = 5
	TypeUInt16          = 6
	TypeUInt32          = 7
	TypeUInt64          = 8
	TypeFloat           = 9
	TypeDouble          = 10
	TypeBoolean         = 11
	TypeString          = 12
	TypeDateTime        = 13
	TypeText            = 14
	TypeUUID            = 15
	TypeDataSet         = 16
	TypeBytes           = 17
	TypeFile            = 18
	TypeTemplate        = 19
	TypePropertySet     = 20
	TypePropertySetList = 21
	TypeInt8Array       = 22
	TypeInt16Array      = 23
	TypeInt32Array      = 24
	TypeInt64Array      = 25
	TypeUInt8Array      = 26
	TypeUInt16Array     = 27
	TypeUInt32Array     = 28
	TypeUInt64Array     = 29
	TypeFloatArray      = 30
	TypeDoubleArray     = 31
	TypeBooleanArray    = 32
	TypeStringArray     = 33
	TypeDateTimeArray   = 34
)

var typeNames = [...]string{"Unknown", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32",
	"UInt64", "Float", "Double", "Boolean", "String", "DateTime", "Text", "UUID", "DataSet", "Bytes",
	"File", "Template", "PropertySet", "PropertySetList", "Int8Array", "Int16Array", "Int32Array",
	"Int64Array", "UInt8Array", "UInt16Array", "UInt32Array", "UInt64Array", "FloatArray",
	"DoubleArray", "BooleanArray", "StringArray", "DateTimeArray"}

// typeNameValues holds the names boxed once: storing one in a map
// allocates nothing.
var typeNameValues = func() []any {
	v := make([]any, len(typeNames))
	for i, n := range typeNames {
		v[i] = n
	}
	return v
}()

func typeNameValue(dt uint32) any {
	if int(dt) < len(typeNameValues) {
		return typeNameValues[dt]
	}
	return TypeName(dt)
}

// TypeName returns the specification's name of datatype dt.
func TypeName(dt uint32) string {
	if int(dt) < len(typeNames) {
		return typeNames[dt]
	}
	return fmt.Sprintf("Type%d", dt)
}

// scalar converts a raw value of Metric oneof field kind (10 int_value …
// 16 bytes_value) to the rules' value types as datatype dt says, boxed
// into s (nil: each value boxed on its own).
func scalar(s *slab, dt uint32, kind protowire.Number, u uint64, raw []byte) (any, error) {
	if kind == 10 || kind == 11 {
		// Signed types are two's complement in either field width.
		switch dt {
		case TypeInt8:
			return s.int64(int64(int8(u))), nil
		case TypeInt16:
			return s.int64(int64(int16(u))), nil
		case TypeInt32:
			return s.int64(int64(int32(u))), nil
		case TypeInt64, TypeDateTime:
			return s.int64(int64(u)), nil
		case TypeUInt8, TypeUInt16, TypeUInt32:
			return s.int64(int64(uint32(u))), nil
		}
		if kind == 10 {
			return s.int64(int64(uint32(u))), nil
		}
		return s.int(u), nil
	}
	switch kind {
	case 12:
		return s.float64(float64(math.Float32frombits(uint32(u)))), nil
	case 13:
		return s.float64(math.Float64frombits(u)), nil
	case 14:
		return u != 0, nil
	case 15:
		return s.string(string(raw)), nil
	case 16:
		if dt >= TypeInt8Array && dt <= TypeDateTimeArray {
			return decodeArray(dt, raw)
		}
		return raw, nil
	}
	return nil, nil
}

// Value converts m's value as datatype dt says: m.Datatype, or the
// datatype its birth certificate gave the alias.
func (m *Metric) Value(dt uint32) (any, error) { return m.value(nil, dt) }

// value converts m's value, typed dt, boxed into s.
func (m *Metric) value(s *slab, dt uint32) (any, error) {
	if m.IsNull {
		return nil, nil
	}
	switch m.Kind {
	case 0:
		return nil, nil
	case 17, 18:
		return m.tree, nil
	case 19:
		return m.bytes, nil
	}
	return scalar(s, dt, m.Kind, m.num, m.bytes)
}

// decodeArray decodes an array datatype's little-endian packed bytes
// (Sparkplug 3.0, 6.4.17).
func decodeArray(dt uint32, b []byte) (any, error) {
	size := map[uint32]int{TypeInt8Array: 1, TypeUInt8Array: 1, TypeInt16Array: 2, TypeUInt16Array: 2,
		TypeInt32Array: 4, TypeUInt32Array: 4, TypeFloatArray: 4, TypeInt64Array: 8, TypeUInt64Array: 8,
		TypeDoubleArray: 8, TypeDateTimeArray: 8}[dt]
	switch dt {
	case TypeStringArray:
		var out []any
		for len(b) > 0 {
			i := 0
			for i < len(b) && b[i] != 0 {
				i++
			}
			if i == len(b) {
				return nil, fmt.Errorf("decoding %s: string not terminated", TypeName(dt))
			}
			out = append(out, string(b[:i]))
			b = b[i+1:]
		}
		return out, nil
	case TypeBooleanArray:
		if len(b) < 4 {
			return nil, fmt.Errorf("decoding %s: no count", TypeName(dt))
		}
		n := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b))*8 {
			return nil, fmt.Errorf("decoding %s: %d values in %d bytes", TypeName(dt), n, len(b))
		}
		out := make([]any, n)
		for i := range out {
			out[i] = b[i/8]&(0x80>>(i%8)) != 0
		}
		return out, nil
	}
	if len(b)%size != 0 {
		return nil, fmt.Errorf("decoding %s: %d bytes is not a multiple of %d", TypeName(dt), len(b), size)
	}
	out := make([]any, len(b)/size)
	for i := range out {
		e := b[i*size : (i+1)*size]
		switch dt {
		case TypeInt8Array:
			out[i] = int64(int8(e[0]))
		case TypeUInt8Array:
			out[i] = int64(e[0])
		case TypeInt16Array:
			out[i] = int64(int16(binary.LittleEndian.Uint16(e)))
		case TypeUInt16Array:
			out[i] = int64(binary.LittleEndian.Uint16(e))
		case TypeInt32Array:
			out[i] = int64(int32(binary.LittleEndian.Uint32(e)))
		case TypeUInt32Array:
			out[i] = int64(binary.LittleEndian.Uint32(e))
		case TypeFloatArray:
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(e)))
		case TypeInt64Array, TypeDateTimeArray:
			out[i] = int64(binary.LittleEndian.Uint64(e))
		case TypeUInt64Array:
			out[i] = intValue(binary.LittleEndian.Uint64(e))
		case TypeDoubleArray:
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(e))
		}
	}
	return out, nil
}

// metricMap is the form rules see of one metric, named name (a string)
// and typed dt, both resolved from the alias table when the metric has
// only an alias. ts, when not nil, is m.Timestamp already boxed: names and
// timestamps shared by many metrics are boxed once. tmpl, when not nil,
// is the alias's name, datatype and alias (see slab.fromTemplate).
// Values are boxed into s.
func (m *Metric) metricMap(s *slab, name any, dt uint32, ts any, tmpl *metricTemplate) (map[string]any, error) {
	v, err := m.value(s, dt)
	if err != nil {
		return nil, fmt.Errorf("metric %q: %w", name, err)
	}
	if tmpl != nil && !m.IsHistorical && !m.IsTransient && !m.IsNull && m.Metadata == nil && m.Properties == nil {
		out := s.fromTemplate(tmpl)
		out["value"] = v
		if m.HasTimestamp {
			if ts == nil {
				ts = s.int(m.Timestamp)
			}
			out["timestamp"] = ts
		}
		return out, nil
	}
	out := s.newMap(6)
	out["name"] = name
	out["datatype"] = typeNameValue(dt)
	out["value"] = v
	if m.HasAlias {
		out["alias"] = s.int(m.Alias)
	}
	if m.HasTimestamp {
		if ts == nil {
			ts = s.int(m.Timestamp)
		}
		out["timestamp"] = ts
	}
	if m.IsHistorical {
		out["is_historical"] = true
	}
	if m.IsTransient {
		out["is_transient"] = true
	}
	if m.IsNull {
		out["is_null"] = true
	}
	if m.Metadata != nil {
		out["metadata"] = m.Metadata
	}
	if m.Properties != nil {
		out["properties"] = m.Properties
	}
	return out, nil
}

func decodeDataSet(b []byte) (map[string]any, error) {
	var cols, types []any
	var dts []uint32
	var rows []any
	var ncols uint64
	for len(b) > 0 {
		num, typ, u, v, n, err := field(b)
		if err != nil {
			return nil, fmt.Errorf("dataset: %w", err)
		}
		b = b[n:]
		switch num {
		case 1:
			err = want(num, typ, protowire.VarintType)
			ncols = u
		case 2:
			err = want(num, typ, protowire.BytesType)
			cols = append(cols, string(v))
		case 3:
			if typ == protowire.VarintType {
				dts = append(dts, uint32(u))
				break
			}
			if err = want(num, typ, protowire.BytesType); err != nil {
				break
			}
			for len(v) > 0 { // packed
				x, m := protowire.ConsumeVarint(v)
				if m < 0 {
					return nil, fmt.Errorf("dataset types: %w", protowire.ParseError(m))
				}
				dts = append(dts, uint32(x))
				v = v[m:]
			}
		case 4:
			err = want(num, typ, protowire.BytesType)
			if err == nil {
				rows = append(rows, v) // decoded below, once types are known
			}
		}
		if err != nil {
			return nil, fmt.Errorf("dataset: %w", err)
		}
	}
	for i, r := range rows {
		row, err := decodeRow(r.([]byte), dts)
		if err != nil {
			return nil, fmt.Errorf("dataset row %d: %w", i, err)
		}
		rows[i] = row
	}
	for _, dt := range dts {
		types = append(types, TypeName(dt))
	}
	return map[string]any{"num_of_columns": intValue(ncols), "columns": cols, "types": types, "rows": rows}, nil
}

func decodeRow(b []byte, dts []uint32) ([]any, error) {
	var out []any
	for len(b) > 0 {
		num, typ, _, v, n, err := field(b)
		if err != nil {
			return nil, err
		}
		b = b[n:]
		if num != 1 {
			continue
		}
		if err := want(num, typ, protowire.BytesType); err != nil {
			return nil, err
		}
		var dt uint32
		if len(out) < len(dts) {
			dt = dts[len(out)]
		}
		var kind protowire.Number
		var u uint64
		var raw []byte
		for len(v) > 0 {
			en, et, x, ev, m, err := field(v)
			if err != nil {
				return nil, err
			}
			v = v[m:]
			if en >= 1 && en <= 7 {
				kind, u, raw = en+9, x, ev
				_ = et
			}
		}
		val, err := scalar(nil, dt, kind, u, raw)
		if err != nil {
			return nil, err
		}
		out = append(out, val)
	}
	return out, nil
}

func decodeTemplate(b []byte, depth int) (map[string]any, error) {
	out := map[string]any{}
	var metrics, params []any
	for len(b) > 0 {
		num, typ, u, v, n, err := field(b)
		if err != nil {
			return nil, fmt.Errorf("template: %w", err)
		}
		b = b[n:]
		switch num {
		case 1:
			err = want(num, typ, protowire.BytesType)
			out["version"] = string(v)
		case 2:
			if err = want(num, typ, protowire.BytesType); err == nil {
				var m Metric
				if err = decodeMetric(v, &m, depth); err == nil {
					var mm map[string]any
					mm, err = m.metricMap(nil, m.Name, m.Datatype, nil, nil)
					metrics = append(metrics, mm)
				}
			}
		case 3:
			if err = want(num, typ, protowire.BytesType); err == nil {
				var p map[string]any
				p, err = decodeParameter(v)
				params = append(params, p)
			}
		case 4:
			err = want(num, typ, protowire.BytesType)
			out["template_ref"] = string(v)
		case 5:
			err = want(num, typ, protowire.VarintType)
			out["is_definition"] = u != 0
		}
		if err != nil {
			return nil, fmt.Errorf("template: %w", err)
		}
	}
	out["metrics"], out["parameters"] = metrics, params
	return out, nil
}

func decodeParameter(b []byte) (map[string]any, error) {
	var name string
	var dt uint32
	var kind protowire.Number
	var u uint64
	var raw []byte
	for len(b) > 0 {
		num, typ, x, v, n, err := field(b)
		if err != nil {
			return nil, fmt.Errorf("parameter: %w", err)
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			name = string(v)
		case num == 2 && typ == protowire.VarintType:
			dt = uint32(x)
		case num >= 3 && num <= 9:
			kind, u, raw = num+7, x, v
		}
	}
	val, err := scalar(nil, dt, kind, u, raw)
	if err != nil {
		return nil, fmt.Errorf("parameter %q: %w", name, err)
	}
	return map[string]any{"name": name, "type": TypeName(dt), "value": val}, nil
}
