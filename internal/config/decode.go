package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"gopkg.in/yaml.v3"
)

var durationType = reflect.TypeFor[time.Duration]()

// decodeSection decodes raw (the merged value of one section) into a new
// value of typ. The section is wrapped in a one-field struct so that
// mapstructure names every field with its full key path.
func decodeSection(name string, typ reflect.Type, raw any) (reflect.Value, error) {
	wrapper := reflect.StructOf([]reflect.StructField{{
		Name: "Section",
		Type: typ,
		Tag:  reflect.StructTag(`koanf:"` + name + `"`),
	}})
	out := reflect.New(wrapper)
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		TagName:     "koanf",
		ErrorUnused: true,
		DecodeHook:  decodeHook,
		MatchName:   func(mapKey, fieldName string) bool { return mapKey == fieldName },
		Result:      out.Interface(),
	})
	if err != nil {
		return reflect.Value{}, fmt.Errorf("building decoder: %w", err)
	}
	in := map[string]any{}
	if raw != nil {
		in[name] = raw
	}
	if err := dec.Decode(in); err != nil {
		return reflect.Value{}, err
	}
	return out.Elem().Field(0), nil
}

// decodeErrors turns mapstructure's error tree into one *Error per
// problem, with paths in our form and without a source (the caller adds it).
func decodeErrors(err error) []*Error {
	var out []*Error
	for _, leaf := range leafErrors(err) {
		var de *mapstructure.DecodeError
		if !errors.As(leaf, &de) {
			out = append(out, &Error{Msg: leaf.Error()})
			continue
		}
		path := normalizePath(de.Name())
		inner := de.Unwrap()
		msg := inner.Error()
		if keys, ok := strings.CutPrefix(msg, "has invalid keys: "); ok {
			for _, k := range strings.Split(keys, ", ") {
				out = append(out, &Error{Path: joinPath(path, k), Msg: "unknown key"})
			}
			continue
		}
		var ute *mapstructure.UnconvertibleTypeError
		if errors.As(inner, &ute) {
			msg = fmt.Sprintf("cannot use %s as %s", describe(ute.Value), ute.Expected.Type())
		}
		if rest, ok := strings.CutPrefix(msg, "source data must be an array or slice, got "); ok {
			msg = "expected a list, got " + rest
		}
		out = append(out, &Error{Path: path, Msg: msg})
	}
	return out
}

// leafErrors flattens the tree of errors mapstructure returns (a wrapped
// join of joins) into its *mapstructure.DecodeError leaves.
func leafErrors(err error) []error {
	switch e := err.(type) {
	case nil:
		return nil
	case *mapstructure.DecodeError:
		return []error{e}
	case interface{ Unwrap() []error }:
		var out []error
		for _, inner := range e.Unwrap() {
			out = append(out, leafErrors(inner)...)
		}
		return out
	case interface{ Unwrap() error }:
		return leafErrors(e.Unwrap())
	}
	return []error{err}
}

// describe names a decoded value for an error message.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("string %q", x)
	case bool:
		return fmt.Sprintf("boolean %t", x)
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, float32, float64:
		return fmt.Sprintf("number %v", x)
	}
	return fmt.Sprintf("%T", v)
}

// decodeHook converts values to the field types that YAML and environment
// variables cannot express directly, strictly: durations need a unit,
// integers must fit, booleans must be booleans. A string where a list,
// mapping or struct is expected (as from an environment variable) is
// parsed as YAML.
func decodeHook(from, to reflect.Value) (any, error) {
	data := from.Interface()
	t := to.Type()
	if t == durationType {
		return toDuration(data)
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return toInteger(data, t)
	case reflect.Float32, reflect.Float64:
		if s, ok := data.(string); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(s), t.Bits())
			if err != nil {
				return nil, fmt.Errorf("cannot parse %q as %s", s, t)
			}
			return f, nil
		}
	case reflect.Bool:
		if s, ok := data.(string); ok {
			b, err := strconv.ParseBool(strings.TrimSpace(s))
			if err != nil {
				return nil, fmt.Errorf("cannot parse %q as bool", s)
			}
			return b, nil
		}
	case reflect.Slice, reflect.Array:
		return toCollection(data, t, "a list", func(v any) bool { _, ok := v.([]any); return ok })
	case reflect.Map, reflect.Struct:
		return toCollection(data, t, "a mapping", func(v any) bool { _, ok := v.(map[string]any); return ok })
	}
	return data, nil
}

