package command

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The command store: one bbolt file, written by the flusher in one
// transaction per flush (group commit).
var (
	bucketCmds    = []byte("cmds")    // id → record (JSON)
	bucketTime    = []byte("time")    // created unix ns (8 bytes BE) + id → nil, for listing and purging
	bucketPending = []byte("pending") // id → nil: not yet delivered or finished (re-driven at start)
	bucketOutbox  = []byte("outbox")  // seq (8 bytes BE) → Event (JSON)
)

// storeFile is the database file inside Config.Dir.
const storeFile = "commands.db"

// record is a command and its status as stored.
type record struct {
	Cmd     Command   `json:"cmd"`
	Status  Status    `json:"status"`
	Expires time.Time `json:"expires"` // when the TTL runs out

	publishing bool   // being handed to the broker (memory only)
	fresh      bool   // created, waiting for an accept flush (memory only)
	gen        uint64 // the accept flush that logged it: durable once done reaches it (memory only)
}

// db wraps the bbolt file.
type db struct{ b *bolt.DB }

func openDB(dir string) (*db, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating command store directory: %w", err)
	}
	path := filepath.Join(dir, storeFile)
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("opening command store %s: %w", path, err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketCmds, bucketTime, bucketPending, bucketOutbox} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("initialising command store %s: %w", path, err)
	}
	return &db{b: b}, nil
}

func (d *db) close() error {
	if err := d.b.Close(); err != nil {
		return fmt.Errorf("closing command store: %w", err)
	}
	return nil
}

func timeKey(t time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(t.UnixNano()))
	return append(k, id...)
}

func seqKey(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// get reads one record; ok is false if id is unknown.
func (d *db) get(id string) (rec record, ok bool, err error) {
	err = d.b.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketCmds).Get([]byte(id))
		if v == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(v, &rec)
	})
	if err != nil {
		return rec, false, fmt.Errorf("reading command %q: %w", id, err)
	}
	return rec, ok, nil
}

// batch is one flush: records to write, outbox events to append, outbox
// events to delete.
type batch struct {
	recs        []record
	created     []bool // recs[i] is new: index it by time
	events      []seqEvent
	deleteBelow uint64 // delete outbox events with seq < deleteBelow
}

// seqEvent is an outbox event and its position. It is stored as a
// reference: Idx, the transition of its command it reports, and the
// command id; the event is rebuilt from the command's record (eventFrom).
type seqEvent struct {
	Seq uint64 `json:"seq"`
	Idx int    `json:"idx"`
	Ev  Event  `json:"-"`
}

// eventRef encodes e as stored: uvarint Idx, then the command id.
func eventRef(e *seqEvent) []byte {
	b := binary.AppendUvarint(make([]byte, 0, 2+len(e.Ev.ID)), uint64(e.Idx))
	return append(b, e.Ev.ID...)
}

// parseEventRef decodes eventRef.
func parseEventRef(v []byte) (idx int, id string, err error) {
	n, k := binary.Uvarint(v)
	if k <= 0 || n > 1<<16 {
		return 0, "", fmt.Errorf("bad event reference %x", v)
	}
	return int(n), string(v[k:]), nil
}

