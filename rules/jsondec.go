package rules

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/sluicehq/sluice/ingest"
)

// DecodeJSON decodes a JSON payload into the values rules expect:
// map[string]any, []any, string, float64, bool and nil, exactly as
// encoding/json.Unmarshal into an `any` does (fuzzed against it), about
// three times faster. Strings without escapes are not copied: they alias
// b, which must therefore not be modified afterwards (MQTT payloads are
// immutable once the broker hands them over). The pipeline may use it for
// its decode-once step.
func DecodeJSON(b []byte) (any, error) { return decodeJSON(b, nil, false, nil) }

// DecodeJSONKeys is DecodeJSON for readers of a few top-level fields:
// when the payload is an object, only the members named in keys are
// decoded into the map; the others are checked and skipped without
// building their values. Anything but an object decodes as DecodeJSON
// does, and a payload DecodeJSON refuses is refused with the same error.
// See Engine.PayloadKeys for where keys come from.
func DecodeJSONKeys(b []byte, keys []string) (any, error) { return decodeJSON(b, keys, true, nil) }

// decodeJSON decodes b, into s when not nil.
func decodeJSON(b []byte, keys []string, filter bool, s *Scratch) (any, error) {
	d, _ := decoders.Get().(*jsonDecoder)
	if d == nil {
		d = &jsonDecoder{}
	}
	d.b, d.i, d.depth = b, 0, 0
	d.keys, d.filter, d.skipping = keys, filter, 0
	d.floats, d.strs, d.hdrs = nil, nil, nil // the boxed values of the last payload live on
	d.sc = s
	v, err := d.value()
	if err == nil {
		d.ws()
		if d.i < len(b) {
			err = d.errorf("invalid character %q after top-level value", b[d.i])
		}
	}
	d.b, d.floats, d.strs, d.hdrs, d.keys, d.sc = nil, nil, nil, nil, nil, nil
	decoders.Put(d)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// decoders pools decoders for their scratch stacks.
var decoders sync.Pool

// maxDepth bounds nesting, as encoding/json does.
const maxDepth = 10000

var errEnd = errors.New("unexpected end of JSON input")

// jsonDecoder holds the input and scratch stacks shared by nested values: an
// object's members (an array's elements) are collected on the stack and
// copied into a map (slice) of the exact size at the end.
type jsonDecoder struct {
	b     []byte
	i     int
	depth int
	kvs   []kv
	vals  []any
	buf   []byte
	// floats and strs are the current payload's slabs that numbers and
	// strings are boxed into (see boxFloat): one allocation for many
	// values instead of one each. Reused across payloads only through a
	// Scratch, once its values are released.
	floats []float64
	strs   []string
	hdrs   [][]any // arrays' slice headers, with sc only
	// sc, when not nil, supplies the maps and slabs.
	sc *Scratch
	// keys, with filter, are the top-level members to decode; skipping
	// counts the values being scanned without building them (unwanted
	// members and everything inside them).
	keys     []string
	filter   bool
	skipping int
}

// eface is the layout of an empty interface (runtime.eface).
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// Type words of float64 and string, taken from boxed values.
var (
	float64TypeWord = typeWord(float64(1.5))
	stringTypeWord  = typeWord("x")
)

func typeWord(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

// slabLen is how many values a slab holds; a payload with more boxes
// into further slabs.
const slabLen = 16

// boxFloat returns f as an `any` whose data points into the payload's
// float slab, as `any(f)` would into an allocation of its own. The
// values are never written after boxing, so sharing the slab is safe.
func (d *jsonDecoder) boxFloat(f float64) any {
	if d.skipping > 0 {
		return nil
	}
	if len(d.floats) == cap(d.floats) {
		if d.sc != nil {
			d.floats = d.sc.floats.Next()
		} else {
			d.floats = make([]float64, 0, slabLen)
		}
	}
	d.floats = append(d.floats, f)
	var v any
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = float64TypeWord, unsafe.Pointer(&d.floats[len(d.floats)-1])
	return v
}

// boxString is boxFloat for strings.
func (d *jsonDecoder) boxString(s string) any {
	if d.skipping > 0 {
		return nil
	}
	if len(d.strs) == cap(d.strs) {
		if d.sc != nil {
			d.strs = d.sc.strs.Next()
		} else {
			d.strs = make([]string, 0, slabLen)
		}
	}
	d.strs = append(d.strs, s)
	return boxStringAt(&d.strs[len(d.strs)-1])
}

// boxStringAt returns *p as an `any` that refers to p's storage instead
// of a copy; *p must never change afterwards.
func boxStringAt(p *string) any {
	var v any
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = stringTypeWord, unsafe.Pointer(p)
	return v
}

type kv struct {
	k string
	v any
}

func (d *jsonDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf("%s at offset %d", fmt.Sprintf(format, args...), d.i)
}

func (d *jsonDecoder) ws() {
	b, i := d.b, d.i
	for i < len(b) && jsonSpace[b[i]] {
		i++
	}
	d.i = i
}

// jsonSpace marks the bytes JSON allows between tokens.
var jsonSpace = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

// strPlain marks the bytes a string holds as they are: anything but a
// quote, a backslash, a control character or a byte of a multi-byte
// UTF-8 sequence (checked separately).
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func (d *jsonDecoder) value() (any, error) {
	d.ws()
	if d.i >= len(d.b) {
		return nil, errEnd
	}
	switch c := d.b[d.i]; {
	case c == '{':
		return d.object()
	case c == '[':
		return d.array()
	case c == '"':
		v, err := d.str()
		if err != nil {
			return nil, err
		}
		return d.boxString(v), nil
	case c == '-' || c >= '0' && c <= '9':
		f, err := d.number()
		if err != nil {
			return nil, err
		}
		return d.boxFloat(f), nil
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	default:
		return nil, d.errorf("invalid character %q looking for beginning of value", c)
	}
}

func (d *jsonDecoder) literal(lit string) error {
	if len(d.b)-d.i < len(lit) {
		if string(d.b[d.i:]) == lit[:len(d.b)-d.i] {
			return errEnd
		}
	} else if string(d.b[d.i:d.i+len(lit)]) == lit {
		d.i += len(lit)
		return nil
	}
	return d.errorf("invalid literal (want %s)", lit)
}

func (d *jsonDecoder) enter() error {
	if d.depth++; d.depth > maxDepth {
		return d.errorf("exceeded max depth")
	}
	return nil
}

func (d *jsonDecoder) object() (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.i++ // '{'
	base := len(d.kvs)
	defer func() {
		clear(d.kvs[base:])
		d.kvs = d.kvs[:base]
	}()
	top := d.filter && d.depth == 1 && d.skipping == 0 // members filtered by keys
	// With a Scratch, members go straight into a recycled map (its
	// capacity is the last payload's); without, they are collected first
	// to size the map exactly.
	var direct map[string]any
	if d.sc != nil && d.skipping == 0 {
		direct = d.sc.maps.Next(0)
	}
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		d.depth--
		if d.skipping > 0 {
			return nil, nil
		}
		if direct != nil {
			return direct, nil
		}
		return map[string]any{}, nil
	}
	for {
		d.ws()
		if d.i >= len(d.b) {
			return nil, errEnd
		}
		if d.b[d.i] != '"' {
			return nil, d.errorf("invalid character %q looking for beginning of object key string", d.b[d.i])
		}
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		if d.i < len(d.b) && d.b[d.i] == ':' { // compact JSON: no space
			d.i++
		} else {
			d.ws()
			if d.i >= len(d.b) {
				return nil, errEnd
			}
			if d.b[d.i] != ':' {
				return nil, d.errorf("invalid character %q after object key", d.b[d.i])
			}
			d.i++
		}
		skip := top && !slices.Contains(d.keys, k)
		if skip {
			d.skipping++
		}
		v, err := d.value()
		if skip {
			d.skipping--
		}
		if err != nil {
			return nil, err
		}
		if !skip && d.skipping == 0 {
			if direct != nil {
				direct[k] = v
			} else {
				d.kvs = append(d.kvs, kv{k, v})
			}
		}
		if d.i < len(d.b) && d.b[d.i] == ',' { // compact JSON: no space
			d.i++
			continue
		}
		d.ws()
		if d.i >= len(d.b) {
			return nil, errEnd
		}
		switch d.b[d.i] {
		case ',':
			d.i++
			continue
		case '}':
			d.i++
			d.depth--
			if d.skipping > 0 {
				return nil, nil
			}
			if direct != nil {
				return direct, nil
			}
			m := make(map[string]any, len(d.kvs)-base)
			for _, e := range d.kvs[base:] {
				m[e.k] = e.v
			}
			return m, nil
		}
		return nil, d.errorf("invalid character %q after object key:value pair", d.b[d.i])
	}
}

// newArray returns a copy of elems as an `any` holding a non-nil []any:
// with a Scratch, the elements go in one of its chunks and the slice
// header in its header slab (boxed as boxFloat boxes numbers).
func (d *jsonDecoder) newArray(elems []any) any {
	if d.sc == nil {
		return append([]any{}, elems...)
	}
	arr := d.sc.elemsFor(len(elems))
	copy(arr, elems)
	if len(d.hdrs) == cap(d.hdrs) {
		d.hdrs = d.sc.hdrs.Next()
	}
	d.hdrs = append(d.hdrs, arr)
	var v any
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = sliceTypeWord, unsafe.Pointer(&d.hdrs[len(d.hdrs)-1])
	return v
}

func (d *jsonDecoder) array() (any, error) {
	if err := d.enter(); err != nil {
		return nil, err
	}
	d.i++ // '['
	base := len(d.vals)
	defer func() {
		clear(d.vals[base:])
		d.vals = d.vals[:base]
	}()
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		d.depth--
		if d.skipping > 0 {
			return nil, nil
		}
		return d.newArray(nil), nil
	}
	for {
		v, err := d.value()
		if err != nil {
			return nil, err
		}
		if d.skipping == 0 {
			d.vals = append(d.vals, v)
		}
		d.ws()
		if d.i >= len(d.b) {
			return nil, errEnd
		}
		switch d.b[d.i] {
		case ',':
			d.i++
			continue
		case ']':
			d.i++
			d.depth--
			if d.skipping > 0 {
				return nil, nil
			}
			return d.newArray(d.vals[base:]), nil
		}
		return nil, d.errorf("invalid character %q after array element", d.b[d.i])
	}
}

