package command

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Handler serves the command API. It checks its own bearer tokens
// (Config.Tokens, and adminToken with full access), so it must be mounted
// without another token check in front:
//
//	POST /api/v1/commands        submit (202 with the status)
//	GET  /api/v1/commands/{id}   one command's status and history
//	GET  /api/v1/commands        recent commands: ?state=&device=&limit=
func (s *Service) Handler(adminToken string) http.Handler {
	h := &api{s: s, admin: adminToken}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/commands", h.post)
	mux.HandleFunc("GET /api/v1/commands/{id}", h.get)
	mux.HandleFunc("GET /api/v1/commands", h.list)
	return h.auth(mux)
}

type api struct {
	s     *Service
	admin string
}

// caller is the authenticated principal of a request.
type caller struct {
	name  string
	admin bool
}

// auth resolves the bearer token to a principal.
func (h *api) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		var c *caller
		if ok && got != "" {
			if h.admin != "" && subtle.ConstantTimeCompare([]byte(got), []byte(h.admin)) == 1 {
				c = &caller{name: "admin", admin: true}
			}
			for _, t := range h.s.tokens {
				if subtle.ConstantTimeCompare([]byte(got), []byte(t.Token)) == 1 {
					c = &caller{name: t.Name}
				}
			}
		}
		if c == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
			writeErr(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h.route(w, r, c, next)
	})
}

// route passes the caller on through the request's context-free path:
// the handlers read it back with callerOf.
func (h *api) route(w http.ResponseWriter, r *http.Request, c *caller, next http.Handler) {
	r = r.WithContext(withCaller(r.Context(), c))
	next.ServeHTTP(w, r)
}

// request is the POST body.
type request struct {
	ID            string `json:"id"`
	Device        string `json:"device"`
	Topic         string `json:"topic"`
	Payload       string `json:"payload"`
	PayloadBase64 string `json:"payload_base64"`
	QoS           *int   `json:"qos"`
	TTL           string `json:"ttl"`
	CorrelationID string `json:"correlation_id"`
	ContentType   string `json:"content_type"`
}

func (h *api) post(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r.Context())
	var req request
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, int64(h.s.cfg.MaxPayloadBytes)*2+64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "decoding request: "+err.Error())
		return
	}
	cmd := Command{ID: req.ID, Device: req.Device, Topic: req.Topic, Payload: []byte(req.Payload),
		QoS: h.s.cfg.DefaultQoS, CorrelationID: req.CorrelationID, ContentType: req.ContentType,
		Source: "http", Principal: c.name}
	if req.PayloadBase64 != "" {
		if req.Payload != "" {
			writeErr(w, http.StatusBadRequest, "give payload or payload_base64, not both")
			return
		}
		b, err := base64.StdEncoding.DecodeString(req.PayloadBase64)
		if err != nil {
			writeErr(w, http.StatusBadRequest, "payload_base64: "+err.Error())
			return
		}
		cmd.Payload = b
	}
	if req.QoS != nil {
		if *req.QoS < 0 || *req.QoS > 2 {
			writeErr(w, http.StatusBadRequest, "qos must be 0, 1 or 2")
			return
		}
		cmd.QoS = byte(*req.QoS)
	}
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			writeErr(w, http.StatusBadRequest, "ttl: want a positive duration such as \"30s\"")
			return
		}
		cmd.TTL = d
	}
	var st Status
	var err error
	if c.admin {
		st, err = h.s.SubmitTrusted(r.Context(), cmd)
	} else {
		st, err = h.s.Submit(r.Context(), cmd)
	}
	var rej *RejectedError
	switch {
	case errors.As(err, &rej) && rej.Denied:
		writeJSON(w, http.StatusForbidden, map[string]any{"error": rej.Reason, "status": statusOrNil(st)})
	case errors.As(err, &rej):
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": rej.Reason, "status": statusOrNil(st)})
	case errors.Is(err, ErrBusy), errors.Is(err, ErrNotRunning):
		w.Header().Set("Retry-After", "1")
		writeErr(w, http.StatusServiceUnavailable, err.Error())
	case err != nil:
		writeErr(w, http.StatusInternalServerError, err.Error())
	default:
		writeJSON(w, http.StatusAccepted, st)
	}
}

func statusOrNil(st Status) any {
	if st.ID == "" {
		return nil
	}
	return st
}

// visible reports whether the caller may see a command: the admin, or a
// principal allowed to command its topic.
func (h *api) visible(c *caller, st *Status) bool {
	return c.admin || h.s.Allowed(c.name, st.Device, st.Topic)
}

func (h *api) get(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r.Context())
	st, ok, err := h.s.Get(r.PathValue("id"))
	switch {
	case err != nil:
		writeErr(w, http.StatusServiceUnavailable, err.Error())
	case !ok:
		writeErr(w, http.StatusNotFound, "no such command")
	case !h.visible(c, &st):
		writeErr(w, http.StatusForbidden, "not allowed to see this command")
	default:
		writeJSON(w, http.StatusOK, st)
	}
}

func (h *api) list(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r.Context())
	q := r.URL.Query()
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 1000 {
			writeErr(w, http.StatusBadRequest, "limit must be 1..1000")
			return
		}
		limit = n
	}
	state, device := State(q.Get("state")), q.Get("device")
	out, err := h.s.List(func(st *Status) bool {
		return (state == "" || st.State == state) && (device == "" || st.Device == device) && h.visible(c, st)
	}, limit)
	if err != nil {
		writeErr(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"commands": out})
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
