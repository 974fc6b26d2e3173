package command

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluicehq/sluice/broker/auth"
)

// Config configures downstream commands. It is the `commands` section of
// the Sluice config file.
type Config struct {
	// Enabled turns commands on: the HTTP API, the command store and
	// delivery tracking. Default: false.
	Enabled bool `koanf:"enabled"`
	// Dir holds the command store (commands.db). Default: "" (the
	// "commands" directory inside ingest.data_dir).
	Dir string `koanf:"dir"`
	// DeviceTopic is the topic a command for a device is published to
	// when no explicit topic is given; "{device}" stands for the device's
	// client id. Default: "devices/{device}/commands".
	DeviceTopic string `koanf:"device_topic"`
	// ResponseTopic is the MQTT 5 Response Topic sent with each command
	// (its Correlation Data is the command id); "{device}" and "{id}"
	// stand for the device and the command id. A PUBLISH carrying a
	// command id as correlation data answers that command, whatever its
	// topic. Default: "devices/{device}/replies/{id}".
	ResponseTopic string `koanf:"response_topic"`
	// ReplyTopic is the pattern MQTT 3.1.1 devices (which have no
	// correlation data) publish replies to: "{device}" and "{id}" each
	// match one topic level. Empty disables it.
	// Default: "devices/{device}/replies/{id}".
	ReplyTopic string `koanf:"reply_topic"`
	// DefaultQoS is the QoS of HTTP commands that do not give one.
	// Default: 1.
	DefaultQoS byte `koanf:"default_qos"`
	// DefaultTTL is the time to live of commands that do not give one:
	// the MQTT message expiry, after which an undelivered command is
	// expired. Default: 5m.
	DefaultTTL time.Duration `koanf:"default_ttl"`
	// MaxTTL caps every command's time to live. Default: 24h.
	MaxTTL time.Duration `koanf:"max_ttl"`
	// Retention is how long a finished command's status (and a
	// delivered command still waiting for a reply) is kept for
	// GET /api/v1/commands/{id} and as an idempotency key. Default: 24h.
	Retention time.Duration `koanf:"retention"`
	// MaxPending bounds the commands not yet finished; beyond it new
	// commands are refused with 503 (retry later). Default: 100000.
	MaxPending int `koanf:"max_pending"`
	// MaxPayloadBytes bounds a command's payload. Default: 262144.
	MaxPayloadBytes int `koanf:"max_payload_bytes"`
	// Tokens are the bearer tokens of the HTTP API, each allowed to
	// command the topics its Allow filters match. The admin token
	// (admin.token) may command every topic. Default: none.
	Tokens []TokenConfig `koanf:"tokens"`
	// ACL limits which device topics other principals may command, with
	// the rule model of auth.acl: a rule's users are principal names
	// ("kafka:<topic>" for the Kafka source, "rule:<name>" for rules,
	// a token's name), "%c" in its topic stands for the target device.
	// Rules are tried in order after the tokens' Allow filters; with no
	// matching rule a command is rejected. Default: none.
	ACL []auth.ACLRule `koanf:"acl"`
	// Outbox configures the delivery of status events to their sinks.
	Outbox OutboxConfig `koanf:"outbox"`
}

// TokenConfig is one HTTP API token.
type TokenConfig struct {
	// Name identifies the token in logs, statuses and ACL rules.
	// Required.
	Name string `koanf:"name"`
	// Token is the secret, sent as "Authorization: Bearer TOKEN".
	// Required.
	Token string `koanf:"token"`
	// Allow lists the topic filters ('+', '#'; "%c" for the target
	// device) the token may command. Default: none.
	Allow []string `koanf:"allow"`
}

