package storebench

// This file is a copy of broker/store/codec.go (unexported there), so the
// pebble and spool stores write session records byte for byte like bbolt
// does and the benchmark compares the stores, not the encodings. The
// contract test (store_test.go) loads the same batches back from every
// store and compares them, which catches a copy that drifted in meaning.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/topic"
)

// Session records are a compact binary encoding: restoring 100,000
// sessions with 10 subscriptions each spent most of its time in
// encoding/json. Inflight messages (rare, at most the window) stay JSON.
//
//	version 1 | expiry uvarint | offline unix ns varint (0: none)
//	| queue head uvarint | subs uvarint × (filter, group, qos, flags, rh, id)
//	| inbound QoS 2 ids uvarint × uvarint | inflight JSON length uvarint, bytes
const recordVersion = 1

var errCorrupt = errors.New("corrupt session record")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// encodeSession encodes s without its client id (the key) and queue.
func encodeSession(s *broker.StoredSession) ([]byte, error) {
	b := make([]byte, 0, 64+32*len(s.Subscriptions))
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, uint64(s.Expiry))
	var off int64
	if !s.OfflineSince.IsZero() {
		off = s.OfflineSince.UnixNano()
	}
	b = binary.AppendVarint(b, off)
	b = binary.AppendUvarint(b, s.QueueHead)
	b = binary.AppendUvarint(b, uint64(len(s.Subscriptions)))
	for _, sub := range s.Subscriptions {
		b = appendString(b, sub.Filter)
		b = appendString(b, sub.Group)
		var flags byte
		if sub.NoLocal {
			flags |= 1
		}
		if sub.RetainAsPublished {
			flags |= 2
		}
		b = append(b, sub.QoS, flags, sub.RetainHandling)
		b = binary.AppendUvarint(b, uint64(sub.ID))
	}
	b = binary.AppendUvarint(b, uint64(len(s.InboundQoS2)))
	for _, id := range s.InboundQoS2 {
		b = binary.AppendUvarint(b, uint64(id))
	}
	var out []byte
	if len(s.Outbound) > 0 {
		var err error
		if out, err = json.Marshal(s.Outbound); err != nil {
			return nil, err
		}
	}
	b = binary.AppendUvarint(b, uint64(len(out)))
	return append(b, out...), nil
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

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
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

// decodeSession decodes a record of client id.
func decodeSession(id string, rec []byte) (broker.StoredSession, error) {
	s := broker.StoredSession{ClientID: id}
	if len(rec) == 0 || rec[0] != recordVersion {
		return s, fmt.Errorf("session %q: unknown record version", id)
	}
	d := &decoder{b: rec[1:]}
	s.Expiry = uint32(d.uvarint())
	if off := d.varint(); off != 0 {
		s.OfflineSince = time.Unix(0, off).UTC()
	}
	s.QueueHead = d.uvarint()
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		return s, fmt.Errorf("session %q: %w", id, errCorrupt)
	}
	s.Subscriptions = make([]topic.Sub, 0, n)
	for range n {
		sub := topic.Sub{ClientID: id, Filter: d.string(), Group: d.string()}
		f := d.bytes(3)
		if d.err != nil {
			break
		}
		sub.QoS, sub.NoLocal, sub.RetainAsPublished, sub.RetainHandling = f[0], f[1]&1 != 0, f[1]&2 != 0, f[2]
		sub.ID = uint32(d.uvarint())
		s.Subscriptions = append(s.Subscriptions, sub)
	}
	n = d.uvarint()
	for i := uint64(0); i < n && d.err == nil; i++ {
		s.InboundQoS2 = append(s.InboundQoS2, uint16(d.uvarint()))
	}
	if out := d.bytes(d.uvarint()); d.err == nil && len(out) > 0 {
		if err := json.Unmarshal(out, &s.Outbound); err != nil {
			return s, fmt.Errorf("session %q: decoding inflight messages: %w", id, err)
		}
	}
	if d.err != nil {
		return s, fmt.Errorf("session %q: %w", id, d.err)
	}
	return s, nil
}