// toCollection checks that data is a list or mapping as ok says, parsing
// a string (such as an environment variable) as YAML first.
func toCollection(data any, t reflect.Type, want string, ok func(any) bool) (any, error) {
	if ok(data) || reflect.TypeOf(data) == t {
		return data, nil
	}
	if s, isString := data.(string); isString {
		var v any
		if err := yaml.Unmarshal([]byte(s), &v); err == nil && ok(v) {
			return v, nil
		}
	}
	return nil, fmt.Errorf("expected %s, got %s", want, describe(data))
}

// toDuration accepts "10s"-style strings, durations, and the number 0.
func toDuration(data any) (any, error) {
	switch x := data.(type) {
	case time.Duration:
		return x, nil
	case string:
		d, err := time.ParseDuration(strings.TrimSpace(x))
		if err != nil {
			return nil, fmt.Errorf(`cannot parse %q as duration (use e.g. "10s", "1m30s")`, x)
		}
		return d, nil
	case int:
		if x == 0 {
			return time.Duration(0), nil
		}
		return nil, fmt.Errorf(`cannot use %d as duration: add a unit, e.g. "%ds"`, x, x)
	}
	return nil, fmt.Errorf("cannot use %s as duration", describe(data))
}

// sizeRE matches an integer with an optional byte-size unit.
var sizeRE = regexp.MustCompile(`^(\d+)\s*([kKmMgGtT]i?[bB]|[bB])$`)

var sizeUnits = map[string]uint64{
	"b":  1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}

// toInteger converts data to integer type t, failing on overflow, on
// fractions and on non-numbers. Strings may use 0x/0o/0b prefixes, "_"
// separators and byte-size units ("16MiB", "64KB").
func toInteger(data any, t reflect.Type) (any, error) {
	var (
		neg bool   // value is negative
		mag uint64 // absolute value
	)
	switch x := data.(type) {
	case int:
		neg, mag = x < 0, absInt(int64(x))
	case int8:
		neg, mag = x < 0, absInt(int64(x))
	case int16:
		neg, mag = x < 0, absInt(int64(x))
	case int32:
		neg, mag = x < 0, absInt(int64(x))
	case int64:
		neg, mag = x < 0, absInt(x)
	case uint:
		mag = uint64(x)
	case uint8:
		mag = uint64(x)
	case uint16:
		mag = uint64(x)
	case uint32:
		mag = uint64(x)
	case uint64:
		mag = x
	case float64:
		if x != math.Trunc(x) || math.Abs(x) >= 1<<63 {
			return nil, fmt.Errorf("cannot use %v as %s: not an integer", x, t)
		}
		neg, mag = x < 0, absInt(int64(x))
	case string:
		var err error
		neg, mag, err = parseInteger(x)
		if err != nil {
			return nil, fmt.Errorf("cannot parse %q as %s", x, t)
		}
	default:
		// Typed values (such as a time.Duration default) and anything
		// else go to mapstructure unchanged.
		if reflect.TypeOf(data) == t {
			return data, nil
		}
		return nil, fmt.Errorf("cannot use %s as %s", describe(data), t)
	}
	out := reflect.New(t).Elem()
	bits := uint(t.Bits())
	switch t.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if (neg && mag != 0) || (bits < 64 && mag >= 1<<bits) {
			return nil, fmt.Errorf("%s is out of range for %s", signed(neg, mag), t)
		}
		out.SetUint(mag)
	default:
		limit := uint64(1) << (bits - 1) // |min|; max is limit-1
		if (!neg && mag >= limit) || (neg && mag > limit) {
			return nil, fmt.Errorf("%s is out of range for %s", signed(neg, mag), t)
		}
		if neg {
			out.SetInt(int64(-mag))
		} else {
			out.SetInt(int64(mag))
		}
	}
	return out.Interface(), nil
}

func parseInteger(s string) (neg bool, mag uint64, err error) {
	s = strings.TrimSpace(s)
	if m := sizeRE.FindStringSubmatch(s); m != nil {
		n, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil {
			return false, 0, err
		}
		unit := sizeUnits[strings.ToLower(m[2])]
		if n > math.MaxUint64/unit {
			return false, 0, errors.New("size overflows")
		}
		return false, n * unit, nil
	}
	body, neg := strings.CutPrefix(s, "-")
	if !neg {
		body = strings.TrimPrefix(body, "+")
	}
	mag, err = strconv.ParseUint(body, 0, 64)
	return neg, mag, err
}

func absInt(x int64) uint64 {
	if x < 0 {
		return uint64(-(x + 1)) + 1
	}
	return uint64(x)
}

func signed(neg bool, mag uint64) string {
	if neg {
		return "-" + strconv.FormatUint(mag, 10)
	}
	return strconv.FormatUint(mag, 10)
}
