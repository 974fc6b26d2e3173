package broker

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice/broker/listener"
)

// maxMQTTPacket is the largest packet the MQTT wire format can express
// (remaining length 268435455 plus a 5-byte fixed header).
const maxMQTTPacket = 268435455 + 5

// minPacketSize is the smallest MaxPacketSize accepted: below it ordinary
// CONNECT packets would not fit.
const minPacketSize = 64

// Config configures the embedded MQTT broker. It is the `broker` section of
// the Sluice config file.
type Config struct {
	// Listeners are the network endpoints. Default: one TCP listener
	// "default" on 127.0.0.1:1883.
	Listeners []ListenerConfig `koanf:"listeners"`
	// MaxPacketSize is the largest packet accepted from a client, in bytes.
	// Default: 1048576.
	MaxPacketSize uint32 `koanf:"max_packet_size"`
	// ReceiveMaximum is the number of QoS 1/2 PUBLISHes a client may have
	// awaiting acknowledgement (advertised to v5 clients). Default: 128.
	ReceiveMaximum uint16 `koanf:"receive_maximum"`
	// MaxInflight is the outbound QoS 1/2 window per client (further
	// limited by the client's own receive maximum). Default: 128.
	MaxInflight uint16 `koanf:"max_inflight"`
	// MaxQueuedMessages bounds a session's queue of messages waiting to be
	// sent (offline, or beyond the inflight window). Default: 1000.
	MaxQueuedMessages int `koanf:"max_queued_messages"`
	// MaxQueuedBytes bounds the same queue in payload bytes. Default: 16 MiB.
	MaxQueuedBytes int `koanf:"max_queued_bytes"`
	// MaxBufferedBytes bounds a connection's buffer of encoded packets not
	// yet written to its socket. QoS 0 messages that do not fit are dropped.
	// Default: 256 KiB.
	MaxBufferedBytes int `koanf:"max_buffered_bytes"`
	// MaxPublisherWait is how long routing a QoS 0 message may wait for
	// room in a subscriber's full write buffer while that subscriber is
	// reading (its current write began less than 100ms ago); this paces
	// publishers to live subscribers instead of dropping. A subscriber that
	// stopped reading is never waited for. 0 drops at once. Default: 1s (a
	// pipeline that loses nothing would rather slow a publisher than drop).
	MaxPublisherWait time.Duration `koanf:"max_publisher_wait"`
	// TopicAliasMaximum is the number of inbound topic aliases a v5 client
	// may use. Default: 64.
	TopicAliasMaximum uint16 `koanf:"topic_alias_maximum"`
	// MaxSessionExpiry caps the session expiry interval a client may ask
	// for. Default: 0 (no cap).
	MaxSessionExpiry time.Duration `koanf:"max_session_expiry"`
	// MaxKeepAlive caps the keep alive a v5 client may ask for; a larger
	// (or zero) request is answered with a Server Keep Alive. Default: 0
	// (no cap).
	MaxKeepAlive time.Duration `koanf:"max_keep_alive"`
	// ConnectTimeout is how long a new connection has to send CONNECT.
	// Default: 10s.
	ConnectTimeout time.Duration `koanf:"connect_timeout"`
	// WriteTimeout is how long one write to a client may block before the
	// connection is considered dead and closed. Default: 30s.
	WriteTimeout time.Duration `koanf:"write_timeout"`
	// ShutdownTimeout is how long Serve waits, once cancelled, for pending
	// consumer acks and outgoing data before closing connections hard.
	// Default: 10s.
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
	// RejectWait is how long the broker waits for the consumer to accept a
	// QoS 1/2 message before rejecting it with 0x97 (v5) or disconnecting
	// (3.1.1). Default: 0 (wait indefinitely; the consumer decides).
	RejectWait time.Duration `koanf:"reject_wait"`
	// MaxConnections bounds the open client connections; more are closed
	// at accept. Default: 0 (no limit).
	MaxConnections int `koanf:"max_connections"`
	// MaxConnectionsPerAddress bounds the open connections from one
	// client address (after PROXY protocol). Default: 0 (no limit).
	MaxConnectionsPerAddress int `koanf:"max_connections_per_address"`
	// ConnectionRate bounds new connections per second (all listeners);
	// beyond it they are closed at accept. Default: 0 (no limit).
	ConnectionRate float64 `koanf:"connection_rate"`
	// ConnectionBurst is how many connections may arrive at once above
	// ConnectionRate. Default: 0 (1).
	ConnectionBurst int `koanf:"connection_burst"`
	// MaxSubscriptionsPerClient bounds a session's subscriptions; filters
	// beyond it get SUBACK 0x97 (v5) / 0x80. Default: 0 (no limit).
	MaxSubscriptionsPerClient int `koanf:"max_subscriptions_per_client"`
	// MaxTopicLength bounds topic names and filters in bytes. A longer
	// PUBLISH topic is refused like a denied one (v5 PUBACK 0x90, 3.1.1
	// acked and dropped), a longer filter gets SUBACK 0x8F / 0x80.
	// Default: 0 (the protocol's 65535).
	MaxTopicLength int `koanf:"max_topic_length"`
	// MaxTopicLevels bounds the levels of topic names and filters, with
	// the same answers as MaxTopicLength. Default: 0 (no limit).
	MaxTopicLevels int `koanf:"max_topic_levels"`
	// PublishRate bounds each client's PUBLISH packets per second: a
	// faster client's reader pauses (TCP flow control slows it); it is not
	// disconnected. Default: 0 (no limit).
	PublishRate float64 `koanf:"publish_rate"`
	// PublishBurst is how many PUBLISHes may arrive at once above
	// PublishRate. Default: 0 (1).
	PublishBurst int `koanf:"publish_burst"`
	// SlowConsumerTimeout disconnects a connected client (v5: DISCONNECT
	// 0x97) once messages for it have been dropped because its write
	// buffer or session queue was full, with none getting through, for
	// this long. 0 never disconnects. Default: 60s.
	SlowConsumerTimeout time.Duration `koanf:"slow_consumer_timeout"`
	// SysInterval is how often the $SYS topics (version, uptime, clients,
	// messages, bytes, subscriptions, retained count) are published,
	// retained. 0 disables them. Default: 10s.
	SysInterval time.Duration `koanf:"sys_interval"`
	// Store chooses where sessions, their queued messages and retained
	// messages are kept.
	Store StoreConfig `koanf:"store"`
}

