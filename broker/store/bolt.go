// Package store holds the broker's durable SessionStore: sessions,
// their queued and inflight messages, and retained messages in one bbolt
// file. See broker/DESIGN.md ("Durable state") for why bbolt and the
// measurements.
package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sluicehq/sluice/broker"
)

// FileName is the database file inside the store directory.
const FileName = "broker.db"

var (
	bucketSessions = []byte("sessions")
	bucketRetained = []byte("retained")
)

// Disk is a broker.SessionStore in a bbolt file. Each Save is one
// transaction, committed with fsync before it returns: a batch is durable
// when Save returns nil, or not written at all.
type Disk struct {
	db *bolt.DB
}

var _ broker.SessionStore = (*Disk)(nil)

// Open opens (creating it if needed) the store in dir. It fails if
// another process holds the file.
func Open(dir string) (*Disk, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating broker store directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("opening broker store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketSessions, bucketRetained} {
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
	return &Disk{db: db}, nil
}

// Close closes the file. It is safe to call twice.
func (d *Disk) Close() error {
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("closing broker store: %w", err)
	}
	return nil
}

// Load implements broker.SessionStore.
func (d *Disk) Load(context.Context) (broker.StoredState, error) {
	var st broker.StoredState
	err := d.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketSessions).ForEach(func(k, v []byte) error {
			var s broker.StoredSession
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("decoding session %q: %w", k, err)
			}
			st.Sessions = append(st.Sessions, s)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketRetained).ForEach(func(k, v []byte) error {
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
func (d *Disk) Save(_ context.Context, b broker.StoreBatch) error {
	err := d.db.Update(func(tx *bolt.Tx) error {
		sb, rb := tx.Bucket(bucketSessions), tx.Bucket(bucketRetained)
		for _, id := range b.DeletedSessions {
			if err := sb.Delete([]byte(id)); err != nil {
				return err
			}
		}
		for _, t := range b.DeletedRetained {
			if err := rb.Delete([]byte(t)); err != nil {
				return err
			}
		}
		for i := range b.Sessions {
			v, err := json.Marshal(&b.Sessions[i])
			if err != nil {
				return fmt.Errorf("encoding session %q: %w", b.Sessions[i].ClientID, err)
			}
			if err := sb.Put([]byte(b.Sessions[i].ClientID), v); err != nil {
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
