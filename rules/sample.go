package rules

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/ingest"
)

// Sample is a message written in YAML, for rule tests and tools.
type Sample struct {
	// Topic is the PUBLISH topic. Required.
	Topic string `yaml:"topic"`
	// Payload is the payload: a string is used as it is, anything else
	// (a mapping, a list, a number) is JSON-encoded.
	Payload any `yaml:"payload"`
	// ClientID, Username, QoS, Retain, ContentType and Props are the
	// message's metadata; Props are v5 user properties.
	ClientID    string            `yaml:"clientid"`
	Username    string            `yaml:"username"`
	QoS         byte              `yaml:"qos"`
	Retain      bool              `yaml:"retain"`
	ContentType string            `yaml:"content_type"`
	Props       map[string]string `yaml:"props"`
	// ReceivedAt is when the broker received it. Default: 2024-01-01T00:00:00Z,
	// so that results are reproducible.
	ReceivedAt time.Time `yaml:"received_at"`
}

// Input builds the pipeline's view of the sample: the message and its
// payload decoded as JSON (DecodeErr set when it is not JSON).
func (s *Sample) Input() (*ingest.Input, error) {
	var raw []byte
	switch p := s.Payload.(type) {
	case nil:
	case string:
		raw = []byte(p)
	default:
		b, err := json.Marshal(jsonable(p))
		if err != nil {
			return nil, fmt.Errorf("encoding sample payload: %w", err)
		}
		raw = b
	}
	at := s.ReceivedAt
	if at.IsZero() {
		at = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	m := &broker.Message{Topic: s.Topic, Payload: raw, QoS: s.QoS, Retain: s.Retain, ClientID: s.ClientID,
		Username: s.Username, Version: 5, ReceivedAt: at, ContentType: s.ContentType}
	for k, v := range s.Props {
		m.UserProperties = append(m.UserProperties, broker.UserProperty{Name: k, Value: v})
	}
	in := &ingest.Input{Msg: m}
	if len(raw) > 0 {
		in.DecodeErr = json.Unmarshal(raw, &in.Payload)
		if in.DecodeErr != nil {
			in.Payload = nil
		}
	}
	return in, nil
}

// jsonable converts YAML-decoded values (map[string]any with any keys)
// into values encoding/json accepts.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = jsonable(e)
		}
		return m
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	}
	return v
}
