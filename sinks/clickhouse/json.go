package clickhouse

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
	"time"
	"unsafe"
)

// valKind is the kind of one value on its way to a column.
type valKind uint8

const (
	valMissing valKind = iota // the field is absent
	valNull                   // JSON null
	valString                 // b: the text, unescaped
	valNumber                 // b: a JSON number's text
	valBool                   // n: 0 or 1
	valInt                    // n (a record property)
	valTime                   // t (a record property)
	valRaw                    // b: a JSON object or array, as text
)

// value is one field or property, before conversion to a column type.
type value struct {
	kind valKind
	// b points into the record (stable) or into a scratch buffer reused
	// for the next value, which a column must copy.
	b      []byte
	stable bool
	n      int64
	t      time.Time
}

func (v *value) setString(s string) {
	*v = value{kind: valString, b: unsafe.Slice(unsafe.StringData(s), len(s)), stable: true}
}

// describe names v's kind for error messages.
func (v *value) describe() string {
	switch v.kind {
	case valMissing:
		return "no value (field missing)"
	case valNull:
		return "null"
	case valString:
		return fmt.Sprintf("string %q", clip(v.b))
	case valNumber:
		return "number " + string(clip(v.b))
	case valBool:
		if v.n != 0 {
			return "true"
		}
		return "false"
	case valInt:
		return fmt.Sprintf("integer %d", v.n)
	case valTime:
		return "time " + v.t.Format(time.RFC3339Nano)
	case valRaw:
		if len(v.b) > 0 && v.b[0] == '[' {
			return "an array"
		}
		return "an object"
	}
	return "?"
}

func clip(b []byte) []byte {
	if len(b) > 40 {
		return append(b[:37:37], "..."...)
	}
	return b
}

// fieldNode is the tree of JSON paths the columns read: a key's node
// names the slot its value fills and the nested keys below it.
type fieldNode struct {
	slot int // -1 when only nested keys are read
	// kids are in key byte order: rules encode objects with sorted keys,
	// so the scanner predicts each key to be the one after the last it
	// matched and checks that with one compare. Objects have few keys:
	// a linear search serves the other cases.
	kids []fieldKid
}

// fieldKid is one key of a fieldNode.
type fieldKid struct {
	key  string
	node *fieldNode
	// quoted is the key in quotes, pat its first 8 bytes and pat2 the 8
	// after (or fewer, masked by mask and mask2) as little-endian words:
	// the predicted key is checked with one compare, two for keys of 7
	// to 14 bytes.
	quoted      string
	pat, mask   uint64
	pat2, mask2 uint64
	// plain says the key holds no quote or backslash, so its raw text in
	// a document is the key itself.
	plain bool
}

func (n *fieldNode) add(path []string, slot int) {
	for _, key := range path {
		i := n.index(unsafe.Slice(unsafe.StringData(key), len(key)))
		if i < 0 {
			i, _ = slices.BinarySearchFunc(n.kids, key, func(k fieldKid, key string) int { return strings.Compare(k.key, key) })
			q := `"` + key + `"`
			kid := fieldKid{key: key, node: &fieldNode{slot: -1}, quoted: q, plain: !strings.ContainsAny(key, "\\\"")}
			for j := 0; j < len(q) && j < 8; j++ {
				kid.pat |= uint64(q[j]) << (8 * j)
				kid.mask |= 0xff << (8 * j)
			}
			for j := 8; j < len(q) && j < 16; j++ {
				kid.pat2 |= uint64(q[j]) << (8 * (j - 8))
				kid.mask2 |= 0xff << (8 * (j - 8))
			}
			n.kids = slices.Insert(n.kids, i, kid)
		}
		n = n.kids[i].node
	}
	n.slot = slot
}

// index returns the position of key in n.kids, or -1.
func (n *fieldNode) index(key []byte) int {
	for i := range n.kids {
		if k := n.kids[i].key; len(k) == len(key) && k == string(key) {
			return i
		}
	}
	return -1
}

var errNotObject = errors.New("value is not a JSON object")

