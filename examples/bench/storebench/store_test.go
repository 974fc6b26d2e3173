package storebench

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/store"
	"github.com/sluicehq/sluice/broker/topic"
)

// closer is a SessionStore with a file to close.
type closer interface {
	broker.SessionStore
	Close() error
}

// kind is one store under test.
type kind struct {
	name string
	open func(dir string) (closer, error)
}

// kinds are the stores compared, bbolt first.
var kinds = []kind{
	{"bbolt", func(dir string) (closer, error) { return store.Open(dir) }},
	{"pebble", func(dir string) (closer, error) { return OpenPebble(dir, slog.New(slog.DiscardHandler)) }},
	{"spool", func(dir string) (closer, error) { return OpenSpoolLog(dir, slog.New(slog.DiscardHandler)) }},
}

// model generates a random sequence of batches like the broker's flushes:
// sessions saved with new queued messages, queue heads advancing, whole
// queue rewrites, deleted sessions, retained messages set and cleared.
type model struct {
	rng  *rand.Rand
	now  time.Time
	tail map[string]uint64 // next seq per live session
	head map[string]uint64
	n    int
}

func newModel(seed uint64) *model {
	return &model{rng: rand.New(rand.NewPCG(seed, 1)), now: time.Unix(1_700_000_000, 0).UTC(),
		tail: make(map[string]uint64), head: make(map[string]uint64)}
}

func (m *model) msg(t string) *broker.Message {
	m.n++
	return &broker.Message{Topic: t, Payload: fmt.Appendf(nil, "payload %d", m.n), QoS: 1, ClientID: "pub",
		Version: 5, ReceivedAt: m.now.Add(time.Duration(m.n) * time.Millisecond), MessageExpiry: uint32(m.n % 3)}
}

func (m *model) batch() broker.StoreBatch {
	var b broker.StoreBatch
	for range 1 + m.rng.IntN(6) {
		id := fmt.Sprintf("c%d", m.rng.IntN(12))
		switch r := m.rng.IntN(10); {
		case r == 0:
			if _, ok := m.tail[id]; ok && !contains(b.DeletedSessions, id) && !savedIn(&b, id) {
				b.DeletedSessions = append(b.DeletedSessions, id)
				delete(m.tail, id)
				delete(m.head, id)
			}
		default:
			if savedIn(&b, id) || contains(b.DeletedSessions, id) {
				continue
			}
			s := broker.StoredSession{ClientID: id, Expiry: uint32(m.rng.IntN(4000)),
				Subscriptions: []topic.Sub{{ClientID: id, Filter: "plant/" + id + "/#", QoS: 1, ID: uint32(m.rng.IntN(3))}}}
			if m.rng.IntN(2) == 0 {
				s.OfflineSince = m.now.Add(time.Duration(m.rng.IntN(1000)) * time.Second)
			}
			if m.rng.IntN(5) == 0 {
				s.Outbound = []broker.StoredDelivery{{Message: m.msg("out/" + id), QoS: 1, PacketID: uint16(1 + m.rng.IntN(9))}}
			}
			head, tail := m.head[id], m.tail[id]
			head += uint64(m.rng.IntN(int(tail-head) + 1)) // sent since
			if r == 1 {
				s.QueueFull = true
				head = tail // rewrite: the queue starts again at the tail
			}
			for range m.rng.IntN(4) {
				s.Queued = append(s.Queued, broker.StoredDelivery{Message: m.msg("q/" + id), QoS: 1, SubID: 1, Seq: tail})
				tail++
			}
			s.QueueHead = head
			m.head[id], m.tail[id] = head, tail
			b.Sessions = append(b.Sessions, s)
		}
	}
	for range m.rng.IntN(3) {
		t := fmt.Sprintf("r/%d", m.rng.IntN(8))
		if contains(b.DeletedRetained, t) || retainedIn(&b, t) {
			continue
		}
		if m.rng.IntN(4) == 0 {
			b.DeletedRetained = append(b.DeletedRetained, t)
		} else {
			b.Retained = append(b.Retained, m.msg(t))
		}
	}
	return b
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func savedIn(b *broker.StoreBatch, id string) bool {
	for _, s := range b.Sessions {
		if s.ClientID == id {
			return true
		}
	}
	return false
}

func retainedIn(b *broker.StoreBatch, t string) bool {
	for _, m := range b.Retained {
		if m.Topic == t {
			return true
		}
	}
	return false
}

// normalize sorts st and turns empty slices into nil, so stores that
// decode "none" differently compare equal.
func normalize(st broker.StoredState) broker.StoredState {
	sort.Slice(st.Sessions, func(i, j int) bool { return st.Sessions[i].ClientID < st.Sessions[j].ClientID })
	sort.Slice(st.Retained, func(i, j int) bool { return st.Retained[i].Topic < st.Retained[j].Topic })
	for i := range st.Sessions {
		s := &st.Sessions[i]
		s.QueueFull = false
		if len(s.Queued) == 0 {
			s.Queued = nil
		}
		if len(s.Subscriptions) == 0 {
			s.Subscriptions = nil
		}
		if len(s.Outbound) == 0 {
			s.Outbound = nil
		}
	}
	if len(st.Sessions) == 0 {
		st.Sessions = nil
	}
	if len(st.Retained) == 0 {
		st.Retained = nil
	}
	return st
}

// TestStoresAgree applies the same random batches to broker.MemoryStore
// (the reference) and to every store here, reopening the stores now and
// then, and checks each Load returns what the reference holds.
func TestStoresAgree(t *testing.T) {
	ctx := context.Background()
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := k.open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { s.Close() }()
			ref := broker.NewMemoryStore()
			m := newModel(7)
			for step := range 200 {
				b := m.batch()
				if err := ref.Save(ctx, b); err != nil {
					t.Fatal(err)
				}
				if err := s.Save(ctx, b); err != nil {
					t.Fatalf("step %d: Save: %v", step, err)
				}
				if step%20 != 19 {
					continue
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				if s, err = k.open(dir); err != nil {
					t.Fatal(err)
				}
				want, _ := ref.Load(ctx)
				got, err := s.Load(ctx)
				if err != nil {
					t.Fatalf("step %d: Load: %v", step, err)
				}
				want, got = normalize(want), normalize(got)
				if len(want.Sessions) == 0 {
					t.Fatalf("step %d: the model holds no session: the test checks nothing", step)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("step %d: Load differs from the reference\n got %+v\nwant %+v", step, got, want)
				}
			}
		})
	}
}
