package rules

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"github.com/sluicehq/sluice/internal/jsonstr"
	"math"
	"slices"
	"strconv"
	"time"
)

// appendJSON appends v as compact JSON. It handles what expressions and
// decoded payloads produce (maps, lists, strings, numbers, booleans, nil,
// times) without reflection, sorts map keys like encoding/json and does
// not escape HTML characters. Other types go through encoding/json.
func appendJSON(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return appendString(b, x), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case float64:
		return appendFloat(b, x)
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case map[string]any:
		return appendMap(b, x)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSON(b, e); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case []string:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, e)
		}
		return append(b, ']'), nil
	case map[any]any: // expr's fromPairs and groupBy build these
		m := make(map[string]any, len(x))
		for k, e := range x {
			ks, err := mapKey(k)
			if err != nil {
				return b, err
			}
			m[ks] = e
		}
		return appendMap(b, m)
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = e
		}
		return appendMap(b, m)
	case time.Time:
		return appendString(b, x.Format(time.RFC3339Nano)), nil
	case []byte:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, x)
		return append(b, '"'), nil
	}
	j, err := json.Marshal(v)
	if err != nil {
		return b, fmt.Errorf("encoding %T as JSON: %w", v, err)
	}
	return append(b, j...), nil
}

// mapKey turns a map key of an expression's map into a JSON object key:
// strings as they are, numbers and booleans in their JSON form.
func mapKey(k any) (string, error) {
	switch x := k.(type) {
	case string:
		return x, nil
	case bool, int, int64, float64:
		b, err := appendJSON(nil, x)
		return string(b), err
	}
	return "", fmt.Errorf("encoding a map with a %T key as JSON: keys must be strings, numbers or booleans", k)
}

// appendMap appends a JSON object with sorted keys.
func appendMap(b []byte, m map[string]any) ([]byte, error) {
	var small [16]string
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	if len(keys) <= len(small) {
		// insertion sort: cheaper than a general sort for a few keys
		for i := 1; i < len(keys); i++ {
			for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
				keys[j], keys[j-1] = keys[j-1], keys[j]
			}
		}
	} else {
		slices.Sort(keys)
	}
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendJSON(b, m[k]); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendFloat formats like encoding/json: shortest representation,
// exponent form only for very large or small magnitudes.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, fmt.Errorf("encoding %v as JSON: not a finite number", f)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte { return jsonstr.Append(b, s) }

// appendText appends v as template text: strings as they are, numbers in
// their shortest form, nil as nothing, anything else as JSON.
func appendText(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return b, nil
	case string:
		return append(b, x...), nil
	case []byte:
		return append(b, x...), nil
	case float64:
		return appendFloat(b, x)
	case time.Time:
		return x.AppendFormat(b, time.RFC3339Nano), nil
	}
	return appendJSON(b, v)
}

// encodeValue turns a transform result into an output body: strings and
// bytes as they are, everything else as JSON.
func encodeValue(v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return []byte(x), nil
	case []byte:
		return x, nil
	}
	return appendJSON(make([]byte, 0, 256), v)
}

// encodeKey turns a key expression's result into key bytes; nil means the
// default key (the client id).
func encodeKey(v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []byte(x), nil
	case []byte:
		return x, nil
	}
	return appendText(nil, v)
}