// scanner reads the fields a table's columns need from one JSON object in
// a single pass, without decoding the rest: slots[i] receives the raw
// text of the value for slot i (nil when absent).
type scanner struct {
	data []byte
	pos  int
	key  []byte // unescaped key scratch
}

func (s *scanner) ws() {
	if s.pos < len(s.data) && s.data[s.pos] > ' ' {
		return // compact JSON, the common case: no call
	}
	s.wsSlow()
}

func (s *scanner) wsSlow() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// span is the raw text of a field's value in the record, data[lo:hi];
// hi is 0 when the field is absent. Offsets, not slices: filling a slot
// stores no pointer (no GC write barrier per field).
type span struct{ lo, hi int32 }

// text returns the span's bytes in data, nil when the field is absent.
func (sp span) text(data []byte) []byte {
	if sp.hi == 0 {
		return nil
	}
	return data[sp.lo:sp.hi]
}

// scan fills slots from the object in data.
func (s *scanner) scan(data []byte, root *fieldNode, slots []span) error {
	if len(data) > math.MaxInt32 {
		return fmt.Errorf("%w: %d bytes", errNotObject, len(data))
	}
	s.data, s.pos = data, 0
	s.ws()
	if s.pos >= len(s.data) || s.data[s.pos] != '{' {
		return errNotObject
	}
	if err := s.object(root, slots); err != nil {
		return fmt.Errorf("%w: %v", errNotObject, err)
	}
	s.ws()
	if s.pos != len(s.data) {
		return fmt.Errorf("%w: trailing data at offset %d", errNotObject, s.pos)
	}
	return nil
}

// wsAt returns the offset of the first byte at or after i that is not
// JSON whitespace.
func wsAt(d []byte, i int) int {
	if i < len(d) && d[i] > ' ' {
		return i // compact JSON, the common case: no call
	}
	return wsSlowAt(d, i)
}

func wsSlowAt(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
		i++
	}
	return i
}

// object reads the object at pos ('{'), filling the slots of node's
// children. The offset lives in a local while it runs (s.pos only
// around the calls that take it), and compact JSON with the predicted
// keys takes the straight path.
func (s *scanner) object(node *fieldNode, slots []span) error {
	d := s.data
	i := wsAt(d, s.pos+1) // past '{'
	if i < len(d) && d[i] == '}' {
		s.pos = i + 1
		return nil
	}
	next := 0 // the key expected next, in node.kids
	for {
		i = wsAt(d, i)
		if i >= len(d) || d[i] != '"' {
			s.pos = i
			return s.syntax("want a key")
		}
		var child *fieldNode
		if end := predicted(d, i, node, next); end > 0 {
			child, i = node.kids[next].node, end
			next++
		} else {
			end, escaped, ok := stringEnd(d, i)
			if !ok {
				s.pos = len(d)
				return s.syntax("unterminated string")
			}
			key := d[i+1 : end-1]
			if escaped {
				var err error
				if s.key, err = unescape(s.key[:0], key); err != nil {
					return err
				}
				key = s.key
			}
			if k := node.index(key); k >= 0 {
				child, next = node.kids[k].node, k+1
			}
			i = end
		}
		if i >= len(d) || d[i] != ':' {
			if i = wsAt(d, i); i >= len(d) || d[i] != ':' {
				s.pos = i
				return s.syntax("want ':'")
			}
		}
		i = wsAt(d, i+1)
		vstart := i
		if i >= len(d) {
			s.pos = i
			return s.syntax("want a value")
		}
		switch c := d[i]; {
		case c == '"':
			end, _, ok := stringEnd(d, i)
			if !ok {
				s.pos = len(d)
				return s.syntax("unterminated string")
			}
			i = end
		case c == '-' || (c >= '0' && c <= '9'):
			for i++; i < len(d); i++ {
				if c := d[i]; (c < '0' || c > '9') && c != '.' && c != 'e' && c != 'E' && c != '-' && c != '+' {
					break
				}
			}
		case c == '{' && child != nil && child.kids != nil:
			s.pos = i
			if err := s.object(child, slots); err != nil {
				return err
			}
			i = s.pos
		default:
			s.pos = i
			if err := s.skip(); err != nil {
				return err
			}
			i = s.pos
		}
		if child != nil && child.slot >= 0 {
			slots[child.slot] = span{int32(vstart), int32(i)}
		}
		if i < len(d) && d[i] == ',' {
			i++
			continue
		}
		i = wsAt(d, i)
		s.pos = i
		if i >= len(d) {
			return s.syntax("unterminated object")
		}
		switch d[i] {
		case ',':
			i++
		case '}':
			s.pos = i + 1
			return nil
		default:
			return s.syntax("want ',' or '}'")
		}
	}
}

