// Package sinks defines what a sink is. A sink does I/O only: it writes a
// batch of records to its destination and reports, per record, whether the
// destination accepted it. Batching, in-flight limits, retries with backoff,
// ordering lanes, dead-lettering and metrics belong to the runner that
// drives every sink (see package ingest), written once.
package sinks

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Record is one message routed to a sink by a rule.
type Record struct {
	// Rule is the name of the rule that routed the record.
	Rule string
	// Topic is the destination topic rendered by the rule (a Kafka topic,
	// an MQTT republish topic, a URL path parameter); "" means the sink's
	// configured default.
	Topic string
	// Key is the ordering/partition key (default: the client id).
	Key []byte
	// Value is the body to write: the rule's transform output, or the raw
	// MQTT payload when the rule has no transform.
	Value []byte
	// QoS and Retain apply to MQTT republish.
	QoS    byte
	Retain bool
	// Source describes the MQTT message the record came from.
	Source Source
}

// Source is the originating MQTT message's metadata.
type Source struct {
	Topic          string
	ClientID       string
	Username       string
	QoS            byte
	Retain         bool
	ContentType    string
	ReceivedAt     time.Time
	UserProperties []UserProperty
}

// UserProperty is an MQTT 5 user property carried with the message.
type UserProperty struct{ Name, Value string }

// Sink writes batches to one destination.
type Sink interface {
	// Write writes batch and returns nil only when the destination has
	// accepted every record. A *BatchError reports which records failed;
	// any other error applies to the whole batch. Errors marked with
	// Permanent are never retried (the records are dead-lettered); all
	// others are retried with backoff. Write is never called concurrently
	// on the same lane but may be called concurrently across lanes when
	// the runner's max in-flight is above one. The batch slice is the
	// runner's: it is reused once Write returns, so a sink must not keep
	// it; the records' byte slices (Key, Value) may be kept.
	Write(ctx context.Context, batch []Record) error
	// Close releases connections. It is safe to call twice.
	Close() error
}

// Connector is implemented by sinks that connect (and verify their
// configuration against the destination) before the first write. The
// runner calls Connect with backoff until it succeeds.
type Connector interface {
	Connect(ctx context.Context) error
}

// PermanentError marks an error that retrying cannot fix (a 4xx answer,
// a value the destination cannot store).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as permanent.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err is marked permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// ItemError is the failure of one record of a batch.
type ItemError struct {
	Index int // index in the batch passed to Write
	Err   error
}

// BatchError reports the records of a batch that failed; the others
// were accepted.
type BatchError struct{ Failed []ItemError }

func (e *BatchError) Error() string {
	if len(e.Failed) == 0 {
		return "batch: no failures"
	}
	return fmt.Sprintf("batch: %d records failed, first (#%d): %v", len(e.Failed), e.Failed[0].Index, e.Failed[0].Err)
}

// RetryAfterError asks the runner to wait at least After before retrying
// (an HTTP 429 with Retry-After).
type RetryAfterError struct {
	After time.Duration
	Err   error
}

func (e *RetryAfterError) Error() string { return fmt.Sprintf("retry after %s: %v", e.After, e.Err) }
func (e *RetryAfterError) Unwrap() error { return e.Err }
