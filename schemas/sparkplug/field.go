package sparkplug

import (
	"encoding/binary"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// field reads one tag and its value from b. For varint and fixed fields
// the value is in u; for length-delimited ones in v.
func field(b []byte) (num protowire.Number, typ protowire.Type, u uint64, v []byte, n int, err error) {
	// Fast path: a one-byte tag (fields 1-15), which every field of the
	// schema has, with a varint or length of up to 9 bytes (63 bits: no
	// overflow to check) or a fixed value, all in b. Anything else, and
	// every error, is left to fieldSlow.
	if len(b) >= 2 && b[0] >= 8 && b[0] < 0x80 {
		num, typ = protowire.Number(b[0]>>3), protowire.Type(b[0]&7)
		switch typ {
		case protowire.VarintType:
			if b[1] < 0x80 {
				return num, typ, uint64(b[1]), nil, 2, nil
			}
			if x, m := varint(b[1:]); m > 0 {
				return num, typ, x, nil, 1 + m, nil
			}
		case protowire.BytesType:
			l, m := uint64(b[1]), 1
			if l >= 0x80 {
				l, m = varint(b[1:])
			}
			if m > 0 && l <= uint64(len(b)-1-m) {
				end := 1 + m + int(l)
				return num, typ, 0, b[1+m : end : end], end, nil
			}
		case protowire.Fixed64Type:
			if len(b) >= 9 {
				return num, typ, binary.LittleEndian.Uint64(b[1:]), nil, 9, nil
			}
		case protowire.Fixed32Type:
			if len(b) >= 5 {
				return num, typ, uint64(binary.LittleEndian.Uint32(b[1:])), nil, 5, nil
			}
		}
	}
	return fieldSlow(b)
}

// uvarint is varint, inlined for the common one-byte case.
func uvarint(b []byte) (uint64, int) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	return varint(b)
}

// varint reads a varint of at most 9 bytes from b; m is its length, 0
// when it is longer or truncated.
func varint(b []byte) (u uint64, m int) {
	for i := 0; i < len(b) && i < 9; i++ {
		u |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return u, i + 1
		}
	}
	return 0, 0
}

// fieldSlow is field for any tag and value, through protowire.
func fieldSlow(b []byte) (num protowire.Number, typ protowire.Type, u uint64, v []byte, n int, err error) {
	num, typ, n = protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, 0, nil, 0, protowire.ParseError(n)
	}
	b = b[n:]
	var m int
	switch typ {
	case protowire.VarintType:
		u, m = protowire.ConsumeVarint(b)
	case protowire.Fixed32Type:
		var x uint32
		x, m = protowire.ConsumeFixed32(b)
		u = uint64(x)
	case protowire.Fixed64Type:
		u, m = protowire.ConsumeFixed64(b)
	case protowire.BytesType:
		v, m = protowire.ConsumeBytes(b)
	default:
		m = protowire.ConsumeFieldValue(num, typ, b)
	}
	if m < 0 {
		return 0, 0, 0, nil, 0, fmt.Errorf("field %d: %w", num, protowire.ParseError(m))
	}
	return num, typ, u, v, n + m, nil
}

// want checks that field num has the wire type its schema gives it.
func want(num protowire.Number, got, typ protowire.Type) error {
	if got != typ {
		return wrongType(num, got, typ)
	}
	return nil
}

func wrongType(num protowire.Number, got, typ protowire.Type) error {
	return fmt.Errorf("field %d: wire type %d, want %d", num, got, typ)
}
