package kafkasource

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/sluicehq/sluice/sinks/kafka"
)

// Config configures the Kafka command source: a consumer group reading
// commands from Kafka topics. A zero field means its default, so a Config
// decoded over a zero value is complete.
type Config struct {
	// Enabled turns the source on. Default: false.
	Enabled bool `koanf:"enabled"`
	// Brokers lists bootstrap brokers as host:port. Required when
	// enabled. Default: none.
	Brokers []string `koanf:"brokers"`
	// Topics are the Kafka topics commands are read from. Required when
	// enabled. Default: none.
	Topics []string `koanf:"topics"`
	// GroupID is the consumer group; its committed offsets are where a
	// restarted Sluice resumes. Default: sluice-commands.
	GroupID string `koanf:"group_id"`
	// ClientID names Sluice to the brokers. Default: sluice.
	ClientID string `koanf:"client_id"`
	// StartOffset is where a group without committed offsets starts:
	// first (every record still in the topic; stale ones expire by
	// their TTL) or last (only records produced from now on).
	// Default: first.
	StartOffset string `koanf:"start_offset"`
	// Device is the template of the target device (client id), e.g.
	// "{{ key }}" or "{{ json.machine }}"; the command service renders the
	// device's command topic from it. Placeholders: key, topic,
	// partition, header.NAME, json.PATH. Default: "{{ key }}" when Topic
	// is empty too, otherwise "".
	Device string `koanf:"device"`
	// Topic is the template of an explicit MQTT target topic, e.g.
	// "plant/{{ header.line }}/{{ key }}/cmd". Default: "" (the device's
	// command topic).
	Topic string `koanf:"topic"`
	// PayloadField is the JSON field path of the value that is the MQTT
	// payload (a string field's text, any other field's JSON), e.g.
	// "payload" or "data.command". Default: "" (the whole value).
	PayloadField string `koanf:"payload_field"`
	// IDHeader is the header holding the command id. Without it the id is
	// "<topic>-<partition>-<offset>", so a record delivered twice is one
	// command. Default: command-id.
	IDHeader string `koanf:"id_header"`
	// QoSHeader is the header holding the MQTT QoS (0, 1 or 2).
	// Default: qos.
	QoSHeader string `koanf:"qos_header"`
	// TTLHeader is the header holding the command's time to live, a Go
	// duration ("90s", "5m") or whole seconds ("90"). The TTL counts from
	// the record's timestamp, so a record read late has less of it left.
	// Default: ttl.
	TTLHeader string `koanf:"ttl_header"`
	// CorrelationHeader is the header holding the caller's correlation id.
	// Default: correlation-id.
	CorrelationHeader string `koanf:"correlation_header"`
	// ContentTypeHeader is the header holding the payload's content type
	// (MQTT 5 content type). Default: content-type.
	ContentTypeHeader string `koanf:"content_type_header"`
	// QoS is the MQTT QoS of records without a QoS header. Default: 1.
	QoS *int `koanf:"qos"`
	// TTL is the time to live of records without a TTL header; 0 means
	// the command service's default. Default: 0.
	TTL time.Duration `koanf:"ttl"`
	// Concurrency is the number of commands submitted at once; each
	// waits for the command store's group commit, so more of them share
	// each sync. Commands for the same device are always submitted one
	// after another, in record order. Default: 128.
	Concurrency int `koanf:"concurrency"`
	// QueueSize bounds the records fetched but not yet submitted, per
	// concurrent submitter; when full, fetching waits. Default: 64.
	QueueSize int `koanf:"queue_size"`
	// MaxWait is how long a fetch waits at the broker for new records
	// before asking again. Default: 500ms.
	MaxWait time.Duration `koanf:"max_wait"`
	// CommitInterval is the shortest time between two offset commits;
	// offsets are committed only once every earlier record of the
	// partition has been submitted. 0 commits as soon as possible.
	// Default: 100ms.
	CommitInterval time.Duration `koanf:"commit_interval"`
	// RetryInitial is the first wait after a submit that failed (not a
	// rejection); the record is retried until it succeeds. Default: 100ms.
	RetryInitial time.Duration `koanf:"retry_initial"`
	// RetryMax caps the wait between retries. Default: 10s.
	RetryMax time.Duration `koanf:"retry_max"`
	// DialTimeout bounds opening a connection, TLS and SASL included.
	// Default: 5s.
	DialTimeout time.Duration `koanf:"dial_timeout"`
	// TLS configures encrypted connections to the brokers.
	TLS kafka.TLSConfig `koanf:"tls"`
	// SASL configures authentication, as for the Kafka sink (mechanism
	// plain, scram-sha-256 or scram-sha-512; ${NAME} in the password is
	// read from the environment).
	SASL kafka.SASLConfig `koanf:"sasl"`
}

