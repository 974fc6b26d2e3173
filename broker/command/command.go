// Package command sends commands to devices through the embedded broker and
// tracks each one to its end: accepted → queued → sent → delivered →
// responded, or expired, rejected or failed. Sources (HTTP, Kafka, rules)
// hand commands to a Submitter; every transition is published to the
// configured EventSinks through a durable outbox.
package command

import (
	"context"
	"time"

	"github.com/sluicehq/sluice/broker"
)

// State is where a command is in its lifecycle.
type State string

// The lifecycle states. Expired, Rejected, Failed and Responded are final;
// Delivered is final unless a reply is still expected.
const (
	Accepted  State = "accepted"
	Queued    State = "queued"
	Sent      State = "sent"
	Delivered State = "delivered"
	Responded State = "responded"
	Expired   State = "expired"
	Rejected  State = "rejected"
	Failed    State = "failed"
)

// Final reports whether no further transition can follow s (Delivered is
// not final: a reply may still move it to Responded).
func (s State) Final() bool {
	switch s {
	case Responded, Expired, Rejected, Failed:
		return true
	}
	return false
}

// Command is a request to publish to a device.
type Command struct {
	ID             string // caller-chosen id (idempotency key); generated when empty
	Device         string // target client id; Topic is rendered from the configured device topic template when Topic == ""
	Topic          string // explicit target topic
	Payload        []byte
	QoS            byte
	TTL            time.Duration // 0 = the configured default; counted from acceptance, becomes the MQTT message expiry
	CorrelationID  string
	ContentType    string
	UserProperties []broker.UserProperty
	Source         string // "http", "kafka", "rule"
	Principal      string // who asks (token name, "kafka:<topic>", "rule:<name>"), checked against the command ACL
	// Deadline, when set, is when the command expires if that is before
	// acceptance + TTL (a Kafka record's timestamp + its TTL: time spent
	// in Kafka counts). A command accepted after its deadline ends
	// expired without being sent.
	Deadline time.Time
}

// Status is a command's current state and history.
type Status struct {
	ID            string       `json:"id"`
	State         State        `json:"state"`
	Device        string       `json:"device,omitempty"`
	Topic         string       `json:"topic"`
	Source        string       `json:"source,omitempty"`
	CorrelationID string       `json:"correlation_id,omitempty"`
	Reason        string       `json:"reason,omitempty"`
	Response      []byte       `json:"response,omitempty"`
	History       []Transition `json:"history"`
	CreatedAt     time.Time    `json:"created_at"`
	UpdatedAt     time.Time    `json:"updated_at"`
}

// Transition is one step of a command's history.
type Transition struct {
	State  State     `json:"state"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// Event is one transition, published to the status sinks.
type Event struct {
	ID            string    `json:"id"`
	State         State     `json:"state"`
	At            time.Time `json:"at"`
	Device        string    `json:"device,omitempty"`
	Topic         string    `json:"topic"`
	Source        string    `json:"source,omitempty"`
	CorrelationID string    `json:"correlation_id,omitempty"`
	Reason        string    `json:"reason,omitempty"`
	Response      []byte    `json:"response,omitempty"`
}

// Submitter accepts commands. Submit returns once the command is durably
// stored (so a Kafka offset may be committed); resubmitting a known ID
// returns its status without publishing again. A refused command returns
// *RejectedError (and is recorded as rejected).
type Submitter interface {
	Submit(ctx context.Context, c Command) (Status, error)
}

// RejectedError is returned by Submit when a command is refused (ACL, no
// such device, invalid command). It is final: retrying will not help.
type RejectedError struct {
	Reason string
	// Denied says the command ACL refused the principal (HTTP 403).
	Denied bool
}

// Error implements error.
func (e *RejectedError) Error() string { return "command rejected: " + e.Reason }

// EventSink receives status events, at least once, in per-command order. A
// non-nil error means "retry later": the service keeps undelivered events
// in its durable outbox and retries.
type EventSink interface {
	PublishEvents(ctx context.Context, evs []Event) error
}
