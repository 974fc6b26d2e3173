package command

import (
	"slices"
)

// status returns a copy of a command's status (from memory or the store).
func (s *Service) status(id string) Status {
	st, _, _ := s.Get(id)
	return st
}

// Get returns the status of command id; ok is false if it is unknown
// (never submitted, or purged after its retention).
func (s *Service) Get(id string) (Status, bool, error) {
	s.mu.Lock()
	if r, ok := s.live[id]; ok {
		st := copyStatus(r.Status)
		s.mu.Unlock()
		return st, true, nil
	}
	d := s.db
	s.mu.Unlock()
	if d == nil {
		return Status{}, false, ErrNotRunning
	}
	r, ok, err := d.get(id)
	return r.Status, ok, err
}

func copyStatus(st Status) Status {
	st.History = append([]Transition(nil), st.History...)
	return st
}

// List returns up to limit recent commands (newest first) that keep
// accepts: those in memory (pending, or changed and not yet written,
// including ones accepted a moment ago) from memory, the others from the
// store. It examines at most 100,000 stored commands.
func (s *Service) List(keep func(*Status) bool, limit int) ([]Status, error) {
	s.mu.Lock()
	d := s.db
	// Shallow copies: a history only grows by appends, which never touch
	// the elements a copy sees.
	mem := make([]Status, 0, len(s.live))
	for _, r := range s.live {
		mem = append(mem, r.Status)
	}
	s.mu.Unlock()
	if d == nil {
		return nil, ErrNotRunning
	}
	inMem := make(map[string]struct{}, len(mem))
	kept := mem[:0]
	for i := range mem {
		inMem[mem[i].ID] = struct{}{}
		if keep(&mem[i]) {
			kept = append(kept, mem[i])
		}
	}
	newer := func(a, b *Status) bool {
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.After(b.CreatedAt)
		}
		return a.ID > b.ID
	}
	slices.SortFunc(kept, func(a, b Status) int {
		if newer(&a, &b) {
			return -1
		}
		return 1
	})
	recs, err := d.list(func(r *record) bool {
		if _, ok := inMem[r.Status.ID]; ok {
			return false
		}
		return keep(&r.Status)
	}, limit, 100000)
	if err != nil {
		return nil, err
	}
	out := make([]Status, 0, min(limit, len(kept)+len(recs)))
	for i, j := 0, 0; len(out) < limit && (i < len(kept) || j < len(recs)); {
		if j == len(recs) || (i < len(kept) && newer(&kept[i], &recs[j].Status)) {
			out = append(out, copyStatus(kept[i]))
			i++
		} else {
			out = append(out, recs[j].Status)
			j++
		}
	}
	return out, nil
}