// predicted checks whether the key at i (its opening quote) in d is
// node.kids[next]; it returns the offset after the key, or 0.
func predicted(d []byte, i int, node *fieldNode, next int) int {
	if next >= len(node.kids) {
		return 0
	}
	k := &node.kids[next]
	end := i + len(k.quoted)
	if !k.plain || end > len(d) {
		return 0
	}
	switch {
	case i+16 <= len(d) && len(k.quoted) <= 16:
		if binary.LittleEndian.Uint64(d[i:])&k.mask != k.pat || binary.LittleEndian.Uint64(d[i+8:])&k.mask2 != k.pat2 {
			return 0
		}
	case i+8 <= len(d) && len(k.quoted) <= 8:
		if binary.LittleEndian.Uint64(d[i:])&k.mask != k.pat {
			return 0
		}
	case string(d[i:end]) != k.quoted:
		return 0
	}
	return end
}

func (s *scanner) syntax(msg string) error {
	return fmt.Errorf("%s at offset %d", msg, s.pos)
}

// stringEnd moves past the string at pos and returns the offset after
// its closing quote and whether it holds escapes.
func (s *scanner) stringEnd() (end int, escaped bool, err error) {
	end, escaped, ok := stringEnd(s.data, s.pos)
	if !ok {
		s.pos = len(s.data)
		return 0, false, s.syntax("unterminated string")
	}
	s.pos = end
	return end, escaped, nil
}

// stringEnd returns the offset after the closing quote of the string
// whose opening quote is at d[i], and whether it holds escapes; ok is
// false when it is not terminated.
func stringEnd(d []byte, i int) (end int, escaped, ok bool) {
	i++
	for {
		// Eight bytes at a time to the next quote or backslash.
		for i+8 <= len(d) {
			x := binary.LittleEndian.Uint64(d[i:])
			if m := hasByte(x, '"') | hasByte(x, '\\'); m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		for i < len(d) && d[i] != '"' && d[i] != '\\' {
			i++
		}
		if i >= len(d) {
			return 0, false, false
		}
		if d[i] == '"' {
			return i + 1, escaped, true
		}
		escaped = true
		i += 2 // the backslash and the byte it escapes, a quote included
	}
}

// hasByte sets the high bit of each byte of x equal to b; the lowest set
// bit is exact (higher ones may be false positives, never needed).
func hasByte(x uint64, b byte) uint64 {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	y := x ^ (lo * uint64(b))
	return (y - lo) &^ y & hi
}

// skip moves past one value of any kind.
func (s *scanner) skip() error {
	if s.pos >= len(s.data) {
		return s.syntax("want a value")
	}
	switch c := s.data[s.pos]; c {
	case '"':
		_, _, err := s.stringEnd()
		return err
	case '{', '[':
		return s.skipNested()
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		start := s.pos
		for s.pos < len(s.data) {
			c := s.data[s.pos]
			if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
				s.pos++
				continue
			}
			break
		}
		if s.pos == start {
			return s.syntax(fmt.Sprintf("invalid character %q", c))
		}
		return nil
	}
}

func (s *scanner) literal(lit string) error {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(lit)) {
		return s.syntax("invalid literal")
	}
	s.pos += len(lit)
	return nil
}

// skipNested moves past an object or array, matching brackets outside
// strings.
func (s *scanner) skipNested() error {
	depth := 0
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				s.pos++
				return nil
			}
		case '"':
			if _, _, err := s.stringEnd(); err != nil {
				return err
			}
			continue
		}
		s.pos++
	}
	return s.syntax("unterminated object or array")
}
