package clickhouse

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unsafe"

	"github.com/google/uuid"
)

// builder accumulates one column's values for one insert, as the typed
// slice the driver appends to its column in one call: the sink converts
// each value once and never formats it as text.
type builder interface {
	// add appends v, or returns why it does not fit (nothing is
	// appended then).
	add(v *value, e *encoder) error
	// addToken is add of the raw JSON text of a field (nil: missing).
	addToken(tok []byte, e *encoder) error
	// len is the number of rows appended.
	len() int
	// truncate drops the rows from n on.
	truncate(n int)
	// slice returns rows [lo, hi) as the slice the driver's column takes.
	slice(lo, hi int) any
	// reset drops every row, keeping memory.
	reset()
}

var (
	errMissing = errors.New("field missing (make the column Nullable, give it a DEFAULT and map it to -, or send the field)")
	errNull    = errors.New("null in a column that is not Nullable")
)

// scalar builds a column of T, or of *T when nullable.
type scalar[T any] struct {
	conv func(v *value, e *encoder) (T, error)
	// fast, when set, converts the JSON text of the common forms of
	// a value (a short decimal, an unescaped string, an RFC 3339 time)
	// directly; it reports false for anything else, which conv then
	// converts or explains.
	fast     func(tok []byte) (T, bool)
	nullable bool
	vals     []T
	nulls    []bool
	ptrs     []*T
}

func (b *scalar[T]) addToken(tok []byte, e *encoder) error {
	if b.fast != nil && len(tok) > 0 {
		if x, ok := b.fast(tok); ok {
			b.vals = append(b.vals, x)
			if b.nullable {
				b.nulls = append(b.nulls, false)
			}
			return nil
		}
	}
	if err := parseToken(tok, &e.val, &e.scratch); err != nil {
		return err
	}
	return b.add(&e.val, e)
}

func (b *scalar[T]) add(v *value, e *encoder) error {
	if v.kind == valNull || v.kind == valMissing {
		if !b.nullable {
			if v.kind == valMissing {
				return errMissing
			}
			return errNull
		}
		var zero T
		b.vals = append(b.vals, zero)
		b.nulls = append(b.nulls, true)
		return nil
	}
	x, err := b.conv(v, e)
	if err != nil {
		return err
	}
	b.vals = append(b.vals, x)
	if b.nullable {
		b.nulls = append(b.nulls, false)
	}
	return nil
}

func (b *scalar[T]) len() int { return len(b.vals) }

func (b *scalar[T]) truncate(n int) {
	b.vals = b.vals[:n]
	if b.nullable {
		b.nulls = b.nulls[:n]
	}
}

func (b *scalar[T]) slice(lo, hi int) any {
	if !b.nullable {
		return b.vals[lo:hi]
	}
	b.ptrs = b.ptrs[:0]
	for i := lo; i < hi; i++ {
		if b.nulls[i] {
			b.ptrs = append(b.ptrs, nil)
		} else {
			b.ptrs = append(b.ptrs, &b.vals[i])
		}
	}
	return b.ptrs
}

func (b *scalar[T]) reset() {
	clear(b.ptrs) // drop pointers into vals
	b.vals, b.nulls, b.ptrs = b.vals[:0], b.nulls[:0], b.ptrs[:0]
}

// array builds an Array(T) column from JSON arrays.
type array[T any] struct {
	conv func(v *value, e *encoder) (T, error)
	vals [][]T
	flat []T // backing store of vals, reused
	elem value
}

func (b *array[T]) add(v *value, e *encoder) error {
	switch v.kind {
	case valMissing, valNull:
		b.vals = append(b.vals, nil) // an empty array, as ClickHouse stores a missing one
		return nil
	case valRaw:
	default:
		return fmt.Errorf("want an array, got %s", v.describe())
	}
	start := len(b.flat)
	err := elements(v.b, func(tok []byte) error {
		if err := parseToken(tok, &b.elem, &e.scratch); err != nil {
			return err
		}
		if b.elem.kind == valNull {
			return errors.New("null array element")
		}
		x, err := b.conv(&b.elem, e)
		if err != nil {
			return fmt.Errorf("element %d: %w", len(b.flat)-start, err)
		}
		b.flat = append(b.flat, x)
		return nil
	})
	if err != nil {
		b.flat = b.flat[:start]
		return err
	}
	// flat may have moved: slices taken earlier still point at the old
	// array, which holds their elements unchanged.
	b.vals = append(b.vals, b.flat[start:len(b.flat):len(b.flat)])
	return nil
}

func (b *array[T]) addToken(tok []byte, e *encoder) error {
	if err := parseToken(tok, &e.val, &e.scratch); err != nil {
		return err
	}
	return b.add(&e.val, e)
}