// number scans a JSON number. Numbers of at most 15 significant digits
// with a decimal exponent within ±22 are converted exactly by one float
// operation (Clinger's fast path: both operands are exact, so the result
// is correctly rounded, as strconv.ParseFloat's); others go to ParseFloat.
func (d *jsonDecoder) number() (float64, error) {
	b, start := d.b, d.i
	i := start
	neg := b[i] == '-'
	if neg {
		i++
	}
	if i >= len(b) {
		d.i = i
		return 0, errEnd
	}
	var mant uint64
	digits, exp10 := 0, 0
	switch {
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			mant = mant*10 + uint64(b[i]-'0')
			digits++
		}
	default:
		d.i = i
		return 0, d.errorf("invalid character %q in numeric literal", b[i])
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) {
			d.i = i
			return 0, errEnd
		}
		if b[i] < '0' || b[i] > '9' {
			d.i = i
			return 0, d.errorf("invalid character %q after decimal point in numeric literal", b[i])
		}
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			mant = mant*10 + uint64(b[i]-'0')
			if mant != 0 {
				digits++
			}
			exp10--
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		if i >= len(b) {
			d.i = i
			return 0, errEnd
		}
		if b[i] < '0' || b[i] > '9' {
			d.i = i
			return 0, d.errorf("invalid character %q in exponent of numeric literal", b[i])
		}
		e := 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if e < 10000 {
				e = e*10 + int(b[i]-'0')
			}
		}
		if eneg {
			e = -e
		}
		exp10 += e
	}
	d.i = i
	if digits <= 15 && exp10 >= -22 && exp10 <= 22 {
		f := float64(mant)
		if exp10 < 0 {
			f /= pow10[-exp10]
		} else {
			f *= pow10[exp10]
		}
		if neg {
			f = -f
			if f == 0 {
				f = math.Copysign(0, -1)
			}
		}
		return f, nil
	}
	f, err := strconv.ParseFloat(unsafe.String(&b[start], i-start), 64)
	if err != nil {
		return 0, fmt.Errorf("number %s out of range at offset %d", b[start:i], start)
	}
	return f, nil
}

