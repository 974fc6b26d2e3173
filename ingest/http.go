package ingest

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/sluicehq/sluice/ingest/deadletter"
)

// Handler serves the pipeline's admin API, mounted under /api/v1/:
//
//	GET  /api/v1/ingest                      accounting and sink state
//	GET  /api/v1/deadletters?after=ID&limit=N&pending=1
//	GET  /api/v1/deadletters/{id}
//	POST /api/v1/deadletters/{id}/replay
func (p *Pipeline) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/ingest", func(w http.ResponseWriter, r *http.Request) {
		stats := p.acct.Snapshot()
		balanced := true
		for _, f := range stats.Flows {
			balanced = balanced && f.Balanced()
		}
		writeJSON(w, http.StatusOK, map[string]any{"accounting": stats, "balanced": balanced, "sinks": p.SinkStats(), "spool": p.spoolStats()})
	})
	mux.HandleFunc("GET /api/v1/deadletters", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		after, _ := strconv.ParseUint(q.Get("after"), 10, 64)
		limit, err := strconv.Atoi(q.Get("limit"))
		if err != nil || limit <= 0 || limit > 1000 {
			limit = 100
		}
		entries, err := p.dlq.List(after, limit, q.Get("pending") == "1")
		if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		total, pending := p.dlq.Len()
		if entries == nil {
			entries = []*deadletter.Entry{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"entries": entries, "total": total, "pending": pending})
	})
	mux.HandleFunc("GET /api/v1/deadletters/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, errors.New("id must be a number"))
			return
		}
		e, err := p.dlq.Get(id)
		if errors.Is(err, deadletter.ErrNotFound) {
			writeError(w, http.StatusNotFound, err)
			return
		} else if err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusOK, e)
	})
	mux.HandleFunc("POST /api/v1/deadletters/{id}/replay", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, errors.New("id must be a number"))
			return
		}
		if err := p.Replay(r.Context(), id); err != nil {
			status := http.StatusConflict
			if errors.Is(err, deadletter.ErrNotFound) {
				status = http.StatusNotFound
			}
			writeError(w, status, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"replayed": id})
	})
	return mux
}

// Ready reports whether the pipeline can accept messages.
func (p *Pipeline) Ready() error {
	if !p.open.Load() {
		return errors.New("ingest: spool not open")
	}
	if p.closing.Load() {
		return errors.New("ingest: shutting down")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}