func (b *array[T]) len() int             { return len(b.vals) }
func (b *array[T]) truncate(n int)       { b.vals = b.vals[:n] }
func (b *array[T]) slice(lo, hi int) any { return b.vals[lo:hi] }
func (b *array[T]) reset() {
	clear(b.vals)
	b.vals, b.flat = b.vals[:0], b.flat[:0]
}

// newBuilder returns the builder for a column of type t.
func newBuilder(t *colType) builder {
	if t.kind == kArray {
		return build(t.elem, true)
	}
	b := build(t, false)
	if sb, ok := b.(*scalar[string]); ok && t.lowCard {
		return newLowCard(sb)
	}
	return b
}

func make1[T any](conv func(*value, *encoder) (T, error), arr, nullable bool) builder {
	return make2(conv, nil, arr, nullable)
}

// make2 is make1 with a fast path for the common JSON forms.
func make2[T any](conv func(*value, *encoder) (T, error), fast func([]byte) (T, bool), arr, nullable bool) builder {
	if arr {
		return &array[T]{conv: conv}
	}
	return &scalar[T]{conv: conv, fast: fast, nullable: nullable}
}

func intConv[T int8 | int16 | int32 | int64 | uint8 | uint16 | uint32](lo, hi int64, name string) func(*value, *encoder) (T, error) {
	return func(v *value, _ *encoder) (T, error) {
		n, err := toInt64(v, lo, hi, name)
		return T(n), err
	}
}

func build(t *colType, arr bool) builder {
	n := t.nullable
	switch t.kind {
	case kInt8:
		return make2(intConv[int8](math.MinInt8, math.MaxInt8, "Int8"), intFast[int8](math.MinInt8, math.MaxInt8), arr, n)
	case kInt16:
		return make2(intConv[int16](math.MinInt16, math.MaxInt16, "Int16"), intFast[int16](math.MinInt16, math.MaxInt16), arr, n)
	case kInt32:
		return make2(intConv[int32](math.MinInt32, math.MaxInt32, "Int32"), intFast[int32](math.MinInt32, math.MaxInt32), arr, n)
	case kInt64:
		return make2(intConv[int64](math.MinInt64, math.MaxInt64, "Int64"), intFast[int64](math.MinInt64, math.MaxInt64), arr, n)
	case kUInt8:
		return make2(intConv[uint8](0, math.MaxUint8, "UInt8"), intFast[uint8](0, math.MaxUint8), arr, n)
	case kUInt16:
		return make2(intConv[uint16](0, math.MaxUint16, "UInt16"), intFast[uint16](0, math.MaxUint16), arr, n)
	case kUInt32:
		return make2(intConv[uint32](0, math.MaxUint32, "UInt32"), intFast[uint32](0, math.MaxUint32), arr, n)
	case kUInt64:
		return make2(func(v *value, _ *encoder) (uint64, error) { return toUint64(v) }, intFast[uint64](0, math.MaxInt64), arr, n)
	case kFloat32:
		return make2(func(v *value, _ *encoder) (float32, error) {
			f, err := toFloat(v, 32)
			return float32(f), err
		}, floatFast[float32], arr, n)
	case kFloat64:
		return make2(func(v *value, _ *encoder) (float64, error) { return toFloat(v, 64) }, floatFast[float64], arr, n)
	case kBool:
		return make2(func(v *value, _ *encoder) (bool, error) { return toBool(v) }, boolFast, arr, n)
	case kString:
		return make2(func(v *value, e *encoder) (string, error) { return e.text(v), nil }, stringFast, arr, n)
	case kFixedString:
		size := t.size
		return make1(func(v *value, e *encoder) (string, error) { return e.fixed(v, size) }, arr, n)
	case kDate:
		return make2(timeConv(t, time.Unix(0, 0).UTC(), maxDate), timeFast(t, time.Unix(0, 0).UTC(), maxDate), arr, n)
	case kDateTime:
		conv, fast := timeConv(t, time.Unix(0, 0).UTC(), maxDateTime), timeFast(t, time.Unix(0, 0).UTC(), maxDateTime)
		if !arr {
			// Unix seconds, which the driver takes as they are: 8 bytes
			// a row without a pointer, instead of a time.Time's 24 with
			// one, and no second range check.
			return make2(func(v *value, e *encoder) (int64, error) {
				x, err := conv(v, e)
				return x.Unix(), err
			}, func(tok []byte) (int64, bool) {
				x, ok := fast(tok)
				return x.Unix(), ok
			}, false, n)
		}
		return make2(conv, fast, arr, n)
	case kDateTime64:
		return make2(timeConv(t, minDateTime64, maxDateTime64), timeFast(t, minDateTime64, maxDateTime64), arr, n)
	case kUUID:
		return make1(func(v *value, _ *encoder) (uuid.UUID, error) {
			if v.kind != valString {
				return uuid.UUID{}, fmt.Errorf("want a UUID string, got %s", v.describe())
			}
			u, err := uuid.ParseBytes(v.b)
			if err != nil || len(v.b) != 36 {
				return uuid.UUID{}, fmt.Errorf("invalid UUID %q", clip(v.b))
			}
			return u, nil
		}, arr, n)
	case kEnum8:
		return make1(func(v *value, _ *encoder) (int8, error) {
			x, err := enumValue(t, v)
			return int8(x), err
		}, arr, n)
	case kEnum16:
		return make1(func(v *value, _ *encoder) (int16, error) { return enumValue(t, v) }, arr, n)
	}
	panic("clickhouse: no builder for " + t.name) // parseType admits no other kind
}

