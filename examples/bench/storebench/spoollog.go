package storebench

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/ingest/spool"
)

// Operations of a SpoolLog record.
const (
	opDeleteSession  = 'D' // client id
	opDeleteRetained = 'X' // topic
	opSession        = 'S' // client id, queue-full flag, session record, queued messages
	opRetained       = 'R' // message JSON
)

// SpoolLog is a broker.SessionStore over the ingest spool: each Save is
// one spool record (so a batch is atomic: a torn tail is cut by the
// spool's recovery) appended with the spool's group commit, and Load
// replays the whole log. It has no compaction: deleted sessions, drained
// queues and replaced retained messages stay on disk until a compactor
// (not written) rewrote the live state into a new log. It exists to
// measure what the spool's write path costs for the same bytes as the
// keyed stores; see broker/DESIGN.md for the compaction estimate.
type SpoolLog struct {
	sp *spool.Spool
}

var _ broker.SessionStore = (*SpoolLog)(nil)

// spoolLoadCursor is the cursor Load reads the log with; it is removed
// after each Load, so with no cursor left retention never deletes a
// segment.
const spoolLoadCursor = "session-load"

// OpenSpoolLog opens (creating it if needed) a spool session log in dir.
func OpenSpoolLog(dir string, log *slog.Logger) (*SpoolLog, error) {
	sp, err := spool.Open(dir, spool.Options{
		SegmentBytes:   128 << 20,
		MaxBytes:       64 << 30, // no compaction: the log only grows
		MaxRecordBytes: 64 << 20, // one record per Save
		QueueBytes:     128 << 20,
		MaxInflight:    1 << 20,
		Logger:         log,
	})
	if err != nil {
		return nil, fmt.Errorf("opening spool session log: %w", err)
	}
	return &SpoolLog{sp: sp}, nil
}

// Close closes the spool.
func (l *SpoolLog) Close() error {
	if err := l.sp.Close(context.Background()); err != nil {
		return fmt.Errorf("closing spool session log: %w", err)
	}
	return nil
}

// Bytes is the size of the log on disk.
func (l *SpoolLog) Bytes() int64 { return l.sp.Stats().Bytes }

// Save implements broker.SessionStore: one record, durable on return.
func (l *SpoolLog) Save(ctx context.Context, b broker.StoreBatch) error {
	rec, err := encodeBatch(&b)
	if err != nil {
		return fmt.Errorf("saving broker state: %w", err)
	}
	if _, err := l.sp.AppendSync(ctx, rec); err != nil {
		return fmt.Errorf("saving broker state: appending: %w", err)
	}
	return nil
}

func encodeBatch(b *broker.StoreBatch) ([]byte, error) {
	var out []byte
	for _, id := range b.DeletedSessions {
		out = appendString(append(out, opDeleteSession), id)
	}
	for _, t := range b.DeletedRetained {
		out = appendString(append(out, opDeleteRetained), t)
	}
	for i := range b.Sessions {
		s := &b.Sessions[i]
		rec, err := encodeSession(s)
		if err != nil {
			return nil, fmt.Errorf("encoding session %q: %w", s.ClientID, err)
		}
		out = appendString(append(out, opSession), s.ClientID)
		full := byte(0)
		if s.QueueFull {
			full = 1
		}
		out = append(out, full)
		out = appendBytes(out, rec)
		out = binary.AppendUvarint(out, uint64(len(s.Queued)))
		for j := range s.Queued {
			v, err := json.Marshal(&s.Queued[j])
			if err != nil {
				return nil, fmt.Errorf("encoding queued message of %q: %w", s.ClientID, err)
			}
			out = appendBytes(out, v)
		}
	}
	for _, m := range b.Retained {
		v, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("encoding retained message %q: %w", m.Topic, err)
		}
		out = appendBytes(append(out, opRetained), v)
	}
	return out, nil
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// Load implements broker.SessionStore: it replays every record.
func (l *SpoolLog) Load(ctx context.Context) (broker.StoredState, error) {
	st, err := l.replay(ctx)
	if err != nil {
		return broker.StoredState{}, fmt.Errorf("loading spool session log: %w", err)
	}
	return st, nil
}

func (l *SpoolLog) replay(ctx context.Context) (broker.StoredState, error) {
	head := l.sp.Stats().Head
	c, err := l.sp.Cursor(spoolLoadCursor)
	if err != nil {
		return broker.StoredState{}, err
	}
	sessions := make(map[string]*broker.StoredSession)
	retained := make(map[string]*broker.Message)
	for n := l.sp.Stats().Tail; n < head; n++ {
		r, err := c.Next(ctx)
		if err != nil {
			return broker.StoredState{}, errors.Join(err, l.sp.RemoveCursor(spoolLoadCursor))
		}
		if err := apply(r.Data, sessions, retained); err != nil {
			err = fmt.Errorf("record %d: %w", r.Offset, err)
			return broker.StoredState{}, errors.Join(err, l.sp.RemoveCursor(spoolLoadCursor))
		}
	}
	if err := l.sp.RemoveCursor(spoolLoadCursor); err != nil {
		return broker.StoredState{}, err
	}
	var st broker.StoredState
	for _, s := range sessions {
		st.Sessions = append(st.Sessions, *s)
	}
	sort.Slice(st.Sessions, func(i, j int) bool { return st.Sessions[i].ClientID < st.Sessions[j].ClientID })
	for _, m := range retained {
		st.Retained = append(st.Retained, m)
	}
	sort.Slice(st.Retained, func(i, j int) bool { return st.Retained[i].Topic < st.Retained[j].Topic })
	return st, nil
}

// apply replays one record into the maps.
func apply(rec []byte, sessions map[string]*broker.StoredSession, retained map[string]*broker.Message) error {
	d := &decoder{b: rec}
	for len(d.b) > 0 && d.err == nil {
		op := d.bytes(1)
		if d.err != nil {
			break
		}
		switch op[0] {
		case opDeleteSession:
			delete(sessions, d.string())
		case opDeleteRetained:
			delete(retained, d.string())
		case opSession:
			id := d.string()
			full := d.bytes(1)
			body := d.bytes(d.uvarint())
			if d.err != nil {
				break
			}
			s, err := decodeSession(id, body)
			if err != nil {
				return err
			}
			s.QueueFull = full[0] == 1
			for n := d.uvarint(); n > 0 && d.err == nil; n-- {
				var sd broker.StoredDelivery
				if err := json.Unmarshal(d.bytes(d.uvarint()), &sd); err != nil && d.err == nil {
					return fmt.Errorf("decoding queued message of %q: %w", id, err)
				}
				s.Queued = append(s.Queued, sd)
			}
			var old []broker.StoredDelivery
			if prev := sessions[id]; prev != nil {
				old = prev.Queued
			}
			s.Queued = broker.MergeQueue(old, s)
			if len(s.Queued) == 0 {
				s.Queued = nil // as the keyed stores load it
			}
			s.QueueFull = false
			sessions[id] = &s
		case opRetained:
			m := new(broker.Message)
			if err := json.Unmarshal(d.bytes(d.uvarint()), m); err != nil && d.err == nil {
				return fmt.Errorf("decoding retained message: %w", err)
			}
			if d.err == nil {
				retained[m.Topic] = m
			}
		default:
			return fmt.Errorf("unknown operation %q: %w", op[0], errCorrupt)
		}
	}
	if d.err != nil {
		return d.err
	}
	return nil
}
