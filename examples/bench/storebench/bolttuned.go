// Code copied from broker/store/bolt.go for one experiment: the same store
// with bbolt options the broker does not set (see boltTunedOptions).

package storebench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sluicehq/sluice/broker"
)

// boltTunedOptions are what etcd runs bbolt with: the freelist is not
// written at each commit (rebuilt by a scan at open) and kept as a map.
func boltTunedOptions() *bolt.Options {
	return &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType}
}

// boltFileName is the database file inside the store directory.
const boltFileName = "broker.db"

var (
	boltBucketSessions = []byte("sessions") // client id → session without its queue
	boltBucketQueue    = []byte("queue")    // client id, 0, seq (8 bytes BE) → queued message
	boltBucketRetained = []byte("retained") // topic → message
)

// boltQueueKey is the key of one queued message. Client ids never contain
// U+0000 [MQTT-1.5.4-2], so the 0 byte ends the id.
func boltQueueKey(id string, seq uint64) []byte {
	k := make([]byte, len(id)+9)
	copy(k, id)
	binary.BigEndian.PutUint64(k[len(id)+1:], seq)
	return k
}

// boltDeleteQueue deletes the queued messages of id with seq < below.
func boltDeleteQueue(b *bolt.Bucket, id string, below uint64) error {
	prefix := append([]byte(id), 0)
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(k) == len(prefix)+8; k, _ = c.Seek(prefix) {
		if binary.BigEndian.Uint64(k[len(prefix):]) >= below {
			return nil
		}
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// BoltTuned is a broker.SessionStore in a bbolt file. Each Save is one
// transaction, committed with fsync before it returns: a batch is durable
// when Save returns nil, or not written at all. Queued messages are one
// key each, so a save writes only what changed: new messages, the range
// sent since (deleted), and the small session record.
type BoltTuned struct {
	db *bolt.DB
}

var _ broker.SessionStore = (*BoltTuned)(nil)

// OpenBoltTuned opens (creating it if needed) the store in dir. It fails if
// another process holds the file.
func OpenBoltTuned(dir string) (*BoltTuned, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating broker store directory: %w", err)
	}
	path := filepath.Join(dir, boltFileName)
	db, err := bolt.Open(path, 0o600, boltTunedOptions())
	if err != nil {
		return nil, fmt.Errorf("opening broker store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{boltBucketSessions, boltBucketQueue, boltBucketRetained} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialising broker store %s: %w", path, err)
	}
	return &BoltTuned{db: db}, nil
}

// Close closes the file. It is safe to call twice.
func (d *BoltTuned) Close() error {
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("closing broker store: %w", err)
	}
	return nil
}

// Load implements broker.SessionStore.
func (d *BoltTuned) Load(context.Context) (broker.StoredState, error) {
	var st broker.StoredState
	err := d.db.View(func(tx *bolt.Tx) error {
		index := make(map[string]int)
		err := tx.Bucket(boltBucketSessions).ForEach(func(k, v []byte) error {
			s, err := decodeSession(string(k), v)
			if err != nil {
				return fmt.Errorf("decoding: %w", err)
			}
			index[s.ClientID] = len(st.Sessions)
			st.Sessions = append(st.Sessions, s)
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(boltBucketQueue).ForEach(func(k, v []byte) error {
			if len(k) < 9 {
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
		if err != nil {
			return err
		}
		return tx.Bucket(boltBucketRetained).ForEach(func(k, v []byte) error {
			m := new(broker.Message)
			if err := json.Unmarshal(v, m); err != nil {
				return fmt.Errorf("decoding retained message %q: %w", k, err)
			}
			st.Retained = append(st.Retained, m)
			return nil
		})
	})
	if err != nil {
		return broker.StoredState{}, fmt.Errorf("loading broker store: %w", err)
	}
	return st, nil
}

// Save implements broker.SessionStore: one transaction, one commit.
func (d *BoltTuned) Save(_ context.Context, b broker.StoreBatch) error {
	err := d.db.Update(func(tx *bolt.Tx) error {
		sb, qb, rb := tx.Bucket(boltBucketSessions), tx.Bucket(boltBucketQueue), tx.Bucket(boltBucketRetained)
		for _, id := range b.DeletedSessions {
			if err := sb.Delete([]byte(id)); err != nil {
				return err
			}
			if err := boltDeleteQueue(qb, id, math.MaxUint64); err != nil {
				return err
			}
		}
		for _, t := range b.DeletedRetained {
			if err := rb.Delete([]byte(t)); err != nil {
				return err
			}
		}
		for i := range b.Sessions {
			s := b.Sessions[i]
			below := s.QueueHead
			if s.QueueFull {
				below = math.MaxUint64
			}
			if err := boltDeleteQueue(qb, s.ClientID, below); err != nil {
				return err
			}
			for j := range s.Queued {
				v, err := json.Marshal(&s.Queued[j])
				if err != nil {
					return fmt.Errorf("encoding queued message of %q: %w", s.ClientID, err)
				}
				if err := qb.Put(boltQueueKey(s.ClientID, s.Queued[j].Seq), v); err != nil {
					return err
				}
			}
			v, err := encodeSession(&s)
			if err != nil {
				return fmt.Errorf("encoding session %q: %w", s.ClientID, err)
			}
			if err := sb.Put([]byte(s.ClientID), v); err != nil {
				return err
			}
		}
		for _, m := range b.Retained {
			v, err := json.Marshal(m)
			if err != nil {
				return fmt.Errorf("encoding retained message %q: %w", m.Topic, err)
			}
			if err := rb.Put([]byte(m.Topic), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("saving broker state: %w", err)
	}
	return nil
}
