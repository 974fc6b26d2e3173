package ingest

import (
	"github.com/sluicehq/sluice/broker"
)

// Mode is a durability mode: when a QoS 1/2 PUBLISH is acknowledged.
type Mode string

// Durability modes.
const (
	// ModeSpool acknowledges once the message is fsynced in the spool.
	ModeSpool Mode = "spool"
	// ModeSinks acknowledges once every matched sink has accepted it (no disk).
	ModeSinks Mode = "sinks"
	// ModeNone acknowledges at once.
	ModeNone Mode = "none"
)

// Input is one message as the router sees it. Payload is decoded once per
// message and shared by every rule.
type Input struct {
	Msg *broker.Message
	// Payload is the decoded payload (for JSON: map[string]any, []any,
	// string, float64, bool or nil); nil when DecodeErr is set.
	Payload any
	// DecodeErr is why the payload could not be decoded, if it could not.
	// Rules that use only raw and topic fields still run.
	DecodeErr error
}

// Output is one routing decision: a record for one sink.
type Output struct {
	// Rule names the rule that produced the output.
	Rule string
	// Sink is the target sink's name.
	Sink string
	// Topic is the rendered destination topic ("" = sink default).
	Topic string
	// Key is the ordering/partition key; nil means the client id.
	Key []byte
	// Value is the transformed body; nil means the raw payload.
	Value []byte
	// QoS and Retain apply to MQTT republish.
	QoS    byte
	Retain bool
	// Mode overrides the global durability mode for this output ("" =
	// default). A message's mode is the strongest among its outputs.
	Mode Mode
	// Err, when set, sends the message to the dead-letter store instead
	// of Sink (a rule's on_error: dead_letter).
	Err string
}

// Router decides where a message goes. The rules engine implements it.
// Route appends m's outputs to dst and returns it; it must not retain in
// after returning and must be safe for concurrent use. Runtime errors in
// rules are reported as outputs with Err set (or skipped), never returned.
type Router interface {
	Route(in *Input, dst []Output) []Output
}

// RouterFunc adapts a function to Router.
type RouterFunc func(in *Input, dst []Output) []Output

// Route calls f.
func (f RouterFunc) Route(in *Input, dst []Output) []Output { return f(in, dst) }