// pow10 are the powers of ten exactly representable as float64.
var pow10 = [23]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// key is str for object keys, most of them short, plain ASCII: those are
// scanned here, the others by str.
func (d *jsonDecoder) key() (string, error) {
	b, start := d.b, d.i+1
	i := start
	for i < len(b) && strPlain[b[i]] {
		i++
	}
	if i < len(b) && b[i] == '"' && i > start {
		d.i = i + 1
		return unsafe.String(&b[start], i-start), nil
	}
	return d.str()
}

// str scans a string starting at its opening quote.
func (d *jsonDecoder) str() (string, error) {
	b := d.b
	start := d.i + 1
	i := start
	ascii := true
	for {
		for i < len(b) && strPlain[b[i]] {
			i++
		}
		if i >= len(b) {
			d.i = i
			return "", errEnd
		}
		switch c := b[i]; {
		case c == '"':
			d.i = i + 1
			s := b[start:i]
			if len(s) == 0 {
				return "", nil
			}
			if !ascii && !utf8.Valid(s) {
				return d.unquote(start)
			}
			return unsafe.String(&s[0], len(s)), nil
		case c == '\\':
			return d.unquote(start)
		case c < 0x20:
			d.i = i
			return "", d.errorf("invalid character %q in string literal", c)
		default: // c >= utf8.RuneSelf
			ascii = false
			i++
		}
	}
}

