package storebench

// The session records are broker/store's (store.EncodeSession and
// DecodeSession), so every store writes the same bytes and the benchmark
// compares the stores, not the encodings. What is here frames the spool
// log's own operations (spoollog.go).

import (
	"encoding/binary"
	"errors"

	"github.com/sluicehq/sluice/broker/store"
)

var errCorrupt = errors.New("corrupt session log record")

var (
	encodeSession = store.EncodeSession
	decodeSession = store.DecodeSession
)

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads a session record; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err, d.b = errCorrupt, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if uint64(len(d.b)) < n {
		d.err, d.b = errCorrupt, nil
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.bytes(d.uvarint())) }
