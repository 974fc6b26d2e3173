package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// fastSchema is a JSON Schema restricted to the keywords most telemetry
// schemas use, checked without allocating. It only ever accepts: a
// payload it finds valid is valid, and anything else (invalid, or a value
// or keyword it does not know) goes to jsonschema, whose verdict and
// messages are authoritative. Its semantics follow jsonschema/v6
// exactly, numbers included (see cmpNumber); FuzzFastSchema checks that.
type fastSchema struct {
	never    bool  // the schema false
	types    uint8 // typeBit mask; 0 = any type
	enum     []any // strings, booleans and nulls only
	hasEnum  bool  // enum or const given
	required []string
	props    map[string]*fastSchema
	addl     *fastSchema // additionalProperties; nil = anything
	items    *fastSchema // nil = anything

	minItems, maxItems, minLen, maxLen, minProps, maxProps int // -1 = none
	min, max, exMin, exMax                                 *numBound

	allOf, anyOf, oneOf []*fastSchema
	not                 *fastSchema
}

// Type bits of fastSchema.types.
const (
	tNull uint8 = 1 << iota
	tBool
	tObject
	tArray
	tNumber
	tString
	tInteger
)

var typeBits = map[string]uint8{"null": tNull, "boolean": tBool, "object": tObject, "array": tArray,
	"number": tNumber, "string": tString, "integer": tInteger}

// verdict is a fastSchema's answer.
type verdict uint8

const (
	valid verdict = iota
	invalid
	unsure // a value type or number the fast path does not decide
)

// numBound is a numeric keyword's value: exact, and the float64 range
// outside of which a comparison needs no exact arithmetic.
type numBound struct {
	exact  *big.Rat
	lo, hi float64 // the floats either side of the bound's nearest float
}

// drafts maps the $schema values the fast path knows to draft numbers.
// Earlier drafts (boolean exclusiveMinimum, 1.0 not an integer) are left
// to jsonschema.
var drafts = map[string]int{
	"": 2020, "https://json-schema.org/draft/2020-12/schema": 2020,
	"https://json-schema.org/draft/2019-09/schema": 2019,
	"http://json-schema.org/draft-07/schema":       7, "http://json-schema.org/draft-07/schema#": 7,
	"https://json-schema.org/draft-07/schema": 7, "https://json-schema.org/draft-07/schema#": 7,
	"http://json-schema.org/draft-06/schema": 6, "http://json-schema.org/draft-06/schema#": 6,
}

// annotations are keywords without effect on validation.
var annotations = map[string]bool{"title": true, "description": true, "$comment": true, "examples": true,
	"default": true, "deprecated": true, "readOnly": true, "writeOnly": true}