// DefaultConfig returns the defaults (Brokers and Topics still have to be
// set).
func DefaultConfig() Config {
	qos := 1
	return Config{
		GroupID:           "sluice-commands",
		ClientID:          "sluice",
		StartOffset:       "first",
		IDHeader:          "command-id",
		QoSHeader:         "qos",
		TTLHeader:         "ttl",
		CorrelationHeader: "correlation-id",
		ContentTypeHeader: "content-type",
		QoS:               &qos,
		Concurrency:       128,
		QueueSize:         64,
		MaxWait:           500 * time.Millisecond,
		CommitInterval:    100 * time.Millisecond,
		RetryInitial:      100 * time.Millisecond,
		RetryMax:          10 * time.Second,
		DialTimeout:       5 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	for _, p := range []struct{ v, def *string }{
		{&c.GroupID, &d.GroupID}, {&c.ClientID, &d.ClientID}, {&c.StartOffset, &d.StartOffset},
		{&c.IDHeader, &d.IDHeader}, {&c.QoSHeader, &d.QoSHeader}, {&c.TTLHeader, &d.TTLHeader},
		{&c.CorrelationHeader, &d.CorrelationHeader}, {&c.ContentTypeHeader, &d.ContentTypeHeader},
	} {
		if *p.v == "" {
			*p.v = *p.def
		}
	}
	if c.Device == "" && c.Topic == "" {
		c.Device = "{{ key }}"
	}
	if c.QoS == nil {
		c.QoS = d.QoS
	}
	for _, p := range []struct{ v, def *int }{{&c.Concurrency, &d.Concurrency}, {&c.QueueSize, &d.QueueSize}} {
		if *p.v == 0 {
			*p.v = *p.def
		}
	}
	for _, p := range []struct{ v, def *time.Duration }{
		{&c.MaxWait, &d.MaxWait}, {&c.RetryInitial, &d.RetryInitial},
		{&c.RetryMax, &d.RetryMax}, {&c.DialTimeout, &d.DialTimeout},
	} {
		if *p.v == 0 {
			*p.v = *p.def
		}
	}
	return c
}

// Validate reports every problem in c, each with its key path relative to
// the source's section. A disabled source is not checked.
func (c Config) Validate() []error {
	if !c.Enabled {
		return nil
	}
	c = c.withDefaults()
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if len(c.Brokers) == 0 {
		bad("brokers", "at least one broker is required")
	}
	for i, b := range c.Brokers {
		if host, port, err := net.SplitHostPort(b); err != nil || host == "" || port == "" {
			bad(fmt.Sprintf("brokers[%d]", i), "want host:port, got %q", b)
		}
	}
	if len(c.Topics) == 0 {
		bad("topics", "at least one topic is required")
	}
	seen := map[string]bool{}
	for i, t := range c.Topics {
		if err := validTopic(t); err != nil {
			bad(fmt.Sprintf("topics[%d]", i), "%v", err)
		} else if seen[t] {
			bad(fmt.Sprintf("topics[%d]", i), "topic %q is listed twice", t)
		}
		seen[t] = true
	}
	if c.StartOffset != "first" && c.StartOffset != "last" {
		bad("start_offset", "must be first or last, not %q", c.StartOffset)
	}
	for _, tp := range []struct{ path, src string }{{"device", c.Device}, {"topic", c.Topic}} {
		if tp.src == "" {
			continue
		}
		if _, err := compileTemplate(tp.src); err != nil {
			bad(tp.path, "%v", err)
		}
	}
	if c.PayloadField != "" {
		if _, err := parsePath(c.PayloadField); err != nil {
			bad("payload_field", "%v", err)
		}
	}
	if *c.QoS < 0 || *c.QoS > 2 {
		bad("qos", "must be 0, 1 or 2, not %d", *c.QoS)
	}
	if c.TTL < 0 {
		bad("ttl", "must not be negative")
	}
	if c.Concurrency < 1 || c.Concurrency > 1024 {
		bad("concurrency", "must be between 1 and 1024, not %d", c.Concurrency)
	}
	if c.QueueSize < 1 {
		bad("queue_size", "must be at least 1")
	}
	for _, d := range []struct {
		path string
		v    time.Duration
	}{{"max_wait", c.MaxWait}, {"commit_interval", c.CommitInterval}, {"retry_initial", c.RetryInitial}, {"retry_max", c.RetryMax}, {"dial_timeout", c.DialTimeout}} {
		if d.v < 0 {
			bad(d.path, "must not be negative")
		}
	}
	if c.RetryMax < c.RetryInitial {
		bad("retry_max", "must not be below retry_initial (%s)", c.RetryInitial)
	}
	switch c.SASL.Mechanism {
	case "", "plain", "scram-sha-256", "scram-sha-512":
	default:
		bad("sasl.mechanism", "must be plain, scram-sha-256 or scram-sha-512, not %q", c.SASL.Mechanism)
	}
	if c.SASL.Mechanism != "" && c.SASL.Username == "" {
		bad("sasl.username", "is required with sasl.mechanism %s", c.SASL.Mechanism)
	}
	if c.SASL.Mechanism == "" && (c.SASL.Username != "" || c.SASL.Password != "") {
		bad("sasl.mechanism", "is required when sasl.username or sasl.password is set")
	}
	errs = append(errs, c.TLS.Files().Validate("tls.")...)
	if !c.TLS.Enabled && c.TLS != (kafka.TLSConfig{}) {
		bad("tls.enabled", "must be true when other tls settings are given")
	}
	return errs
}

// validTopic applies Kafka's topic name rules: 1 to 249 characters of
// ASCII letters, digits, '.', '_' and '-', and not "." or "..".
func validTopic(t string) error {
	if t == "" || len(t) > 249 {
		return fmt.Errorf("topic name %q must be 1 to 249 characters", t)
	}
	if t == "." || t == ".." {
		return fmt.Errorf("topic name %q is reserved", t)
	}
	if i := strings.IndexFunc(t, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}); i >= 0 {
		return fmt.Errorf("topic name %q has an invalid character %q (want letters, digits, '.', '_', '-')", t, t[i])
	}
	return nil
}