func (d *db) write(b *batch) error {
	err := d.b.Update(func(tx *bolt.Tx) error {
		cb, tb, pb, ob := tx.Bucket(bucketCmds), tx.Bucket(bucketTime), tx.Bucket(bucketPending), tx.Bucket(bucketOutbox)
		var buf []byte // bbolt keeps the values until the commit: appended to, never overwritten
		for i := range b.recs {
			r := &b.recs[i]
			start := len(buf)
			buf = appendRecord(buf, r)
			id := []byte(r.Status.ID)
			if err := cb.Put(id, buf[start:len(buf):len(buf)]); err != nil {
				return err
			}
			if b.created[i] {
				if err := tb.Put(timeKey(r.Status.CreatedAt, r.Status.ID), nil); err != nil {
					return err
				}
			}
			var err error
			if r.pending() {
				err = pb.Put(id, nil)
			} else {
				err = pb.Delete(id)
			}
			if err != nil {
				return err
			}
		}
		for i := range b.events {
			if err := ob.Put(seqKey(b.events[i].Seq), eventRef(&b.events[i])); err != nil {
				return err
			}
		}
		if b.deleteBelow > 0 {
			c := ob.Cursor()
			for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) < b.deleteBelow; k, _ = c.First() {
				if err := ob.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("writing command store: %w", err)
	}
	return nil
}

// loadPending returns the records not yet delivered or finished and the
// outbox, oldest first; lost counts the events whose command is gone.
func (d *db) loadPending() (recs []record, events []seqEvent, lost int, err error) {
	err = d.b.View(func(tx *bolt.Tx) error {
		cb := tx.Bucket(bucketCmds)
		err := tx.Bucket(bucketPending).ForEach(func(k, _ []byte) error {
			v := cb.Get(k)
			if v == nil {
				return nil
			}
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decoding command %q: %w", k, err)
			}
			recs = append(recs, r)
			return nil
		})
		if err != nil {
			return err
		}
		byID := map[string]*record{}
		for i := range recs {
			byID[recs[i].Status.ID] = &recs[i]
		}
		return tx.Bucket(bucketOutbox).ForEach(func(k, v []byte) error {
			e := seqEvent{Seq: binary.BigEndian.Uint64(k)}
			idx, id, err := parseEventRef(v)
			if err != nil {
				return fmt.Errorf("decoding status event %d: %w", e.Seq, err)
			}
			r := byID[id]
			if r == nil {
				r = new(record)
				if v := cb.Get([]byte(id)); v != nil {
					if err := json.Unmarshal(v, r); err != nil {
						return fmt.Errorf("decoding command %q: %w", id, err)
					}
				}
				byID[id] = r
			}
			if idx >= len(r.Status.History) {
				lost++ // its command was purged
				return nil
			}
			e.Idx, e.Ev = idx, eventFrom(r, idx)
			events = append(events, e)
			return nil
		})
	})
	if err != nil {
		return nil, nil, 0, fmt.Errorf("loading command store: %w", err)
	}
	return recs, events, lost, nil
}

// list returns up to limit records, newest first, that pass keep,
// examining at most scan records.
func (d *db) list(keep func(*record) bool, limit, scan int) ([]record, error) {
	var out []record
	err := d.b.View(func(tx *bolt.Tx) error {
		cb := tx.Bucket(bucketCmds)
		c := tx.Bucket(bucketTime).Cursor()
		for k, _ := c.Last(); k != nil && len(out) < limit && scan > 0; k, _ = c.Prev() {
			scan--
			v := cb.Get(k[8:])
			if v == nil {
				continue
			}
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("decoding command %q: %w", k[8:], err)
			}
			if keep(&r) {
				out = append(out, r)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing commands: %w", err)
	}
	return out, nil
}

// purge deletes finished (or delivered) records last updated before
// cutoff, skipping ids in keep (still in memory), at most max per call.
// It returns how many it deleted.
func (d *db) purge(cutoff time.Time, skip func(id string) bool, max int) (int, error) {
	n := 0
	err := d.b.Update(func(tx *bolt.Tx) error {
		cb, tb, pb := tx.Bucket(bucketCmds), tx.Bucket(bucketTime), tx.Bucket(bucketPending)
		c := tb.Cursor()
		var dead [][]byte
		for k, _ := c.First(); k != nil && len(dead) < max; k, _ = c.Next() {
			if int64(binary.BigEndian.Uint64(k)) >= cutoff.UnixNano() {
				break // created after the cutoff: updated after it too
			}
			id := k[8:]
			v := cb.Get(id)
			if v == nil {
				dead = append(dead, append([]byte(nil), k...))
				continue
			}
			var r record
			if err := json.Unmarshal(v, &r); err != nil || skip(string(id)) ||
				r.pending() || !r.Status.UpdatedAt.Before(cutoff) {
				continue
			}
			dead = append(dead, append([]byte(nil), k...))
		}
		for _, k := range dead {
			if err := tb.Delete(k); err != nil {
				return err
			}
			if err := cb.Delete(k[8:]); err != nil {
				return err
			}
			if err := pb.Delete(k[8:]); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("purging commands: %w", err)
	}
	return n, nil
}