// compileFast reads file and compiles its fast path; nil when the schema
// uses anything the fast path does not implement (jsonschema alone then
// validates).
func compileFast(file string) *fastSchema {
	if strings.Contains(file, "#") {
		return nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc any
	if dec.Decode(&doc) != nil {
		return nil
	}
	draft := 2020
	if m, ok := doc.(map[string]any); ok {
		s, _ := m["$schema"].(string)
		if draft, ok = drafts[s]; !ok {
			return nil
		}
	}
	fs, err := fastCompile(doc, draft, true)
	if err != nil {
		return nil
	}
	return fs
}

// fastCompile compiles one (sub)schema; an error names what the fast path
// does not implement.
func fastCompile(doc any, draft int, root bool) (*fastSchema, error) {
	if b, ok := doc.(bool); ok {
		return &fastSchema{never: !b, minItems: -1, maxItems: -1, minLen: -1, maxLen: -1, minProps: -1, maxProps: -1}, nil
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("schema of type %T", doc)
	}
	s := &fastSchema{minItems: -1, maxItems: -1, minLen: -1, maxLen: -1, minProps: -1, maxProps: -1}
	var err error
	for k, v := range m {
		switch {
		case annotations[k]:
		case root && (k == "$schema" || k == "$id" || k == "$defs" || k == "definitions"):
			// Definitions are unused: $ref is not implemented.
		case k == "format" && draft == 2020:
			// An annotation in 2020-12 unless format-assertion is on.
		case k == "type":
			s.types, err = fastTypes(v)
		case k == "enum" || k == "const":
			err = s.fastEnum(k, v)
		case k == "required":
			err = s.fastRequired(v)
		case k == "properties":
			pm, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("properties of type %T", v)
			}
			s.props = make(map[string]*fastSchema, len(pm))
			for name, sub := range pm {
				if s.props[name], err = fastCompile(sub, draft, false); err != nil {
					return nil, err
				}
			}
		case k == "additionalProperties":
			s.addl, err = fastCompile(v, draft, false)
		case k == "items":
			s.items, err = fastCompile(v, draft, false) // the tuple form (a list) is refused
		case k == "allOf" || k == "anyOf" || k == "oneOf":
			var list []*fastSchema
			if list, err = fastList(v, draft); err == nil {
				switch k {
				case "allOf":
					s.allOf = list
				case "anyOf":
					s.anyOf = list
				default:
					s.oneOf = list
				}
			}
		case k == "not":
			s.not, err = fastCompile(v, draft, false)
		case k == "minimum":
			s.min, err = fastBound(v)
		case k == "maximum":
			s.max, err = fastBound(v)
		case k == "exclusiveMinimum":
			s.exMin, err = fastBound(v)
		case k == "exclusiveMaximum":
			s.exMax, err = fastBound(v)
		case k == "minItems":
			s.minItems, err = fastCount(v)
		case k == "maxItems":
			s.maxItems, err = fastCount(v)
		case k == "minLength":
			s.minLen, err = fastCount(v)
		case k == "maxLength":
			s.maxLen, err = fastCount(v)
		case k == "minProperties":
			s.minProps, err = fastCount(v)
		case k == "maxProperties":
			s.maxProps, err = fastCount(v)
		default:
			return nil, fmt.Errorf("keyword %q", k)
		}
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

func fastTypes(v any) (uint8, error) {
	var names []any
	switch x := v.(type) {
	case string:
		names = []any{x}
	case []any:
		names = x
	default:
		return 0, fmt.Errorf("type of type %T", v)
	}
	var bits uint8
	for _, n := range names {
		s, _ := n.(string)
		b, ok := typeBits[s]
		if !ok {
			return 0, fmt.Errorf("type %v", n)
		}
		bits |= b
	}
	if bits == 0 {
		return 0, fmt.Errorf("empty type list")
	}
	return bits, nil
}

// fastEnum keeps enum and const values that compare without numbers.
func (s *fastSchema) fastEnum(k string, v any) error {
	vals := []any{v}
	if k == "enum" {
		l, ok := v.([]any)
		if !ok {
			return fmt.Errorf("enum of type %T", v)
		}
		vals = l
	}
	for _, x := range vals {
		switch x.(type) {
		case string, bool, nil:
		default:
			return fmt.Errorf("%s value of type %T", k, x)
		}
	}
	if s.hasEnum { // both enum and const: keep the values in both
		var both []any
		for _, x := range vals {
			if inEnum(s.enum, x) {
				both = append(both, x)
			}
		}
		vals = both
	}
	s.enum, s.hasEnum = vals, true
	return nil
}

func (s *fastSchema) fastRequired(v any) error {
	l, ok := v.([]any)
	if !ok {
		return fmt.Errorf("required of type %T", v)
	}
	for _, x := range l {
		name, ok := x.(string)
		if !ok {
			return fmt.Errorf("required name of type %T", x)
		}
		s.required = append(s.required, name)
	}
	return nil
}

func fastList(v any, draft int) ([]*fastSchema, error) {
	l, ok := v.([]any)
	if !ok || len(l) == 0 {
		return nil, fmt.Errorf("schema list %v", v)
	}
	out := make([]*fastSchema, len(l))
	for i, x := range l {
		var err error
		if out[i], err = fastCompile(x, draft, false); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func fastBound(v any) (*numBound, error) {
	n, ok := v.(json.Number)
	if !ok {
		return nil, fmt.Errorf("bound of type %T", v)
	}
	r, ok := new(big.Rat).SetString(string(n))
	if !ok {
		return nil, fmt.Errorf("bound %s", n)
	}
	f, _ := r.Float64()
	if math.IsInf(f, 0) {
		return nil, fmt.Errorf("bound %s out of float64 range", n)
	}
	return &numBound{exact: r, lo: math.Nextafter(f, math.Inf(-1)), hi: math.Nextafter(f, math.Inf(1))}, nil
}

func fastCount(v any) (int, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("count of type %T", v)
	}
	i, err := strconv.Atoi(string(n))
	if err != nil || i < 0 {
		return 0, fmt.Errorf("count %s", n)
	}
	return i, nil
}

func inEnum(enum []any, v any) bool {
	for _, e := range enum {
		if e == v {
			return true
		}
	}
	return false
}

// fastNumber returns v as a float64 when it is a number the fast path
// compares exactly: a finite float64, or an integer within ±2^53.
func fastNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case int64:
		return float64(x), x >= -1<<53 && x <= 1<<53
	case uint64:
		return float64(x), x <= 1<<53
	}
	return 0, false
}

// cmpNumber compares v with b as jsonschema does: v as its shortest
// decimal form (fmt's %v) read exactly. Outside [lo, hi] the sign of the
// float comparison is that of the exact one (a float's shortest decimal
// stays within half an ulp of it); inside, the exact comparison runs.
func cmpNumber(v float64, b *numBound) int {
	switch {
	case v < b.lo:
		return -1
	case v > b.hi:
		return 1
	}
	r, _ := new(big.Rat).SetString(strconv.FormatFloat(v, 'g', -1, 64))
	return r.Cmp(b.exact)
}

// check decides v, or answers unsure.
func (s *fastSchema) check(v any) verdict {
	if s.never {
		return invalid
	}
	var t uint8
	switch v.(type) {
	case nil:
		t = tNull
	case bool:
		t = tBool
	case string:
		t = tString
	case map[string]any:
		t = tObject
	case []any:
		t = tArray
	default:
		f, ok := fastNumber(v)
		if !ok {
			return unsure
		}
		t = tNumber
		if f == math.Trunc(f) {
			t |= tInteger
		}
	}
	if s.types != 0 && s.types&t == 0 {
		return invalid
	}
	if s.hasEnum && (t&(tNull|tBool|tString) == 0 || !inEnum(s.enum, v)) {
		return invalid
	}
	var r verdict
	switch t {
	case tString:
		r = s.checkString(v.(string))
	case tObject:
		r = s.checkObject(v.(map[string]any))
	case tArray:
		r = s.checkArray(v.([]any))
	case tNumber, tNumber | tInteger:
		f, _ := fastNumber(v)
		r = s.checkNumber(f)
	}
	if r != valid {
		return r
	}
	return s.checkApplicators(v)
}

func (s *fastSchema) checkString(str string) verdict {
	if s.minLen >= 0 || s.maxLen >= 0 {
		n := utf8.RuneCountInString(str)
		if (s.minLen >= 0 && n < s.minLen) || (s.maxLen >= 0 && n > s.maxLen) {
			return invalid
		}
	}
	return valid
}

func (s *fastSchema) checkNumber(f float64) verdict {
	if (s.min != nil && cmpNumber(f, s.min) < 0) || (s.max != nil && cmpNumber(f, s.max) > 0) ||
		(s.exMin != nil && cmpNumber(f, s.exMin) <= 0) || (s.exMax != nil && cmpNumber(f, s.exMax) >= 0) {
		return invalid
	}
	return valid
}

func (s *fastSchema) checkObject(m map[string]any) verdict {
	if (s.minProps >= 0 && len(m) < s.minProps) || (s.maxProps >= 0 && len(m) > s.maxProps) {
		return invalid
	}
	for _, name := range s.required {
		if _, ok := m[name]; !ok {
			return invalid
		}
	}
	r := valid
	if s.addl != nil {
		for k, x := range m {
			sub := s.props[k]
			if sub == nil {
				sub = s.addl
			}
			r = worse(r, sub.check(x))
			if r == invalid {
				return r
			}
		}
		return r
	}
	for k, sub := range s.props {
		if x, ok := m[k]; ok {
			if r = worse(r, sub.check(x)); r == invalid {
				return r
			}
		}
	}
	return r
}

func (s *fastSchema) checkArray(a []any) verdict {
	if (s.minItems >= 0 && len(a) < s.minItems) || (s.maxItems >= 0 && len(a) > s.maxItems) {
		return invalid
	}
	r := valid
	if s.items != nil {
		for _, x := range a {
			if r = worse(r, s.items.check(x)); r == invalid {
				return r
			}
		}
	}
	return r
}

func (s *fastSchema) checkApplicators(v any) verdict {
	r := valid
	for _, sub := range s.allOf {
		if r = worse(r, sub.check(v)); r == invalid {
			return r
		}
	}
	if len(s.anyOf) > 0 {
		some := invalid
		for _, sub := range s.anyOf {
			switch sub.check(v) {
			case valid:
				some = valid
			case unsure:
				some = unsure
				continue
			default:
				continue
			}
			break
		}
		if r = worse(r, some); r == invalid {
			return r
		}
	}
	if len(s.oneOf) > 0 {
		n, unknown := 0, false
		for _, sub := range s.oneOf {
			switch sub.check(v) {
			case valid:
				n++
			case unsure:
				unknown = true
			}
		}
		switch {
		case unknown:
			r = worse(r, unsure)
		case n != 1:
			return invalid
		}
	}
	if s.not != nil {
		switch s.not.check(v) {
		case valid:
			return invalid
		case unsure:
			r = worse(r, unsure)
		}
	}
	return r
}

// worse combines two verdicts of one value: invalid over unsure over
// valid.
func worse(a, b verdict) verdict {
	if a == invalid || b == invalid {
		return invalid
	}
	if a == unsure || b == unsure {
		return unsure
	}
	return valid
}
