package webhook

import (
	"encoding/base64"
	"encoding/json"
	"github.com/sluicehq/sluice/internal/jsonstr"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/sinks"
)

// appendRecord appends r as the JSON object documented in sinks/README.md:
//
//	{"rule":..., "topic": <MQTT topic>, "client_id":..., "qos":...,
//	 "received_at": <RFC 3339>, "key":..., "content_type":...,
//	 "user_properties":[{"name":...,"value":...}], "payload":...}
//
// payload is the value itself when it is valid JSON (line breaks turned
// into spaces); otherwise a base64
// string, and "encoding":"base64" says so. The key is a string when it
// is valid UTF-8, else base64 with "key_encoding":"base64". Optional
// fields (rule, received_at, key, content_type, user_properties) are left
// out when empty.
func appendRecord(b []byte, r *sinks.Record) []byte {
	b = append(b, '{')
	if r.Rule != "" {
		b = append(b, `"rule":`...)
		b = appendString(b, r.Rule)
		b = append(b, ',')
	}
	b = append(b, `"topic":`...)
	b = appendString(b, r.Source.Topic)
	b = append(b, `,"client_id":`...)
	b = appendString(b, r.Source.ClientID)
	b = append(b, `,"qos":`...)
	b = strconv.AppendUint(b, uint64(r.Source.QoS), 10)
	if !r.Source.ReceivedAt.IsZero() {
		b = append(b, `,"received_at":"`...)
		b = r.Source.ReceivedAt.UTC().AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	if len(r.Key) > 0 {
		b = append(b, `,"key":`...)
		if utf8.Valid(r.Key) {
			b = appendString(b, string(r.Key))
		} else {
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, r.Key)
			b = append(b, `","key_encoding":"base64"`...)
		}
	}
	if r.Source.ContentType != "" {
		b = append(b, `,"content_type":`...)
		b = appendString(b, r.Source.ContentType)
	}
	if len(r.Source.UserProperties) > 0 {
		b = append(b, `,"user_properties":[`...)
		for i, p := range r.Source.UserProperties {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendString(b, p.Name)
			b = append(b, `,"value":`...)
			b = appendString(b, p.Value)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"payload":`...)
	if isJSON(r.Value) {
		// Line breaks in valid JSON are whitespace between tokens (inside
		// strings they must be escaped), so they become spaces: a body
		// stays one line per record in ndjson.
		n := len(b)
		b = append(b, r.Value...)
		for i := n; i < len(b); i++ {
			if b[i] == '\n' || b[i] == '\r' {
				b[i] = ' '
			}
		}
	} else {
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, r.Value)
		b = append(b, `","encoding":"base64"`...)
	}
	return append(b, '}')
}

// isJSON reports whether v is a JSON text. The first byte rules most
// non-JSON values out cheaply (json.Valid allocates an error for them).
func isJSON(v []byte) bool {
	for i, c := range v {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{', '[', '"', 't', 'f', 'n', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			return json.Valid(v[i:])
		}
		return false
	}
	return false
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte { return jsonstr.Append(b, s) }
