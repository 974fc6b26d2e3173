package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/sluicehq/sluice/broker"
)

// A spooled record is one accepted message plus its routing decisions,
// so a restart resumes every sink without re-running the rules:
//
//	version(1) qos(1) flags(1) received_at(varint unix nanos)
//	topic client_id username content_type (uvarint length + bytes)
//	user properties: count, then name/value pairs
//	payload
//	outputs: count, then rule sink topic key value err (strings), qos(1)
//	flags(1: retain, key present, value present) mode(string)
const recordVersion = 1

// record is the decoded form of a spooled record.
type record struct {
	msg     broker.Message
	outputs []Output
	one     [1]Output // backs outputs for the common single-output record
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendRecord encodes m and outs onto b.
func appendRecord(b []byte, m *broker.Message, outs []Output) []byte {
	var flags byte
	if m.Retain {
		flags |= 1
	}
	b = append(b, recordVersion, m.QoS, flags)
	b = binary.AppendVarint(b, m.ReceivedAt.UnixNano())
	b = appendString(b, m.Topic)
	b = appendString(b, m.ClientID)
	b = appendString(b, m.Username)
	b = appendString(b, m.ContentType)
	b = binary.AppendUvarint(b, uint64(len(m.UserProperties)))
	for _, p := range m.UserProperties {
		b = appendString(b, p.Name)
		b = appendString(b, p.Value)
	}
	b = appendBytes(b, m.Payload)
	b = binary.AppendUvarint(b, uint64(len(outs)))
	for i := range outs {
		o := &outs[i]
		b = appendString(b, o.Rule)
		b = appendString(b, o.Sink)
		b = appendString(b, o.Topic)
		b = appendBytes(b, o.Key)
		b = appendBytes(b, o.Value)
		b = appendString(b, o.Err)
		var of byte
		if o.Retain {
			of |= 1
		}
		if o.Key != nil {
			of |= 2
		}
		if o.Value != nil {
			of |= 4
		}
		b = append(b, o.QoS, of)
		b = appendString(b, string(o.Mode))
	}
	return b
}

var errShortRecord = errors.New("record truncated")

// recordReader decodes a record's fields in order. The first error
// sticks: it empties b, so every later read fails too, and the one-byte
// fast paths need no error check of their own.
type recordReader struct {
	b     []byte
	err   error
	alias bool // strings and slices point into b instead of copying
}

func (r *recordReader) fail() {
	if r.err == nil {
		r.err = errShortRecord
	}
	r.b = nil
}

func (r *recordReader) byte() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *recordReader) uvarint() uint64 {
	if len(r.b) > 0 && r.b[0] < 0x80 { // one byte: most lengths and counts
		v := uint64(r.b[0])
		r.b = r.b[1:]
		return v
	}
	return r.uvarintSlow()
}

func (r *recordReader) uvarintSlow() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *recordReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytes returns a slice aliasing the record; callers copy if they keep it
// past the record's lifetime.
func (r *recordReader) bytes() []byte {
	if len(r.b) > 0 && r.b[0] < 0x80 { // one-byte length (inlined)
		if n := int(r.b[0]) + 1; n <= len(r.b) {
			s := r.b[1:n:n]
			r.b = r.b[n:]
			return s
		}
	}
	return r.bytesSlow()
}

func (r *recordReader) bytesSlow() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

func (r *recordReader) string() string {
	b := r.bytes()
	if r.alias {
		if len(b) == 0 {
			return ""
		}
		return unsafe.String(unsafe.SliceData(b), len(b))
	}
	return string(b)
}

// copyBytes returns b, copied unless the reader aliases.
func (r *recordReader) copyBytes(b []byte) []byte {
	if r.alias {
		return b
	}
	return append([]byte{}, b...)
}

// count reads a collection length, rejecting counts the remaining bytes
// cannot possibly hold (each element takes at least min bytes).
func (r *recordReader) count(min int) int {
	n := r.uvarint()
	if n > uint64(len(r.b)/min) {
		r.fail()
		return 0
	}
	return int(n)
}

// decodeRecord decodes a spooled record. The result does not alias b.
func decodeRecord(b []byte) (*record, error) {
	return decodeNew(b, false)
}

// decodeOwnedRecord decodes a record whose bytes the caller owns and never
// modifies: strings and slices of the result point into b, saving a copy
// of everything on the read path.
func decodeOwnedRecord(b []byte) (*record, error) {
	return decodeNew(b, true)
}

func decodeNew(b []byte, alias bool) (*record, error) {
	rec := &record{}
	outs, err := decodeInto(&rec.msg, rec.one[:0], b, alias)
	if err != nil {
		return nil, err
	}
	rec.outputs = outs
	return rec, nil
}

// decodeInto decodes the spooled record b into m and appends its outputs
// to outs[:0], returning them. It overwrites every field of m the format
// carries (m may hold an earlier record; the fields the format does not
// carry must be zero) and stores nothing through a pointer but into m and
// outs' array, so a caller can keep both on its stack. With alias,
// strings and slices of the result point into b, which must then outlive
// every use of them and never change.
func decodeInto(m *broker.Message, outs []Output, b []byte, alias bool) ([]Output, error) {
	r := recordReader{b: b, alias: alias}
	if v := r.byte(); r.err == nil && v != recordVersion {
		return nil, fmt.Errorf("decoding spooled record: unknown version %d", v)
	}
	m.QoS = r.byte()
	flags := r.byte()
	m.Retain = flags&1 != 0
	m.ReceivedAt = time.Unix(0, r.varint())
	m.Topic = r.string()
	m.ClientID = r.string()
	m.Username = r.string()
	m.ContentType = r.string()
	m.UserProperties = nil
	if n := r.count(2); n > 0 {
		m.UserProperties = make([]broker.UserProperty, n)
		for i := range m.UserProperties {
			m.UserProperties[i] = broker.UserProperty{Name: r.string(), Value: r.string()}
		}
	}
	if p := r.bytes(); r.alias {
		m.Payload = p
	} else {
		m.Payload = append([]byte(nil), p...)
	}
	outs = outs[:0]
	if n := r.count(9); n > 0 {
		if cap(outs) < n {
			outs = make([]Output, n)
		}
		outs = outs[:n]
		for i := range outs {
			o := &outs[i]
			o.Rule = r.string()
			o.Sink = r.string()
			o.Topic = r.string()
			key := r.bytes()
			val := r.bytes()
			o.Err = r.string()
			o.QoS = r.byte()
			of := r.byte()
			o.Retain = of&1 != 0
			o.Key, o.Value = nil, nil
			if of&2 != 0 {
				o.Key = r.copyBytes(key)
			}
			if of&4 != 0 {
				o.Value = r.copyBytes(val)
			}
			o.Mode = Mode(r.string())
		}
	}
	if r.err != nil {
		return nil, fmt.Errorf("decoding spooled record: %w", r.err)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("decoding spooled record: %d trailing bytes", len(r.b))
	}
	return outs, nil
}
