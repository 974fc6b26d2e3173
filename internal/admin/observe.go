package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// requestIDKey is the context key of a request's id.
type requestIDKey struct{}

// RequestID returns the id of the admin API request ctx belongs to, or "".
// Handlers that log include it as request_id, like the server's own
// request log.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// observe wraps the mux for /api/ requests: each gets a request id (the
// client's X-Request-Id when it sends a short printable one, else a fresh
// one), echoed in the response and put in the request context; each is
// logged with its id, status and duration (changes and refusals at info,
// reads at debug, server errors at warn); and the mux's own plain-text
// 404 and 405 answers become JSON errors like every handler's.
func (s *Server) observe(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			h.ServeHTTP(w, r)
			return
		}
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = s.idBase + strconv.FormatUint(s.reqID.Add(1), 10)
		}
		w.Header().Set("X-Request-Id", id)
		aw := &apiWriter{ResponseWriter: w}
		start := time.Now()
		h.ServeHTTP(aw, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
		status := aw.status
		if status == 0 {
			status = http.StatusOK
		}
		level := slog.LevelDebug
		switch {
		case status >= 500:
			level = slog.LevelWarn
		case r.Method != http.MethodGet && r.Method != http.MethodHead,
			status == http.StatusUnauthorized:
			level = slog.LevelInfo
		}
		s.log.Log(r.Context(), level, "admin request", "request_id", id, "method", r.Method, "path", r.URL.Path,
			"status", status, "duration", time.Since(start), "remote_addr", r.RemoteAddr)
	})
}

// validRequestID accepts a client's request id of 1 to 64 printable
// ASCII characters.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// apiWriter records the status and turns the mux's plain-text 404/405
// into JSON. It passes Flush through (server-sent events) and unwraps for
// http.ResponseController.
type apiWriter struct {
	http.ResponseWriter
	status   int
	replaced bool
}

// WriteHeader implements http.ResponseWriter.
func (w *apiWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	w.status = code
	if (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) &&
		strings.HasPrefix(w.Header().Get("Content-Type"), "text/plain") {
		w.replaced = true
		w.Header().Set("Content-Type", "application/json")
		w.ResponseWriter.WriteHeader(code)
		msg := "no such route"
		if code == http.StatusMethodNotAllowed {
			msg = "method not allowed; allowed: " + w.Header().Get("Allow")
		}
		_ = json.NewEncoder(w.ResponseWriter).Encode(map[string]string{"error": msg})
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write implements http.ResponseWriter.
func (w *apiWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.replaced {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher.
func (w *apiWriter) Flush() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap returns the wrapped writer (http.ResponseController).
func (w *apiWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
