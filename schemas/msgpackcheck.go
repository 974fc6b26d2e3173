package schemas

import (
	"encoding/binary"
	"fmt"
)

// checkMsgpack walks a MessagePack value without decoding it and rejects
// one that declares more array or map items than bytes remain, nests
// deeper than maxDepth, or is truncated. The msgpack module allocates an
// array's declared length before reading it: unchecked, nine bytes can ask
// for tens of gigabytes.
func checkMsgpack(b []byte) error {
	var stack []uint64 // items left in each enclosing array or map
	left := uint64(1)
	i := 0
	for {
		for left == 0 {
			if len(stack) == 0 {
				if i != len(b) {
					return fmt.Errorf("%d bytes after the value", len(b)-i)
				}
				return nil
			}
			left, stack = stack[len(stack)-1], stack[:len(stack)-1]
		}
		if i >= len(b) {
			return fmt.Errorf("truncated at byte %d", i)
		}
		c := b[i]
		i++
		left--
		var skip, items uint64
		var lenBytes int // a big-endian length of this many bytes follows
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		case c&0xf0 == 0x80:
			items = 2 * uint64(c&0x0f)
		case c&0xf0 == 0x90:
			items = uint64(c & 0x0f)
		case c&0xe0 == 0xa0:
			skip = uint64(c & 0x1f)
		case c == 0xc1:
			return fmt.Errorf("invalid code 0xc1 at byte %d", i-1)
		case c == 0xcc || c == 0xd0:
			skip = 1
		case c == 0xcd || c == 0xd1:
			skip = 2
		case c == 0xca || c == 0xce || c == 0xd2:
			skip = 4
		case c == 0xcb || c == 0xcf || c == 0xd3:
			skip = 8
		case c >= 0xd4 && c <= 0xd8: // fixext 1, 2, 4, 8, 16 plus a type byte
			skip = 1 + 1<<(c-0xd4)
		default:
			lenBytes = map[byte]int{0xc4: 1, 0xd9: 1, 0xc7: 1, 0xc5: 2, 0xda: 2, 0xc8: 2, 0xdc: 2, 0xde: 2,
				0xc6: 4, 0xdb: 4, 0xc9: 4, 0xdd: 4, 0xdf: 4}[c]
		}
		if lenBytes > 0 {
			if len(b)-i < lenBytes {
				return fmt.Errorf("truncated length at byte %d", i)
			}
			var n uint64
			switch lenBytes {
			case 1:
				n = uint64(b[i])
			case 2:
				n = uint64(binary.BigEndian.Uint16(b[i:]))
			default:
				n = uint64(binary.BigEndian.Uint32(b[i:]))
			}
			i += lenBytes
			switch c {
			case 0xdc, 0xdd:
				items = n
			case 0xde, 0xdf:
				items = 2 * n
			case 0xc7, 0xc8, 0xc9:
				skip = n + 1
			default:
				skip = n
			}
		}
		if skip > uint64(len(b)-i) {
			return fmt.Errorf("value at byte %d needs %d bytes, %d remain", i, skip, len(b)-i)
		}
		i += int(skip)
		if items > 0 {
			if items > uint64(len(b)-i) {
				return fmt.Errorf("container at byte %d declares %d items in %d bytes", i, items, len(b)-i)
			}
			if len(stack) >= maxDepth {
				return errTooDeep
			}
			stack = append(stack, left)
			left = items
		}
	}
}
