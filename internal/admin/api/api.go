// Package api serves the admin JSON API over the broker and the
// pipeline: clients, sessions, subscriptions, retained messages, sinks and
// publishing. Every answer is JSON; every error is {"error": "..."} with
// a 4xx/5xx status. Listings are sorted and paged: ?limit=N (default 100,
// at most 1000) and ?after=KEY, the "next" key of the previous page
// (absent on the last page). The routes are documented in
// internal/admin/openapi.json.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/internal/admin"
)

// Broker is what the API reads and controls in the broker
// (*broker.Server satisfies it).
type Broker interface {
	Stats() broker.Stats
	ClientPage(after string, limit int) ([]broker.ClientDetails, bool)
	Client(clientID string) (broker.ClientDetails, bool)
	Disconnect(ctx context.Context, clientID string) (bool, error)
	SessionPage(after string, limit int) ([]broker.SessionInfo, bool)
	Session(clientID string) (broker.SessionInfo, bool)
	DeleteSession(clientID string) error
	Subscriptions(clientID string) []broker.Subscription
	SubscriptionPage(after string, limit int) ([]broker.Subscription, bool)
	RetainedMessages(filter string, limit int) ([]*broker.Message, bool, error)
	Publish(m *broker.Message) error
}

// Sinks reports the sinks' state (*ingest.Pipeline satisfies it).
type Sinks interface {
	SinkStats() []ingest.SinkStats
}

// Mux is where the API registers its routes (*admin.Server satisfies it).
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Options carries the API's collaborators.
type Options struct {
	Broker Broker
	Sinks  Sinks
	// Logger defaults to discarding.
	Logger *slog.Logger
}

// Paging and size limits.
const (
	defaultLimit = 100
	maxLimit     = 1000
	// maxPublishBytes bounds a POST /api/v1/publish body.
	maxPublishBytes = 1 << 20
	// previewBytes bounds each retained payload in a listing; GET with
	// ?topic= returns one message whole.
	previewBytes = 4096
	// disconnectWait bounds how long DELETE /api/v1/clients/{id} waits
	// for the connection to end.
	disconnectWait = 5 * time.Second
)

// API is the admin API.
type API struct {
	b   Broker
	s   Sinks
	log *slog.Logger
}

// New returns the API; it does no I/O.
func New(opts Options) *API {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &API{b: opts.Broker, s: opts.Sinks, log: opts.Logger}
}

// Register adds the API's routes to mux.
func (a *API) Register(mux Mux) {
	h := func(pattern string, fn http.HandlerFunc) { mux.Handle(pattern, fn) }
	h("GET /api/v1/broker", a.getBroker)
	h("GET /api/v1/clients", a.listClients)
	h("GET /api/v1/clients/{id}", a.getClient)
	h("DELETE /api/v1/clients/{id}", a.disconnectClient)
	h("GET /api/v1/sessions", a.listSessions)
	h("GET /api/v1/sessions/{id}", a.getSession)
	h("DELETE /api/v1/sessions/{id}", a.deleteSession)
	h("GET /api/v1/subscriptions", a.listSubscriptions)
	h("GET /api/v1/retained", a.listRetained)
	h("POST /api/v1/publish", a.publish)
	h("GET /api/v1/sinks", a.listSinks)
	h("GET /api/v1/sinks/{name}", a.getSink)
}

// writeJSON answers v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeError answers {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// paging reads ?after= and ?limit=.
func paging(r *http.Request) (after string, limit int, err error) {
	q := r.URL.Query()
	limit = defaultLimit
	if s := q.Get("limit"); s != "" {
		n, perr := strconv.Atoi(s)
		if perr != nil || n < 1 {
			return "", 0, fmt.Errorf("limit must be a positive integer, got %q", s)
		}
		limit = min(n, maxLimit)
	}
	return q.Get("after"), limit, nil
}

