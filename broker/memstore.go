package broker

import (
	"context"
	"sort"
	"sync"
)

// MemoryStore is a SessionStore kept in memory. It survives a Server (not
// the process): a new Server given the same MemoryStore resumes the old
// one's sessions and retained messages. It is the reference for durable
// implementations and is used by tests.
type MemoryStore struct {
	mu       sync.Mutex
	sessions map[string]StoredSession
	retained map[string]*Message
	saves    int
}

var _ SessionStore = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{sessions: make(map[string]StoredSession), retained: make(map[string]*Message)}
}

// Load implements SessionStore.
func (ms *MemoryStore) Load(context.Context) (StoredState, error) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	var st StoredState
	for _, s := range ms.sessions {
		st.Sessions = append(st.Sessions, s)
	}
	sort.Slice(st.Sessions, func(i, j int) bool { return st.Sessions[i].ClientID < st.Sessions[j].ClientID })
	for _, m := range ms.retained {
		st.Retained = append(st.Retained, m)
	}
	return st, nil
}

// Save implements SessionStore.
func (ms *MemoryStore) Save(_ context.Context, b StoreBatch) error {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.saves++
	for _, id := range b.DeletedSessions {
		delete(ms.sessions, id)
	}
	for _, t := range b.DeletedRetained {
		delete(ms.retained, t)
	}
	for _, s := range b.Sessions {
		s.Queued = MergeQueue(ms.sessions[s.ClientID].Queued, s)
		s.QueueFull = true
		ms.sessions[s.ClientID] = s
	}
	for _, m := range b.Retained {
		ms.retained[m.Topic] = m
	}
	return nil
}

// Session returns the stored state of one session.
func (ms *MemoryStore) Session(clientID string) (StoredSession, bool) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	s, ok := ms.sessions[clientID]
	return s, ok
}

// MergeQueue applies a saved session's queue change to the stored queue
// old (oldest first): the whole queue when s.QueueFull, else old's
// messages from s.QueueHead on followed by s.Queued.
func MergeQueue(old []StoredDelivery, s StoredSession) []StoredDelivery {
	if s.QueueFull {
		return append([]StoredDelivery(nil), s.Queued...)
	}
	i := 0
	for i < len(old) && old[i].Seq < s.QueueHead {
		i++
	}
	out := make([]StoredDelivery, 0, len(old)-i+len(s.Queued))
	out = append(out, old[i:]...)
	return append(out, s.Queued...)
}