// Store types, the values of StoreConfig.Type.
const (
	StoreMemory = "memory"
	StoreDisk   = "disk"
)

// StoreConfig is the broker's session store. The broker only reads Type
// and Dir to validate them; the process wiring (cmd) opens the store.
type StoreConfig struct {
	// Type is disk (a bbolt file: sessions, queued QoS 1/2 messages and
	// retained messages survive restarts and kill -9; a QoS 1/2 message
	// queued for an offline session or retained is acknowledged only
	// once written) or memory (lost on restart). Default: disk.
	Type string `koanf:"type"`
	// Dir is the directory of the disk store. Default: "" (the broker
	// directory inside ingest.data_dir).
	Dir string `koanf:"dir"`
}

// ListenerConfig is one network listener: its transport settings (name,
// type tcp/tls/ws/wss, address, TLS, WebSocket path, PROXY protocol,
// certificate identity; see broker/listener) and the broker's own.
type ListenerConfig struct {
	listener.Config `koanf:",squash"`
	// AllowAnonymous lets clients connect without a username. When false,
	// a CONNECT without a username is refused with "bad user name or
	// password". Default: false for a listener you write; the built-in
	// listener on 127.0.0.1 sets it to true.
	AllowAnonymous bool `koanf:"allow_anonymous"`
}

// DefaultConfig returns the broker defaults.
func DefaultConfig() Config {
	return Config{
		Listeners:           []ListenerConfig{{Config: listener.Config{Name: "default", Type: listener.TCP, Address: "127.0.0.1:1883"}, AllowAnonymous: true}},
		MaxPacketSize:       1 << 20,
		ReceiveMaximum:      128,
		MaxInflight:         128,
		MaxQueuedMessages:   1000,
		MaxQueuedBytes:      16 << 20,
		MaxBufferedBytes:    256 << 10,
		MaxPublisherWait:    time.Second,
		TopicAliasMaximum:   64,
		ConnectTimeout:      10 * time.Second,
		WriteTimeout:        30 * time.Second,
		ShutdownTimeout:     10 * time.Second,
		Store:               StoreConfig{Type: StoreDisk},
		SlowConsumerTimeout: time.Minute,
		SysInterval:         10 * time.Second,
	}
}