// unquote decodes a string with escapes or invalid UTF-8 (replaced by
// U+FFFD, as encoding/json does) into a new string.
func (d *jsonDecoder) unquote(start int) (string, error) {
	b := d.b
	out := d.buf[:0]
	i := start
	for {
		if i >= len(b) {
			d.i = i
			return "", errEnd
		}
		c := b[i]
		switch {
		case c == '"':
			d.i = i + 1
			d.buf = out
			return string(out), nil
		case c < 0x20:
			d.i = i
			return "", d.errorf("invalid character %q in string literal", c)
		case c == '\\':
			i++
			if i >= len(b) {
				d.i = i
				return "", errEnd
			}
			switch e := b[i]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := hex4(b, i+1)
				if !ok {
					d.i = i
					return "", d.invalidU(b, i+1)
				}
				i += 4
				if utf16.IsSurrogate(r) {
					r2, ok2 := rune(-1), false
					if i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
						r2, ok2 = hex4(b, i+3)
					}
					if dec := utf16.DecodeRune(r, r2); ok2 && dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				out = utf8.AppendRune(out, r)
			default:
				d.i = i
				return "", d.errorf("invalid character %q in string escape code", e)
			}
			i++
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, b[i:i+size]...)
			}
			i += size
		}
	}
}

// invalidU reports a bad \u escape: the end of input or a non-hex digit.
func (d *jsonDecoder) invalidU(b []byte, i int) error {
	for j := i; j < i+4; j++ {
		if j >= len(b) {
			return errEnd
		}
		if _, ok := hexVal(b[j]); !ok {
			d.i = j
			return d.errorf("invalid character %q in \\u hexadecimal character escape", b[j])
		}
	}
	return d.errorf("invalid \\u escape")
}

// hex4 reads four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		v, ok := hexVal(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | v
	}
	return r, true
}

func hexVal(c byte) (rune, bool) {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0'), true
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10), true
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10), true
	}
	return 0, false
}

// JSONDecoder is an ingest.Decoder using DecodeJSON; cmd passes it as the
// pipeline's Decoder.
type JSONDecoder struct {
	// Keys, when set, says which top-level fields the rules read (see
	// Engine.PayloadKeys; Holder.PayloadKeys follows reloads): unless
	// all, objects decode with DecodeJSONKeys. Default: nil, decode all.
	Keys func() (keys []string, all bool)
}

var _ ingest.Decoder = JSONDecoder{}

// ErrNotJSON is the decode error of a payload that cannot start a JSON
// value (binary telemetry, say): a shared value, so such payloads cost no
// error formatting on the hot path.
var ErrNotJSON = errors.New("decoding JSON payload: not JSON")

// Decode implements ingest.Decoder.
func (j JSONDecoder) Decode(_ string, payload []byte) (any, error) {
	if !mayStartJSON(payload) {
		return nil, ErrNotJSON
	}
	v, err := j.Value(payload)
	if err != nil {
		return nil, fmt.Errorf("decoding JSON payload: %w", err)
	}
	return v, nil
}

// Value decodes payload with DecodeJSONKeys when Keys names the fields
// the rules read, else with DecodeJSON; unlike Decode it neither
// short-cuts non-JSON payloads nor wraps the error, for callers that
// report decode errors their own way.
func (j JSONDecoder) Value(payload []byte) (any, error) { return j.ValueIn(payload, nil) }

// mayStartJSON reports whether b's first non-space byte can begin a JSON
// value.
func mayStartJSON(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{', '[', '"', '-', 't', 'f', 'n', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			return true
		}
		return false
	}
	return false
}
