package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/internal/admin"
)

// clientJSON is a connected client as the API shows it.
type clientJSON struct {
	ClientID         string      `json:"client_id"`
	Username         string      `json:"username,omitempty"`
	ProtocolVersion  byte        `json:"protocol_version"`
	Listener         string      `json:"listener"`
	RemoteAddr       string      `json:"remote_addr"`
	ConnID           uint64      `json:"conn_id"`
	ConnectedAt      time.Time   `json:"connected_at"`
	KeepAliveSeconds float64     `json:"keep_alive_seconds"`
	CleanStart       bool        `json:"clean_start"`
	Session          sessionJSON `json:"session"`
	Subscriptions    []subJSON   `json:"subscriptions"`
}

func toClient(d broker.ClientDetails) clientJSON {
	return clientJSON{
		ClientID: d.ClientID, Username: d.Username, ProtocolVersion: d.Version, Listener: d.Listener,
		RemoteAddr: d.RemoteAddr, ConnID: d.ConnID, ConnectedAt: d.ConnectedAt,
		KeepAliveSeconds: d.KeepAlive.Seconds(), CleanStart: d.CleanStart,
		Session: toSession(d.Session), Subscriptions: toSubs(d.Subscriptions),
	}
}

// sessionJSON is a session as the API shows it. expiry_seconds is null
// when the session never expires.
type sessionJSON struct {
	ClientID      string    `json:"client_id"`
	Online        bool      `json:"online"`
	ConnID        uint64    `json:"conn_id,omitempty"`
	ExpirySeconds *uint32   `json:"expiry_seconds"`
	OfflineSince  time.Time `json:"offline_since,omitzero"`
	ExpiresAt     time.Time `json:"expires_at,omitzero"`
	Inflight      int       `json:"inflight"`
	Queued        int       `json:"queued"`
	QueuedBytes   int       `json:"queued_bytes"`
	Subscriptions int       `json:"subscription_count"`
	PendingWill   bool      `json:"pending_will"`
}

func toSession(s broker.SessionInfo) sessionJSON {
	out := sessionJSON{
		ClientID: s.ClientID, Online: s.Online, ConnID: s.ConnID, OfflineSince: s.OfflineSince,
		ExpiresAt: s.ExpiresAt, Inflight: s.Inflight, Queued: s.Queued, QueuedBytes: s.QueuedBytes,
		Subscriptions: s.Subscriptions, PendingWill: s.PendingWill,
	}
	if s.Expiry != 0xFFFFFFFF {
		e := s.Expiry
		out.ExpirySeconds = &e
	}
	return out
}

// subJSON is one subscription.
type subJSON struct {
	ClientID          string `json:"client_id"`
	Filter            string `json:"filter"`
	Group             string `json:"group,omitempty"`
	QoS               byte   `json:"qos"`
	NoLocal           bool   `json:"no_local"`
	RetainAsPublished bool   `json:"retain_as_published"`
	RetainHandling    byte   `json:"retain_handling"`
	SubscriptionID    uint32 `json:"subscription_id,omitempty"`
}

func toSubs(subs []broker.Subscription) []subJSON {
	out := make([]subJSON, len(subs))
	for i, s := range subs {
		out[i] = toSub(s)
	}
	return out
}

func toSub(s broker.Subscription) subJSON {
	return subJSON{ClientID: s.ClientID, Filter: s.Filter, Group: s.Group, QoS: s.QoS, NoLocal: s.NoLocal,
		RetainAsPublished: s.RetainAsPublished, RetainHandling: s.RetainHandling, SubscriptionID: s.ID}
}

// messageJSON is a retained message. The payload is text when it is valid
// UTF-8, else base64 (payload_encoding says which); in listings it is cut
// to previewBytes (payload_truncated), payload_size is the whole size.
type messageJSON struct {
	Topic            string    `json:"topic"`
	Payload          string    `json:"payload"`
	PayloadEncoding  string    `json:"payload_encoding"`
	PayloadSize      int       `json:"payload_size"`
	PayloadTruncated bool      `json:"payload_truncated,omitempty"`
	QoS              byte      `json:"qos"`
	ClientID         string    `json:"client_id,omitempty"`
	ReceivedAt       time.Time `json:"received_at,omitzero"`
	ContentType      string    `json:"content_type,omitempty"`
}