func timeConv(t *colType, lo, hi time.Time) func(*value, *encoder) (time.Time, error) {
	name := t.name
	if t.elem != nil {
		name = t.elem.name
	}
	return func(v *value, _ *encoder) (time.Time, error) { return toTime(v, t.loc, lo, hi, name) }
}

// enumValue converts an enum element's name, or its number, checking it
// is one of t's.
func enumValue(t *colType, v *value) (int16, error) {
	switch v.kind {
	case valString:
		if x, ok := t.enum[string(v.b)]; ok {
			return x, nil
		}
		return 0, fmt.Errorf("%s is not a value of %s", v.describe(), t.name)
	case valNumber, valInt:
		n, err := toInt64(v, math.MinInt16, math.MaxInt16, t.name)
		if err != nil {
			return 0, err
		}
		for _, x := range t.enum {
			if int64(x) == n {
				return x, nil
			}
		}
		return 0, fmt.Errorf("%d is not a value of %s", n, t.name)
	}
	return 0, fmt.Errorf("want an enum name for %s, got %s", t.name, v.describe())
}

// text returns v as a String column's value: strings, numbers and raw
// objects or arrays as their text, booleans and properties formatted.
func (e *encoder) text(v *value) string {
	switch v.kind {
	case valBool:
		if v.n != 0 {
			return "true"
		}
		return "false"
	case valInt:
		e.grow(20)
		start := len(e.arena)
		e.arena = strconv.AppendInt(e.arena, v.n, 10)
		return e.arenaString(start)
	case valTime:
		e.grow(40)
		start := len(e.arena)
		e.arena = v.t.UTC().AppendFormat(e.arena, time.RFC3339Nano)
		return e.arenaString(start)
	}
	if v.stable {
		// The record outlives the write, and the driver copies the
		// value into its block: no copy of our own.
		return bstr(v.b)
	}
	return e.str(v.b)
}

// fixed returns v as a FixedString(size) value, zero-padded to size (so
// the driver takes it without copying), or an error when it is longer.
func (e *encoder) fixed(v *value, size int) (string, error) {
	if v.kind != valString {
		return "", fmt.Errorf("want a string for FixedString(%d), got %s", size, v.describe())
	}
	if len(v.b) > size {
		return "", fmt.Errorf("%d bytes do not fit in FixedString(%d)", len(v.b), size)
	}
	e.grow(size)
	start := len(e.arena)
	e.arena = append(e.arena, v.b...)
	for len(e.arena)-start < size {
		e.arena = append(e.arena, 0)
	}
	return e.arenaString(start), nil
}

// arenaChunk is the size of the arena's memory blocks.
const arenaChunk = 256 << 10

// grow makes room for n bytes in the arena without moving what it holds:
// strings handed out earlier point into it. Every append to the arena
// comes after a grow. Chunks are kept for the next write: after release
// the arena starts again from the first.
func (e *encoder) grow(n int) {
	if cap(e.arena)-len(e.arena) >= n {
		return
	}
	e.chunk++
	if e.chunk < len(e.chunks) && cap(e.chunks[e.chunk]) >= n {
		e.arena = e.chunks[e.chunk][:0]
		return
	}
	c := make([]byte, 0, max(arenaChunk, n))
	e.chunks = slices.Insert(e.chunks, e.chunk, c)
	e.arena = c
}

// str copies b into the arena and returns it as a string.
func (e *encoder) str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	e.grow(len(b))
	start := len(e.arena)
	e.arena = append(e.arena, b...)
	return e.arenaString(start)
}

func (e *encoder) arenaString(start int) string {
	if len(e.arena) == start {
		return ""
	}
	// The bytes are never written again while the string is in use: the
	// arena only appends, and is reset after the insert is done.
	return unsafe.String(&e.arena[start], len(e.arena)-start)
}
