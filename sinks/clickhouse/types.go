package clickhouse

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// kind is a column's base type.
type kind uint8

const (
	kInvalid kind = iota
	kInt8
	kInt16
	kInt32
	kInt64
	kUInt8
	kUInt16
	kUInt32
	kUInt64
	kFloat32
	kFloat64
	kBool
	kString
	kFixedString
	kDate
	kDateTime
	kDateTime64
	kUUID
	kEnum8
	kEnum16
	kArray
)

// colType is a parsed column type: a base kind with its parameters, and
// the Nullable and LowCardinality wrappers as flags.
type colType struct {
	name     string // as the server spells it
	kind     kind
	size     int            // FixedString(N) bytes, DateTime64 precision
	loc      *time.Location // DateTime, DateTime64 time zone (nil: UTC)
	enum     map[string]int16
	elem     *colType // Array element
	nullable bool
	lowCard  bool
}

var simpleKinds = map[string]kind{
	"Int8": kInt8, "Int16": kInt16, "Int32": kInt32, "Int64": kInt64,
	"UInt8": kUInt8, "UInt16": kUInt16, "UInt32": kUInt32, "UInt64": kUInt64,
	"Float32": kFloat32, "Float64": kFloat64, "Bool": kBool, "String": kString,
	"Date": kDate, "DateTime": kDateTime, "UUID": kUUID,
}

// parseType parses a type as DESCRIBE TABLE prints it. Types the sink
// cannot write (Decimal, Map, Tuple, Nested arrays, JSON, ...) are errors.
func parseType(s string) (*colType, error) {
	t, err := parseTypeInner(strings.TrimSpace(s), 0)
	if err != nil {
		return nil, fmt.Errorf("type %s: %w", s, err)
	}
	t.name = s
	return t, nil
}

func parseTypeInner(s string, depth int) (*colType, error) {
	if depth > 3 {
		return nil, fmt.Errorf("nested too deep")
	}
	name, args, hasArgs := strings.Cut(s, "(")
	if hasArgs {
		if !strings.HasSuffix(args, ")") {
			return nil, fmt.Errorf("unbalanced parentheses")
		}
		args = args[:len(args)-1]
	}
	name = strings.TrimSpace(name)
	if k, ok := simpleKinds[name]; ok && !hasArgs {
		return &colType{kind: k, name: s}, nil
	}
	switch name {
	case "Nullable", "LowCardinality":
		inner, err := parseTypeInner(strings.TrimSpace(args), depth+1)
		if err != nil {
			return nil, err
		}
		if inner.kind == kArray {
			return nil, fmt.Errorf("%s(Array) is not supported", name)
		}
		if name == "Nullable" {
			inner.nullable = true
		} else {
			inner.lowCard = true
		}
		inner.name = s
		return inner, nil
	case "Array":
		elem, err := parseTypeInner(strings.TrimSpace(args), depth+1)
		if err != nil {
			return nil, err
		}
		if elem.kind == kArray || elem.nullable {
			return nil, fmt.Errorf("arrays of arrays or of Nullable are not supported")
		}
		return &colType{kind: kArray, elem: elem, name: s}, nil
	case "FixedString":
		n, err := strconv.Atoi(strings.TrimSpace(args))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("invalid FixedString size %q", args)
		}
		return &colType{kind: kFixedString, size: n, name: s}, nil
	case "DateTime":
		loc, err := parseZone(args)
		if err != nil {
			return nil, err
		}
		return &colType{kind: kDateTime, loc: loc, name: s}, nil
	case "DateTime64":
		p, zone, _ := strings.Cut(args, ",")
		prec, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || prec < 0 || prec > 9 {
			return nil, fmt.Errorf("invalid DateTime64 precision %q", p)
		}
		loc, err := parseZone(zone)
		if err != nil {
			return nil, err
		}
		return &colType{kind: kDateTime64, size: prec, loc: loc, name: s}, nil
	case "Enum8", "Enum16":
		enum, err := parseEnum(args)
		if err != nil {
			return nil, err
		}
		k := kEnum8
		if name == "Enum16" {
			k = kEnum16
		}
		return &colType{kind: k, enum: enum, name: s}, nil
	}
	return nil, fmt.Errorf("not supported by the clickhouse sink")
}

// parseZone parses the optional 'Zone/Name' argument of DateTime types.
func parseZone(arg string) (*time.Location, error) {
	arg = strings.TrimSpace(arg)
	if arg == "" {
		return nil, nil
	}
	name, err := unquote(arg)
	if err != nil {
		return nil, err
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("time zone %q: %w", name, err)
	}
	return loc, nil
}

// parseEnum parses "'a' = 1, 'b' = 2".
func parseEnum(args string) (map[string]int16, error) {
	m := map[string]int16{}
	rest := strings.TrimSpace(args)
	for rest != "" {
		if rest[0] != '\'' {
			return nil, fmt.Errorf("invalid enum %q", args)
		}
		end := 1
		for ; end < len(rest) && rest[end] != '\''; end++ {
			if rest[end] == '\\' {
				end++
			}
		}
		if end >= len(rest) {
			return nil, fmt.Errorf("invalid enum %q", args)
		}
		name, err := unquote(rest[:end+1])
		if err != nil {
			return nil, err
		}
		rest = strings.TrimSpace(rest[end+1:])
		num, tail, _ := strings.Cut(strings.TrimPrefix(rest, "="), ",")
		n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 16)
		if !strings.HasPrefix(rest, "=") || err != nil {
			return nil, fmt.Errorf("invalid enum %q", args)
		}
		m[name] = int16(n)
		rest = strings.TrimSpace(tail)
	}
	return m, nil
}

// unquote removes ClickHouse single quotes and backslash escapes.
func unquote(s string) (string, error) {
	if len(s) < 2 || s[0] != '\'' || s[len(s)-1] != '\'' {
		return "", fmt.Errorf("want a quoted string, not %s", s)
	}
	s = s[1 : len(s)-1]
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String(), nil
}

// accepts reports whether a column of type t can hold a record property
// of kind k (checked at Connect for $property mappings).
func (t *colType) accepts(k valKind) bool {
	switch k {
	case valTime:
		switch t.kind {
		case kDate, kDateTime, kDateTime64, kString:
			return true
		}
		return false
	case valInt, valBool:
		switch t.kind {
		case kString, kFixedString, kArray, kDate, kDateTime, kDateTime64, kUUID:
			return false
		}
		return true
	case valString:
		switch t.kind {
		case kString, kFixedString, kUUID, kEnum8, kEnum16:
			return true
		}
		return false
	}
	return false
}