// Validate reports every problem in c, each prefixed with its key path
// relative to the broker section (e.g. "listeners[0].address: ...").
func (c Config) Validate() []error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if len(c.Listeners) == 0 {
		add("listeners", "at least one listener is required")
	}
	names := make(map[string]int, len(c.Listeners))
	for i, l := range c.Listeners {
		p := fmt.Sprintf("listeners[%d]", i)
		for _, err := range l.Config.Validate() {
			errs = append(errs, fmt.Errorf("%s.%w", p, err))
		}
		if prev, dup := names[l.Name]; dup && l.Name != "" {
			add(p+".name", "duplicate of listeners[%d].name %q", prev, l.Name)
		} else if l.Name != "" {
			names[l.Name] = i
		}
	}
	if c.MaxPacketSize < minPacketSize || c.MaxPacketSize > maxMQTTPacket {
		add("max_packet_size", "%d out of range [%d, %d]", c.MaxPacketSize, minPacketSize, maxMQTTPacket)
	}
	if c.ReceiveMaximum == 0 {
		add("receive_maximum", "must be at least 1")
	}
	if c.MaxInflight == 0 {
		add("max_inflight", "must be at least 1")
	}
	if c.MaxQueuedMessages < 0 {
		add("max_queued_messages", "must not be negative")
	}
	if c.MaxQueuedBytes < 0 {
		add("max_queued_bytes", "must not be negative")
	}
	if c.MaxBufferedBytes < 1024 {
		add("max_buffered_bytes", "must be at least 1024")
	}
	durations := []struct {
		name     string
		d        time.Duration
		positive bool
	}{
		{"max_session_expiry", c.MaxSessionExpiry, false},
		{"max_keep_alive", c.MaxKeepAlive, false},
		{"connect_timeout", c.ConnectTimeout, true},
		{"write_timeout", c.WriteTimeout, true},
		{"shutdown_timeout", c.ShutdownTimeout, true},
		{"reject_wait", c.RejectWait, false},
		{"max_publisher_wait", c.MaxPublisherWait, false},
		{"slow_consumer_timeout", c.SlowConsumerTimeout, false},
		{"sys_interval", c.SysInterval, false},
	}
	for _, d := range durations {
		switch {
		case d.d < 0:
			add(d.name, "must not be negative")
		case d.positive && d.d == 0:
			add(d.name, "must be positive")
		}
	}
	for _, l := range []struct {
		name string
		v    float64
	}{
		{"max_connections", float64(c.MaxConnections)},
		{"max_connections_per_address", float64(c.MaxConnectionsPerAddress)},
		{"connection_rate", c.ConnectionRate},
		{"connection_burst", float64(c.ConnectionBurst)},
		{"max_subscriptions_per_client", float64(c.MaxSubscriptionsPerClient)},
		{"max_topic_length", float64(c.MaxTopicLength)},
		{"max_topic_levels", float64(c.MaxTopicLevels)},
		{"publish_rate", c.PublishRate},
		{"publish_burst", float64(c.PublishBurst)},
	} {
		if l.v < 0 {
			add(l.name, "must not be negative")
		}
	}
	switch c.Store.Type {
	case StoreDisk:
	case StoreMemory:
		if c.Store.Dir != "" {
			add("store.dir", "set, but store.type is memory")
		}
	default:
		add("store.type", "unknown store %q (want disk or memory)", c.Store.Type)
	}
	if c.MaxSessionExpiry > 0 && c.MaxSessionExpiry < time.Second {
		add("max_session_expiry", "must be 0 or at least 1s")
	}
	if c.MaxKeepAlive > 0 && (c.MaxKeepAlive < time.Second || c.MaxKeepAlive > 65535*time.Second) {
		add("max_keep_alive", "must be 0 or within [1s, 65535s]")
	}
	return errs
}