// servePage answers one page of a listing kept in key order: ?after= and
// ?limit= go to page, each item is converted by conv, and next is the last
// item's key when more follow.
func servePage[T, J any](w http.ResponseWriter, r *http.Request, name string,
	page func(after string, limit int) ([]T, bool), conv func(T) J, key func(J) string) {
	after, limit, err := paging(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	list, more := page(after, limit)
	out := make([]J, len(list))
	for i, v := range list {
		out[i] = conv(v)
	}
	next := ""
	if more && len(out) > 0 {
		next = key(out[len(out)-1])
	}
	writePage(w, name, out, next)
}

// writePage answers {"<name>": items, "next": key}; key is "" on the last
// page.
func writePage(w http.ResponseWriter, name string, items any, next string) {
	out := map[string]any{name: items}
	if next != "" {
		out["next"] = next
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) getBroker(w http.ResponseWriter, _ *http.Request) {
	st := a.b.Stats()
	writeJSON(w, http.StatusOK, map[string]any{
		"connections": st.Connections, "sessions": st.Sessions, "subscriptions": st.Subscriptions,
		"retained": st.Retained, "pending_acks": st.PendingAcks,
		"received": map[string]uint64{"qos0": st.Received[0], "qos1": st.Received[1], "qos2": st.Received[2]},
		"sent":     st.Sent, "rejected": st.Rejected, "dropped": st.Dropped,
		"bytes_received": st.BytesIn, "bytes_sent": st.BytesOut,
		"denied": st.Denied, "refused": st.Refused, "throttled": st.Throttled, "slow_consumers": st.SlowConsumers,
	})
}

func (a *API) listClients(w http.ResponseWriter, r *http.Request) {
	servePage(w, r, "clients", a.b.ClientPage, toClient, func(c clientJSON) string { return c.ClientID })
}

func (a *API) getClient(w http.ResponseWriter, r *http.Request) {
	d, ok := a.b.Client(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("client %q is not connected", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, toClient(d))
}

func (a *API) disconnectClient(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), disconnectWait)
	defer cancel()
	found, err := a.b.Disconnect(ctx, id)
	switch {
	case !found:
		writeError(w, http.StatusNotFound, fmt.Sprintf("client %q is not connected", id))
	case err != nil:
		writeError(w, http.StatusGatewayTimeout, err.Error())
	default:
		a.log.Info("client disconnected through the admin API", "client_id", id, "request_id", admin.RequestID(r.Context()))
		writeJSON(w, http.StatusOK, map[string]string{"disconnected": id})
	}
}

func (a *API) listSessions(w http.ResponseWriter, r *http.Request) {
	servePage(w, r, "sessions", a.b.SessionPage, toSession, func(s sessionJSON) string { return s.ClientID })
}

func (a *API) getSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s, ok := a.b.Session(id)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no session for client %q", id))
		return
	}
	out := toSession(s)
	subs := toSubs(a.b.Subscriptions(id))
	writeJSON(w, http.StatusOK, struct {
		sessionJSON
		Subs []subJSON `json:"subscriptions"`
	}{out, subs})
}

func (a *API) deleteSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	switch err := a.b.DeleteSession(id); {
	case errors.Is(err, broker.ErrNoSession):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no session for client %q", id))
	case errors.Is(err, broker.ErrOnline):
		writeError(w, http.StatusConflict, fmt.Sprintf("client %q is connected: disconnect it first", id))
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	default:
		a.log.Info("session deleted through the admin API", "client_id", id, "request_id", admin.RequestID(r.Context()))
		writeJSON(w, http.StatusOK, map[string]string{"deleted": id})
	}
}

func (a *API) listSubscriptions(w http.ResponseWriter, r *http.Request) {
	if id := r.URL.Query().Get("client"); id != "" {
		writePage(w, "subscriptions", toSubs(a.b.Subscriptions(id)), "")
		return
	}
	servePage(w, r, "subscriptions", a.b.SubscriptionPage, toSub, func(s subJSON) string { return s.ClientID })
}

func (a *API) listSinks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"sinks": a.sinkStats()})
}

func (a *API) getSink(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	for _, s := range a.sinkStats() {
		if s.Name == name {
			writeJSON(w, http.StatusOK, s)
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no sink %q", name))
}

func (a *API) sinkStats() []ingest.SinkStats {
	if a.s == nil {
		return []ingest.SinkStats{}
	}
	return a.s.SinkStats()
}
