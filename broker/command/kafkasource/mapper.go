package kafkasource

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/broker/command"
	"github.com/sluicehq/sluice/broker/topic"
)

// mapper turns Kafka records into commands; its templates are compiled
// once, at New.
type mapper struct {
	cfg    Config
	device *template // nil: no device
	topic  *template // nil: the device's command topic
	path   []string  // payload field; nil: the whole value
}

func newMapper(cfg Config) (*mapper, error) {
	m := &mapper{cfg: cfg}
	var err error
	if cfg.Device != "" {
		if m.device, err = compileTemplate(cfg.Device); err != nil {
			return nil, fmt.Errorf("device: %w", err)
		}
	}
	if cfg.Topic != "" {
		if m.topic, err = compileTemplate(cfg.Topic); err != nil {
			return nil, fmt.Errorf("topic: %w", err)
		}
	}
	if cfg.PayloadField != "" {
		if m.path, err = parsePath(cfg.PayloadField); err != nil {
			return nil, fmt.Errorf("payload_field: %w", err)
		}
	}
	return m, nil
}

// recordID is the id of a record without an id header: its position,
// the same every time the record is read.
func recordID(topic string, partition int, offset int64) string {
	return topic + "-" + strconv.Itoa(partition) + "-" + strconv.FormatInt(offset, 10)
}

// command maps r (read at now) to a command. A record that cannot be
// mapped returns the command with its id, source and principal (so it
// can still be recorded as rejected) and the reason.
func (m *mapper) command(r *recordView, offset int64, ts, now time.Time) (command.Command, error) {
	c := command.Command{
		ID:        recordID(r.topic, r.partition, offset),
		Source:    "kafka",
		Principal: "kafka:" + r.topic,
	}
	if v, ok := r.header(m.cfg.IDHeader); ok && len(v) > 0 {
		c.ID = string(v)
	}
	if v, ok := r.header(m.cfg.CorrelationHeader); ok {
		c.CorrelationID = string(v)
	}
	if v, ok := r.header(m.cfg.ContentTypeHeader); ok {
		c.ContentType = string(v)
	}
	qos := *m.cfg.QoS
	if v, ok := r.header(m.cfg.QoSHeader); ok {
		n, err := strconv.Atoi(strings.TrimSpace(string(v)))
		if err != nil || n < 0 || n > 2 {
			return c, fmt.Errorf("header %s: %q is not a QoS (0, 1 or 2)", m.cfg.QoSHeader, v)
		}
		qos = n
	}
	c.QoS = byte(qos)
	ttl := m.cfg.TTL
	if v, ok := r.header(m.cfg.TTLHeader); ok {
		d, err := parseTTL(string(v))
		if err != nil {
			return c, fmt.Errorf("header %s: %w", m.cfg.TTLHeader, err)
		}
		ttl = d
	}
	c.TTL, c.Deadline = ttl, deadline(ttl, ts, now)
	var err error
	if m.device != nil {
		if c.Device, err = m.device.render(r); err != nil {
			return c, fmt.Errorf("device: %w", err)
		}
		if strings.ContainsAny(c.Device, "/+#\x00") {
			return c, fmt.Errorf("device: %q is not a client id (it contains '/', '+', '#' or NUL)", c.Device)
		}
	}
	if m.topic != nil {
		if c.Topic, err = m.topic.render(r); err != nil {
			return c, fmt.Errorf("topic: %w", err)
		}
		if !topic.ValidName([]byte(c.Topic)) {
			return c, fmt.Errorf("topic: %q is not a valid MQTT topic name", c.Topic)
		}
	}
	c.Payload = r.value
	if m.path != nil {
		if c.Payload, err = r.jsonPayload(m.path); err != nil {
			return c, fmt.Errorf("payload_field %s: %w", m.cfg.PayloadField, err)
		}
	}
	return c, nil
}

// parseTTL reads a Go duration or whole seconds; it must be positive.
func parseTTL(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.ParseInt(s, 10, 64)
		if nerr != nil || n > int64(time.Duration(1<<63-1)/time.Second) {
			return 0, fmt.Errorf("%q is not a duration (\"90s\") or whole seconds", s)
		}
		d = time.Duration(n) * time.Second
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q is not positive", s)
	}
	return d, nil
}

// deadline is when a command with ttl from a record stamped ts, read at
// now, expires: a record read late (a consumer down for hours) must not
// reach devices as if it were fresh, and one whose TTL its time in Kafka
// used up ends expired without being sent. Zero (TTL counted from
// acceptance) for the service's default TTL (0) and records without a
// timestamp; a timestamp in the future counts as now.
func deadline(ttl time.Duration, ts, now time.Time) time.Time {
	if ttl <= 0 || ts.IsZero() {
		return time.Time{}
	}
	if ts.After(now) {
		ts = now
	}
	return ts.Add(ttl)
}
