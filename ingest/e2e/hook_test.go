package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// msgID is the payload every test publisher sends: {"client":..,"seq":N}.
type msgID struct {
	Client string `json:"client"`
	Seq    int    `json:"seq"`
	Pad    string `json:"pad,omitempty"` // filler for tests that need big records
}

// hookRecord is the part of a webhook record object the tests read.
type hookRecord struct {
	Rule     string          `json:"rule"`
	Topic    string          `json:"topic"`
	ClientID string          `json:"client_id"`
	Payload  json.RawMessage `json:"payload"`
	id       msgID
}

// arrival is one accepted record of one client.
type arrival struct {
	Seq int
	At  time.Time
}

// hook is the webhook receiver: an httptest.Server that decodes every
// body mode, answers what answer says and keeps, per client, the
// sequence numbers it accepted in arrival order.
type hook struct {
	srv *httptest.Server

	mu       sync.Mutex
	answer   func(recs []hookRecord) int // nil: 200
	arrivals map[string][]arrival

	requests atomic.Int64
	refused  atomic.Int64 // requests answered with a non-2xx status
	accepted atomic.Int64 // records accepted
	bad      atomic.Int64 // records without a {"client","seq"} payload
}

// newHook starts a receiver; it is closed when the test ends.
func newHook(t testing.TB) *hook {
	h := &hook{arrivals: map[string][]arrival{}}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

// URL is where the sink posts.
func (h *hook) URL() string { return h.srv.URL + "/ingest" }

// SetAnswer changes how the receiver answers; nil accepts everything.
func (h *hook) SetAnswer(f func(recs []hookRecord) int) {
	h.mu.Lock()
	h.answer = f
	h.mu.Unlock()
}

// refuseAll answers every request with status.
func refuseAll(status int) func([]hookRecord) int {
	return func([]hookRecord) int { return status }
}

func (h *hook) serve(w http.ResponseWriter, r *http.Request) {
	h.requests.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	recs, err := decodeBody(body)
	if err != nil {
		h.refused.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now := time.Now()
	h.mu.Lock()
	status := http.StatusOK
	if h.answer != nil {
		status = h.answer(recs)
	}
	if status/100 == 2 {
		for _, rec := range recs {
			if rec.id.Client == "" {
				h.bad.Add(1)
				continue
			}
			h.arrivals[rec.id.Client] = append(h.arrivals[rec.id.Client], arrival{Seq: rec.id.Seq, At: now})
		}
		h.accepted.Add(int64(len(recs)))
	} else {
		h.refused.Add(1)
	}
	h.mu.Unlock()
	w.WriteHeader(status)
}

// decodeBody reads an array, ndjson or single-object body.
func decodeBody(body []byte) ([]hookRecord, error) {
	var recs []hookRecord
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) > 0 && trimmed[0] == '[':
		if err := json.Unmarshal(trimmed, &recs); err != nil {
			return nil, fmt.Errorf("decoding array body: %w", err)
		}
	default:
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		for dec.More() {
			var rec hookRecord
			if err := dec.Decode(&rec); err != nil {
				return nil, fmt.Errorf("decoding object body: %w", err)
			}
			recs = append(recs, rec)
		}
	}
	for i := range recs {
		_ = json.Unmarshal(recs[i].Payload, &recs[i].id) // a foreign payload keeps a zero id
	}
	return recs, nil
}

// Arrivals returns a copy of every client's accepted records.
func (h *hook) Arrivals() map[string][]arrival {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string][]arrival, len(h.arrivals))
	for c, a := range h.arrivals {
		out[c] = append([]arrival(nil), a...)
	}
	return out
}

// Has reports whether client's seq was accepted.
func (h *hook) Has(client string, seq int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range h.arrivals[client] {
		if a.Seq == seq {
			return true
		}
	}
	return false
}

// missing lists, per client, the acknowledged sequence numbers the hook
// has not accepted (at most 10 per client, for messages).
func (h *hook) missing(acked map[string][]int) (n int, sample map[string][]int) {
	got := h.Arrivals()
	sample = map[string][]int{}
	for client, seqs := range acked {
		seen := map[int]bool{}
		for _, a := range got[client] {
			seen[a.Seq] = true
		}
		for _, s := range seqs {
			if !seen[s] {
				n++
				if len(sample[client]) < 10 {
					sample[client] = append(sample[client], s)
				}
			}
		}
	}
	return n, sample
}

// duplicates counts records accepted more than once, per client.
func duplicates(arrivals map[string][]arrival) (total int, per map[string]int) {
	per = map[string]int{}
	for client, as := range arrivals {
		seen := map[int]bool{}
		for _, a := range as {
			if seen[a.Seq] {
				per[client]++
				total++
			}
			seen[a.Seq] = true
		}
	}
	return total, per
}

// orderViolations checks one client's arrivals: the first arrival of
// every sequence number must be the next one after the highest seen so
// far (publish order, no gap); anything else must be a re-send of an
// already-seen number (a duplicate). It returns descriptions of the
// violations, at most 10.
func orderViolations(as []arrival) []string {
	var out []string
	maxSeen := 0
	seen := map[int]bool{}
	for i, a := range as {
		switch {
		case seen[a.Seq]:
			// a re-send of the already-delivered prefix
		case a.Seq == maxSeen+1:
			maxSeen = a.Seq
		default:
			if len(out) < 10 {
				out = append(out, fmt.Sprintf("arrival %d: seq %d first seen after %d", i, a.Seq, maxSeen))
			}
			maxSeen = max(maxSeen, a.Seq)
		}
		seen[a.Seq] = true
	}
	return out
}

// sortedKeys returns m's keys sorted.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
