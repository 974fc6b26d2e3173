package packet

import (
	"encoding/binary"
	"unicode/utf8"
)

// maxVarint is the largest value a Variable Byte Integer can carry
// (spec 1.5.5), which is also the largest Remaining Length.
const maxVarint = 268435455

// Errors shared by many decoders. They are package-level values so the
// common failure paths do not allocate; callers must not modify them.
var (
	errTruncated    = &Error{Code: MalformedPacket, Msg: "packet truncated"}
	errVarint       = &Error{Code: MalformedPacket, Msg: "MQTT-1.5.5-1 variable byte integer over 4 bytes or not minimally encoded"}
	errBadUTF8      = &Error{Code: MalformedPacket, Msg: "MQTT-1.5.4-1 string is not well-formed UTF-8"}
	errNulInString  = &Error{Code: MalformedPacket, Msg: "MQTT-1.5.4-2 string contains U+0000"}
	errTrailing     = &Error{Code: MalformedPacket, Msg: "bytes after the end of the packet"}
	errZeroPacketID = &Error{Code: ProtocolError, Msg: "MQTT-2.2.1-3 packet identifier 0"}
)

// malformed and protocolErr build errors for less common failures.
func malformed(msg string) error   { return &Error{Code: MalformedPacket, Msg: msg} }
func protocolErr(msg string) error { return &Error{Code: ProtocolError, Msg: msg} }

// dec is a cursor over one packet's bytes. Every read checks bounds, so a
// hostile length can never index past the end.
type dec struct {
	b   []byte
	pos int
}

func (d *dec) remaining() int { return len(d.b) - d.pos }

func (d *dec) byte() (byte, error) {
	if d.pos >= len(d.b) {
		return 0, errTruncated
	}
	c := d.b[d.pos]
	d.pos++
	return c, nil
}

func (d *dec) u16() (uint16, error) {
	if len(d.b)-d.pos < 2 {
		return 0, errTruncated
	}
	v := uint16(d.b[d.pos])<<8 | uint16(d.b[d.pos+1])
	d.pos += 2
	return v, nil
}

func (d *dec) u32() (uint32, error) {
	if len(d.b)-d.pos < 4 {
		return 0, errTruncated
	}
	b := d.b[d.pos:]
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	d.pos += 4
	return v, nil
}

// varint reads a Variable Byte Integer.
func (d *dec) varint() (uint32, error) {
	v, n, err := parseVarint(d.b[d.pos:])
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, errTruncated
	}
	d.pos += n
	return v, nil
}

// binary reads two-byte-length-prefixed binary data. The result is never
// nil, so a present but empty value stays distinguishable from absence.
func (d *dec) binary() ([]byte, error) {
	n, err := d.u16()
	if err != nil {
		return nil, err
	}
	if len(d.b)-d.pos < int(n) {
		return nil, errTruncated
	}
	v := d.b[d.pos : d.pos+int(n) : d.pos+int(n)]
	d.pos += int(n)
	return v, nil
}

// str reads a UTF-8 Encoded String and validates it.
func (d *dec) str() ([]byte, error) {
	v, err := d.binary()
	if err != nil {
		return nil, err
	}
	if err := checkString(v); err != nil {
		return nil, err
	}
	return v, nil
}

// packetID reads a packet identifier that must be non-zero.
func (d *dec) packetID() (uint16, error) {
	id, err := d.u16()
	if err != nil {
		return 0, err
	}
	if id == 0 {
		return 0, errZeroPacketID
	}
	return id, nil
}

// rest returns the unread bytes (never nil).
func (d *dec) rest() []byte {
	v := d.b[d.pos:len(d.b):len(d.b)]
	d.pos = len(d.b)
	return v
}

// end fails when unread bytes remain.
func (d *dec) end() error {
	if d.pos != len(d.b) {
		return errTrailing
	}
	return nil
}

// parseVarint decodes a Variable Byte Integer from the start of b. It
// returns n == 0 and no error when b ends before the integer does. It
// rejects a fifth byte and non-minimal encodings [MQTT-1.5.5-1].
func parseVarint(b []byte) (v uint32, n int, err error) {
	var shift uint
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, nil
		}
		c := b[i]
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			if c == 0 && i > 0 {
				return 0, 0, errVarint
			}
			return v, i + 1, nil
		}
		shift += 7
	}
	return 0, 0, errVarint
}

// varintSize is the encoded length of v (v <= maxVarint).
func varintSize(v uint32) int {
	switch {
	case v < 1<<7:
		return 1
	case v < 1<<14:
		return 2
	case v < 1<<21:
		return 3
	default:
		return 4
	}
}

func appendVarint(dst []byte, v uint32) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

func appendU16(dst []byte, v uint16) []byte { return append(dst, byte(v>>8), byte(v)) }

func appendU32(dst []byte, v uint32) []byte {
	return append(dst, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// appendBinary appends two-byte-length-prefixed data; the caller has
// checked len(b) <= 65535.
func appendBinary(dst, b []byte) []byte {
	dst = appendU16(dst, uint16(len(b)))
	return append(dst, b...)
}

// SWAR constants: a byte-wise test of eight bytes at once.
const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// zeroByte is non-zero iff some byte of x is zero.
func zeroByte(x uint64) uint64 { return (x - lo8) &^ x & hi8 }

// checkString reports why b is not a valid MQTT UTF-8 Encoded String:
// ill-formed UTF-8 or a surrogate [MQTT-1.5.4-1], or U+0000 [MQTT-1.5.4-2].
// utf8.Valid rejects encoded surrogates and overlong forms.
func checkString(b []byte) error {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		if (x&hi8)|zeroByte(x) != 0 {
			break
		}
	}
	for ; i < len(b); i++ {
		c := b[i]
		if c == 0 {
			return errNulInString
		}
		if c >= utf8.RuneSelf {
			return checkStringSlow(b[i:])
		}
	}
	return nil
}

func checkStringSlow(b []byte) error {
	if !utf8.Valid(b) {
		return errBadUTF8
	}
	for _, c := range b {
		if c == 0 {
			return errNulInString
		}
	}
	return nil
}

// ValidString reports whether b is a valid MQTT UTF-8 Encoded String:
// well-formed UTF-8 without surrogates or U+0000, at most 65535 bytes.
func ValidString(b []byte) bool { return len(b) <= 65535 && checkString(b) == nil }

// ValidTopicName reports whether b is a valid topic name for PUBLISH: a
// valid string of at least one byte without the wildcards '+' and '#'
// [MQTT-3.3.2-2, MQTT-4.7.3-1].
func ValidTopicName(b []byte) bool {
	return len(b) > 0 && len(b) <= 65535 && checkTopicName(b) == nil
}

var errWildcardTopic = &Error{Code: TopicNameInvalid, Msg: "MQTT-3.3.2-2 topic name contains a wildcard"}

// checkTopicName validates a non-empty topic name, eight bytes at a time
// while they are ASCII without NUL or wildcards.
func checkTopicName(b []byte) error {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		if (x&hi8)|zeroByte(x)|zeroByte(x^(lo8*'+'))|zeroByte(x^(lo8*'#')) != 0 {
			break
		}
	}
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case c == 0:
			return errNulInString
		case c == '+' || c == '#':
			if err := checkString(b); err != nil {
				return err
			}
			return errWildcardTopic
		case c >= utf8.RuneSelf:
			if err := checkStringSlow(b[i:]); err != nil {
				return err
			}
			for _, c := range b[i:] {
				if c == '+' || c == '#' {
					return errWildcardTopic
				}
			}
			return nil
		}
	}
	return nil
}
