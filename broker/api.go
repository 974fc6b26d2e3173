package broker

// This file holds the broker's contract with the rest of Sluice (cmd wiring
// and the ingest pipeline): the message handed over, the Consumer seam and
// the Server's collaborators. Config is in config.go, Server in server.go.

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/broker/auth"
)

// Message is an accepted PUBLISH as handed to the Consumer. It is immutable
// once handed over and may be retained by the consumer.
type Message struct {
	Topic      string
	Payload    []byte
	QoS        byte
	Retain     bool
	ClientID   string
	Username   string
	Version    byte // protocol version of the publishing client
	ReceivedAt time.Time

	// v5 properties passed through (zero values when absent).
	PayloadFormat   byte
	MessageExpiry   uint32 // seconds; 0 = none
	ContentType     string
	ResponseTopic   string
	CorrelationData []byte
	UserProperties  []UserProperty

	// CommandID marks a tracked message (downstream commands, track.go):
	// its delivery is reported to Options.Tracker. Set only by
	// PublishCommand; kept in session queues and the store, never sent.
	CommandID string `json:",omitempty"`
}

// UserProperty is a v5 user property.
type UserProperty struct{ Name, Value string }

// Consumer receives every PUBLISH the broker accepts from a client (the
// ingest seam). Deliver is called from the connection's goroutine in
// arrival order. It must call ack exactly once, possibly later and from
// another goroutine: ack(nil) means the message is safe (the broker then
// routes it to subscribers and, for QoS 1/2, sends PUBACK/PUBREC in
// arrival order); ack(&RejectError{...}) makes the broker refuse it (v5:
// PUBACK/PUBREC with that reason code; 3.1.1: no ack, disconnect).
// Deliver may block to push back on the publisher.
type Consumer interface {
	Deliver(ctx context.Context, m *Message, ack func(error))
}

// RejectError is how a Consumer refuses a message.
type RejectError struct {
	Code   byte   // v5 reason code, e.g. 0x97 quota exceeded, 0x80
	Reason string // sent as the v5 reason string
}

// Error implements error.
func (e *RejectError) Error() string { return "message rejected: " + e.Reason }

// Options carries a Server's collaborators.
type Options struct {
	Logger     *slog.Logger          // default: slog.New(discard)
	Registerer prometheus.Registerer // default: none (metrics not exported)
	Consumer   Consumer              // default: accepts every message at once
	Store      SessionStore          // default: none (state in memory only)
	// Version is published in $SYS/broker/version. Default: "".
	Version string
	// Auth authenticates clients at CONNECT and authorises their
	// PUBLISH, SUBSCRIBE and will topics (*auth.Auth satisfies it).
	// Default: nil (each listener's allow_anonymous decides, a verified
	// certificate identity is the user name, everything is allowed).
	Auth Auth
	// Tracker observes the delivery of tracked messages (PublishCommand).
	// Default: nil (nothing reported).
	Tracker Tracker
}

// Auth is what the broker needs from an authenticator (broker/auth).
// Authenticate runs on the connection's goroutine and may block for one
// password hash check; CanPublish and CanSubscribe must not block.
type Auth interface {
	Authenticate(ctx context.Context, c auth.Credentials) (auth.Identity, error)
	CanPublish(id auth.Identity, topic string) bool
	CanSubscribe(id auth.Identity, filter string) bool
}