// OutboxConfig bounds the durable queue of status events.
type OutboxConfig struct {
	// MaxEvents bounds the events kept for the sinks; beyond it the
	// oldest are dropped and counted. Default: 100000.
	MaxEvents int `koanf:"max_events"`
	// MaxAge drops events not delivered within this time (counted).
	// Default: 24h.
	MaxAge time.Duration `koanf:"max_age"`
	// BatchSize is the most events handed to a sink at once.
	// Default: 500.
	BatchSize int `koanf:"batch_size"`
	// RetryInitial is the first delay after a sink failed. Default: 100ms.
	RetryInitial time.Duration `koanf:"retry_initial"`
	// RetryMax caps the delay between attempts. Default: 30s.
	RetryMax time.Duration `koanf:"retry_max"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		DeviceTopic:     "devices/{device}/commands",
		ResponseTopic:   "devices/{device}/replies/{id}",
		ReplyTopic:      "devices/{device}/replies/{id}",
		DefaultQoS:      1,
		DefaultTTL:      5 * time.Minute,
		MaxTTL:          24 * time.Hour,
		Retention:       24 * time.Hour,
		MaxPending:      100000,
		MaxPayloadBytes: 256 << 10,
		Outbox: OutboxConfig{
			MaxEvents: 100000, MaxAge: 24 * time.Hour, BatchSize: 500,
			RetryInitial: 100 * time.Millisecond, RetryMax: 30 * time.Second,
		},
	}
}

// Validate reports every problem in c, each prefixed with its key path
// relative to the commands section (e.g. "tokens[1].name: ...").
func (c Config) Validate() []error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if _, err := compileTemplate(c.DeviceTopic, false); err != nil {
		add("device_topic", "%v", err)
	} else if !strings.Contains(c.DeviceTopic, "{device}") {
		add("device_topic", "must contain {device}")
	}
	if _, err := compileTemplate(c.ResponseTopic, true); err != nil {
		add("response_topic", "%v", err)
	}
	if c.ReplyTopic != "" {
		if _, err := compileReplyPattern(c.ReplyTopic); err != nil {
			add("reply_topic", "%v", err)
		}
	}
	if c.DefaultQoS > 2 {
		add("default_qos", "must be 0, 1 or 2, got %d", c.DefaultQoS)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"default_ttl", c.DefaultTTL}, {"max_ttl", c.MaxTTL}, {"retention", c.Retention},
		{"outbox.max_age", c.Outbox.MaxAge}, {"outbox.retry_initial", c.Outbox.RetryInitial}, {"outbox.retry_max", c.Outbox.RetryMax}} {
		if d.v <= 0 {
			add(d.key, "must be positive, got %s", d.v)
		}
	}
	if c.DefaultTTL > c.MaxTTL && c.MaxTTL > 0 {
		add("default_ttl", "%s exceeds max_ttl %s", c.DefaultTTL, c.MaxTTL)
	}
	if c.MaxTTL > time.Duration(1<<32-1)*time.Second {
		add("max_ttl", "must fit an MQTT message expiry (about 136 years)")
	}
	for _, n := range []struct {
		key string
		v   int
	}{{"max_pending", c.MaxPending}, {"max_payload_bytes", c.MaxPayloadBytes},
		{"outbox.max_events", c.Outbox.MaxEvents}, {"outbox.batch_size", c.Outbox.BatchSize}} {
		if n.v <= 0 {
			add(n.key, "must be positive, got %d", n.v)
		}
	}
	names := map[string]int{}
	for i, t := range c.Tokens {
		p := fmt.Sprintf("tokens[%d]", i)
		if prev, dup := names[t.Name]; dup {
			add(p+".name", "%q is already used by tokens[%d]", t.Name, prev)
		} else if t.Name == "" {
			add(p+".name", "must not be empty")
		} else {
			names[t.Name] = i
		}
		if len(t.Token) < 16 {
			add(p+".token", "must be at least 16 characters")
		}
		for j, f := range t.Allow {
			if _, err := auth.NewACL([]auth.ACLRule{{Permission: auth.PermissionAllow, Action: auth.ActionPublish, Topic: f}}); err != nil {
				add(fmt.Sprintf("%s.allow[%d]", p, j), "%v", unwrapRule(err))
			}
		}
	}
	for i, r := range c.ACL {
		if _, err := auth.NewACL([]auth.ACLRule{r}); err != nil {
			add(fmt.Sprintf("acl[%d]", i), "%v", unwrapRule(err))
		}
	}
	return errs
}

// unwrapRule strips NewACL's "compiling acl[0]: " prefix.
func unwrapRule(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}
