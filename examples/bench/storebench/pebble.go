// Package storebench measures candidate durable stores for the broker's
// sessions side by side: bbolt (broker/store.Disk, the store in use),
// pebble/v2 (Pebble, below) and the ingest spool used as an append-only
// session log (SpoolLog). It is a nested module so pebble never enters the
// main go.mod. See README.md for the command and broker/DESIGN.md for the
// results and the decision.
package storebench

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"

	"github.com/cockroachdb/pebble/v2"

	"github.com/sluicehq/sluice/broker"
)

// Key prefixes: one keyspace, three ranges, laid out like bolt.go's
// buckets.
const (
	prefixSession  = 's' // 's' client id → session record (codec.go)
	prefixQueue    = 'q' // 'q' client id 0x00 seq (8 bytes BE) → queued message (JSON)
	prefixRetained = 'r' // 'r' topic → message (JSON)
)

func sessionKey(id string) []byte { return append([]byte{prefixSession}, id...) }

func retainedKey(t string) []byte { return append([]byte{prefixRetained}, t...) }

// queueKey is the key of one queued message of id. Client ids never
// contain U+0000 [MQTT-1.5.4-2], so the 0 byte ends the id.
func queueKey(id string, seq uint64) []byte {
	k := make([]byte, 0, len(id)+10)
	k = append(k, prefixQueue)
	k = append(k, id...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

// Pebble is a broker.SessionStore in a pebble/v2 database, with the
// semantics of broker/store.Disk: each Save is one batch committed with a
// WAL fsync (group commit: one sync per Save), queued messages are one key
// each, and the range of a queue below QueueHead (or a deleted session's
// whole queue) goes with one range deletion instead of a seek and delete
// per message as bbolt needs.
type Pebble struct {
	db *pebble.DB
}

var _ broker.SessionStore = (*Pebble)(nil)

// OpenPebble opens (creating it if needed) a pebble store in dir. Pebble's
// own log lines go to log (Info as Debug).
func OpenPebble(dir string, log *slog.Logger) (*Pebble, error) {
	db, err := pebble.Open(dir, &pebble.Options{
		Logger:             slogLogger{log: log},
		FormatMajorVersion: pebble.FormatNewest,
	})
	if err != nil {
		return nil, fmt.Errorf("opening pebble store %s: %w", dir, err)
	}
	return &Pebble{db: db}, nil
}

// Close closes the database. It waits for pebble's background flushes and
// compactions.
func (p *Pebble) Close() error {
	if err := p.db.Close(); err != nil {
		return fmt.Errorf("closing pebble store: %w", err)
	}
	return nil
}

// Save implements broker.SessionStore: one batch, one synced commit.
func (p *Pebble) Save(_ context.Context, b broker.StoreBatch) error {
	batch := p.db.NewBatch()
	defer batch.Close()
	if err := p.fill(batch, &b); err != nil {
		return fmt.Errorf("saving broker state: %w", err)
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("saving broker state: committing: %w", err)
	}
	return nil
}

// fill writes the changes of b into batch, deletions first.
func (p *Pebble) fill(batch *pebble.Batch, b *broker.StoreBatch) error {
	for _, id := range b.DeletedSessions {
		if err := batch.Delete(sessionKey(id), nil); err != nil {
			return err
		}
		if err := batch.DeleteRange(queueKey(id, 0), queueKey(id, math.MaxUint64), nil); err != nil {
			return err
		}
		// queueKey(id, MaxUint64) itself is never used: seqs count up from 0.
	}
	for _, t := range b.DeletedRetained {
		if err := batch.Delete(retainedKey(t), nil); err != nil {
			return err
		}
	}
	for i := range b.Sessions {
		s := &b.Sessions[i]
		below := s.QueueHead
		if s.QueueFull {
			below = math.MaxUint64
		}
		if below > 0 {
			if err := batch.DeleteRange(queueKey(s.ClientID, 0), queueKey(s.ClientID, below), nil); err != nil {
				return err
			}
		}
		for j := range s.Queued {
			v, err := json.Marshal(&s.Queued[j])
			if err != nil {
				return fmt.Errorf("encoding queued message of %q: %w", s.ClientID, err)
			}
			if err := batch.Set(queueKey(s.ClientID, s.Queued[j].Seq), v, nil); err != nil {
				return err
			}
		}
		v, err := encodeSession(s)
		if err != nil {
			return fmt.Errorf("encoding session %q: %w", s.ClientID, err)
		}
		if err := batch.Set(sessionKey(s.ClientID), v, nil); err != nil {
			return err
		}
	}
	for _, m := range b.Retained {
		v, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("encoding retained message %q: %w", m.Topic, err)
		}
		if err := batch.Set(retainedKey(m.Topic), v, nil); err != nil {
			return err
		}
	}
	return nil
}

// Load implements broker.SessionStore: three range scans.
func (p *Pebble) Load(context.Context) (broker.StoredState, error) {
	var st broker.StoredState
	index := make(map[string]int)
	err := p.scan(prefixSession, func(k, v []byte) error {
		s, err := decodeSession(string(k), v)
		if err != nil {
			return fmt.Errorf("decoding: %w", err)
		}
		index[s.ClientID] = len(st.Sessions)
		st.Sessions = append(st.Sessions, s)
		return nil
	})
	if err == nil {
		err = p.scan(prefixQueue, func(k, v []byte) error {
			if len(k) < 9 || k[len(k)-9] != 0 {
				return fmt.Errorf("bad queue key %q", k)
			}
			i, ok := index[string(k[:len(k)-9])]
			if !ok {
				return nil // left over from a deleted session
			}
			var sd broker.StoredDelivery
			if err := json.Unmarshal(v, &sd); err != nil {
				return fmt.Errorf("decoding queued message %q: %w", k, err)
			}
			st.Sessions[i].Queued = append(st.Sessions[i].Queued, sd)
			return nil
		})
	}
	if err == nil {
		err = p.scan(prefixRetained, func(k, v []byte) error {
			m := new(broker.Message)
			if err := json.Unmarshal(v, m); err != nil {
				return fmt.Errorf("decoding retained message %q: %w", k, err)
			}
			st.Retained = append(st.Retained, m)
			return nil
		})
	}
	if err != nil {
		return broker.StoredState{}, fmt.Errorf("loading broker store: %w", err)
	}
	return st, nil
}

// scan calls fn for every key with prefix (the prefix cut off). k and v
// are valid only during the call.
func (p *Pebble) scan(prefix byte, fn func(k, v []byte) error) error {
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err == nil {
			err = fn(it.Key()[1:], v)
		}
		if err != nil {
			_ = it.Close()
			return err
		}
	}
	return it.Close()
}

// slogLogger routes pebble's log lines to an injected *slog.Logger.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Infof(format string, args ...any) { l.log.Debug(fmt.Sprintf(format, args...)) }

func (l slogLogger) Errorf(format string, args ...any) { l.log.Error(fmt.Sprintf(format, args...)) }

// Fatalf logs and panics: pebble does not expect Fatalf to return.
func (l slogLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg)
	panic("pebble: " + msg)
}
