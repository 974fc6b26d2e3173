package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// writeTimeout bounds one write to a browser: a reader that takes longer
// is gone or stuck, and its stream ends.
const writeTimeout = 10 * time.Second

// heartbeat is how often an idle stream sends a comment, so proxies and
// the browser see the connection alive.
const heartbeat = 15 * time.Second

// sse writes one Server-Sent Events stream.
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// startSSE sends the stream's headers.
func startSSE(w http.ResponseWriter) (*sse, error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &sse{w: w, rc: http.NewResponseController(w)}
	return s, s.flush()
}

// event sends one event whose data is data (one line of JSON).
func (s *sse) event(name string, data []byte) error {
	if err := s.rc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("setting write deadline: %w", err)
	}
	if _, err := fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", name, data); err != nil {
		return fmt.Errorf("writing event: %w", err)
	}
	return s.flush()
}

// json sends v as the data of an event.
func (s *sse) json(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s event: %w", name, err)
	}
	return s.event(name, b)
}

// ping sends a comment line.
func (s *sse) ping() error {
	if err := s.rc.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("setting write deadline: %w", err)
	}
	if _, err := s.w.Write([]byte(": ping\n\n")); err != nil {
		return fmt.Errorf("writing ping: %w", err)
	}
	return s.flush()
}

func (s *sse) flush() error {
	if err := s.rc.Flush(); err != nil {
		return fmt.Errorf("flushing event stream: %w", err)
	}
	return nil
}

// writeError answers a request with a JSON error, as the admin API does.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
