package webhook

import (
	"encoding/base64"
	"encoding/json"
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

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD
// (as encoding/json does); U+2028 and U+2029 are escaped so the output
// is also valid JavaScript.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
