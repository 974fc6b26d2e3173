package command

import (
	"encoding/base64"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/internal/jsonstr"
)

// appendRecord appends r as JSON, as encoding/json would write it (and
// reads it back), without reflection: the accept log and every
// checkpoint encode each command once, on the way to the device.
func appendRecord(b []byte, r *record) []byte {
	c := &r.Cmd
	b = append(b, `{"cmd":{"ID":`...)
	b = jsonstr.Append(b, c.ID)
	b = append(b, `,"Device":`...)
	b = jsonstr.Append(b, c.Device)
	b = append(b, `,"Topic":`...)
	b = jsonstr.Append(b, c.Topic)
	b = append(b, `,"Payload":`...)
	b = appendJSONBytes(b, c.Payload)
	b = append(b, `,"QoS":`...)
	b = strconv.AppendUint(b, uint64(c.QoS), 10)
	b = append(b, `,"TTL":`...)
	b = strconv.AppendInt(b, int64(c.TTL), 10)
	b = append(b, `,"CorrelationID":`...)
	b = jsonstr.Append(b, c.CorrelationID)
	b = append(b, `,"ContentType":`...)
	b = jsonstr.Append(b, c.ContentType)
	b = append(b, `,"UserProperties":`...)
	if c.UserProperties == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, p := range c.UserProperties {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"Name":`...)
			b = jsonstr.Append(b, p.Name)
			b = append(b, `,"Value":`...)
			b = jsonstr.Append(b, p.Value)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"Source":`...)
	b = jsonstr.Append(b, c.Source)
	b = append(b, `,"Principal":`...)
	b = jsonstr.Append(b, c.Principal)
	b = append(b, `,"Deadline":`...)
	b = appendJSONTime(b, c.Deadline)
	b = append(b, `},"status":`...)
	b = appendStatus(b, &r.Status)
	b = append(b, `,"expires":`...)
	b = appendJSONTime(b, r.Expires)
	return append(b, '}')
}

// appendStatus appends st as JSON (its json tags).
func appendStatus(b []byte, st *Status) []byte {
	b = append(b, `{"id":`...)
	b = jsonstr.Append(b, st.ID)
	b = append(b, `,"state":`...)
	b = jsonstr.Append(b, string(st.State))
	for _, f := range [...]struct{ key, v string }{{`,"device":`, st.Device}} {
		if f.v != "" {
			b = append(b, f.key...)
			b = jsonstr.Append(b, f.v)
		}
	}
	b = append(b, `,"topic":`...)
	b = jsonstr.Append(b, st.Topic)
	for _, f := range [...]struct{ key, v string }{
		{`,"source":`, st.Source}, {`,"correlation_id":`, st.CorrelationID}, {`,"reason":`, st.Reason},
	} {
		if f.v != "" {
			b = append(b, f.key...)
			b = jsonstr.Append(b, f.v)
		}
	}
	if len(st.Response) > 0 {
		b = append(b, `,"response":`...)
		b = appendJSONBytes(b, st.Response)
	}
	b = append(b, `,"history":`...)
	if st.History == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, tr := range st.History {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"state":`...)
			b = jsonstr.Append(b, string(tr.State))
			b = append(b, `,"at":`...)
			b = appendJSONTime(b, tr.At)
			if tr.Reason != "" {
				b = append(b, `,"reason":`...)
				b = jsonstr.Append(b, tr.Reason)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"created_at":`...)
	b = appendJSONTime(b, st.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = appendJSONTime(b, st.UpdatedAt)
	return append(b, '}')
}

// appendJSONTime appends t as encoding/json does (RFC 3339, nanoseconds
// when there are any).
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendJSONBytes appends p as a base64 JSON string (null when nil).
func appendJSONBytes(b, p []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, p)
	return append(b, '"')
}
