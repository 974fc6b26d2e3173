package ingest

import (
	"sync"
	"sync/atomic"
	"time"
)

// sinkState is what the runner observes of one sink: the same set for
// every sink (writes, errors, latency, batch sizes, connection state).
type sinkState struct {
	writes      atomic.Int64
	writeErrors atomic.Int64
	records     atomic.Int64 // records in successful writes
	latencyNs   atomic.Int64 // sum over writes
	connected   atomic.Bool
	mu          sync.Mutex
	lastErr     string
	lastErrAt   time.Time
}

func (s *sinkState) observe(n int, took time.Duration, err error) {
	s.writes.Add(1)
	s.latencyNs.Add(int64(took))
	if err != nil {
		s.writeErrors.Add(1)
		s.connected.Store(false)
		s.mu.Lock()
		s.lastErr, s.lastErrAt = err.Error(), time.Now()
		s.mu.Unlock()
		return
	}
	s.records.Add(int64(n))
	s.connected.Store(true)
}

func (s *sinkState) setConnected(ok bool, err error) {
	s.connected.Store(ok)
	if err != nil {
		s.mu.Lock()
		s.lastErr, s.lastErrAt = err.Error(), time.Now()
		s.mu.Unlock()
	}
}

// SinkStats is the runner's view of one sink.
type SinkStats struct {
	Name        string    `json:"name"`
	Connected   bool      `json:"connected"`
	Writes      int64     `json:"writes"`
	WriteErrors int64     `json:"write_errors"`
	Records     int64     `json:"records"`
	AvgBatch    float64   `json:"avg_batch"`
	AvgLatency  string    `json:"avg_latency"`
	Queued      int       `json:"queued"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`

	// LagRecords and LagBytes are the spool records (and their bytes) the
	// sink has not acknowledged yet: its backlog on disk.
	LagRecords uint64 `json:"lag_records"`
	LagBytes   int64  `json:"lag_bytes"`
}

func (r *runner) stats() SinkStats {
	s := r.state
	st := SinkStats{
		Name: r.name, Connected: s.connected.Load(), Writes: s.writes.Load(),
		WriteErrors: s.writeErrors.Load(), Records: s.records.Load(),
	}
	if ok := st.Writes - st.WriteErrors; ok > 0 {
		st.AvgBatch = float64(st.Records) / float64(ok)
	}
	if st.Writes > 0 {
		st.AvgLatency = (time.Duration(s.latencyNs.Load() / st.Writes)).String()
	}
	for _, ch := range r.lanes {
		st.Queued += len(ch)
	}
	s.mu.Lock()
	st.LastError, st.LastErrorAt = s.lastErr, s.lastErrAt
	s.mu.Unlock()
	return st
}