func toMessage(m *broker.Message, limit int) messageJSON {
	p := m.Payload
	out := messageJSON{Topic: m.Topic, PayloadSize: len(p), QoS: m.QoS, ClientID: m.ClientID,
		ReceivedAt: m.ReceivedAt, ContentType: m.ContentType}
	if limit > 0 && len(p) > limit {
		p, out.PayloadTruncated = p[:limit], true
	}
	// A cut may split a rune: a valid prefix ends at most 3 bytes short.
	text := p
	if out.PayloadTruncated {
		for i := 0; i < 3 && len(text) > 0 && !utf8.Valid(text); i++ {
			text = text[:len(text)-1]
		}
	}
	if utf8.Valid(text) {
		out.Payload, out.PayloadEncoding = string(text), "utf-8"
	} else {
		out.Payload, out.PayloadEncoding = base64.StdEncoding.EncodeToString(p), "base64"
	}
	return out
}

// listRetained serves GET /api/v1/retained?filter=F&limit=N, or one whole
// message with ?topic=T.
func (a *API) listRetained(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if t := q.Get("topic"); t != "" {
		msgs, _, err := a.b.RetainedMessages(t, 1)
		if err != nil || len(msgs) == 0 || msgs[0].Topic != t {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no retained message on %q", t))
			return
		}
		writeJSON(w, http.StatusOK, toMessage(msgs[0], 0))
		return
	}
	filter := q.Get("filter")
	if filter == "" {
		filter = "#"
	}
	_, limit, err := paging(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	msgs, more, err := a.b.RetainedMessages(filter, limit)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	out := make([]messageJSON, len(msgs))
	for i, m := range msgs {
		out[i] = toMessage(m, previewBytes)
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": out, "truncated": more})
}

// publishRequest is the body of POST /api/v1/publish. Exactly one of
// payload (text) and payload_base64 may be set.
type publishRequest struct {
	Topic          string            `json:"topic"`
	Payload        *string           `json:"payload"`
	PayloadBase64  *string           `json:"payload_base64"`
	QoS            byte              `json:"qos"`
	Retain         bool              `json:"retain"`
	ContentType    string            `json:"content_type"`
	MessageExpiry  uint32            `json:"message_expiry_seconds"`
	UserProperties map[string]string `json:"user_properties"`
}

// publish serves POST /api/v1/publish: the message goes to the broker's
// subscribers (and the retained store) as if a client published it; it
// does not pass through the rules and sinks.
func (a *API) publish(w http.ResponseWriter, r *http.Request) {
	var req publishRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPublishBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		status := http.StatusBadRequest
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			status = http.StatusRequestEntityTooLarge
		}
		writeError(w, status, fmt.Sprintf("reading publish request: %v", err))
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "reading publish request: trailing data after the JSON object")
		return
	}
	m := &broker.Message{Topic: req.Topic, QoS: req.QoS, Retain: req.Retain, ContentType: req.ContentType,
		MessageExpiry: req.MessageExpiry, ReceivedAt: time.Now()}
	switch {
	case req.Payload != nil && req.PayloadBase64 != nil:
		writeError(w, http.StatusBadRequest, "set payload or payload_base64, not both")
		return
	case req.Payload != nil:
		m.Payload = []byte(*req.Payload)
	case req.PayloadBase64 != nil:
		b, err := base64.StdEncoding.DecodeString(*req.PayloadBase64)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("payload_base64: %v", err))
			return
		}
		m.Payload = b
	}
	for _, k := range slices.Sorted(maps.Keys(req.UserProperties)) {
		m.UserProperties = append(m.UserProperties, broker.UserProperty{Name: k, Value: req.UserProperties[k]})
	}
	if err := a.b.Publish(m); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	a.log.Info("message published through the admin API", "topic", m.Topic, "qos", m.QoS, "retain", m.Retain,
		"bytes", len(m.Payload), "request_id", admin.RequestID(r.Context()))
	writeJSON(w, http.StatusOK, map[string]any{"topic": m.Topic, "bytes": len(m.Payload)})
}
