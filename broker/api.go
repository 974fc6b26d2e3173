package broker

// This file is the broker's contract with the rest of Sluice (cmd wiring and
// the ingest pipeline). Bodies are placeholders until the broker core lands.

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

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
	// TopicAliasMaximum is the number of inbound topic aliases a v5 client
	// may use. Default: 64.
	TopicAliasMaximum uint16 `koanf:"topic_alias_maximum"`
	// MaxSessionExpiry caps the session expiry interval a client may ask
	// for. Default: 0 (no cap).
	MaxSessionExpiry time.Duration `koanf:"max_session_expiry"`
	// ConnectTimeout is how long a new connection has to send CONNECT.
	// Default: 10s.
	ConnectTimeout time.Duration `koanf:"connect_timeout"`
	// RejectWait is how long the broker waits for the consumer to accept a
	// QoS 1/2 message before rejecting it with 0x97 (v5) or disconnecting
	// (3.1.1). Default: 0 (wait indefinitely; the consumer decides).
	RejectWait time.Duration `koanf:"reject_wait"`
}

// ListenerConfig is one network listener.
type ListenerConfig struct {
	// Name identifies the listener in logs and metrics. Required.
	Name string `koanf:"name"`
	// Address is host:port to bind. Required.
	Address string `koanf:"address"`
	// AllowAnonymous lets clients connect without credentials. Default: true.
	AllowAnonymous bool `koanf:"allow_anonymous"`
}

// DefaultConfig returns the broker defaults.
func DefaultConfig() Config {
	return Config{
		Listeners:         []ListenerConfig{{Name: "default", Address: "127.0.0.1:1883", AllowAnonymous: true}},
		MaxPacketSize:     1 << 20,
		ReceiveMaximum:    128,
		MaxInflight:       128,
		MaxQueuedMessages: 1000,
		MaxQueuedBytes:    16 << 20,
		TopicAliasMaximum: 64,
		ConnectTimeout:    10 * time.Second,
	}
}

// Validate reports every problem in c, each prefixed with its key path
// relative to the broker section (e.g. "listeners[0].address: ...").
func (c Config) Validate() []error { panic("unimplemented") }

// Message is an accepted PUBLISH as handed to the Consumer. It is immutable
// once handed over and may be retained by the consumer.
type Message struct {
	Topic      string
	Payload    []byte
	QoS        byte
	Retain     bool
	ClientID   string
	Username   string
	Version    byte // protocol version of the publishing client
	ReceivedAt time.Time

	// v5 properties passed through (zero values when absent).
	PayloadFormat   byte
	MessageExpiry   uint32 // seconds; 0 = none
	ContentType     string
	ResponseTopic   string
	CorrelationData []byte
	UserProperties  []UserProperty
}

// UserProperty is a v5 user property.
type UserProperty struct{ Name, Value string }

// Consumer receives every PUBLISH the broker accepts from a client (the
// ingest seam). Deliver is called from the connection's goroutine in
// arrival order. It must call ack exactly once, possibly later and from
// another goroutine: ack(nil) means the message is safe (the broker then
// routes it to subscribers and, for QoS 1/2, sends PUBACK/PUBREC in
// arrival order); ack(&RejectError{...}) makes the broker refuse it (v5:
// PUBACK/PUBREC with that reason code; 3.1.1: no ack, disconnect).
// Deliver may block to push back on the publisher.
type Consumer interface {
	Deliver(ctx context.Context, m *Message, ack func(error))
}

// RejectError is how a Consumer refuses a message.
type RejectError struct {
	Code   byte   // v5 reason code, e.g. 0x97 quota exceeded, 0x80
	Reason string // sent as the v5 reason string
}

func (e *RejectError) Error() string { return "message rejected: " + e.Reason }

// Options carries a Server's collaborators.
type Options struct {
	Logger     *slog.Logger          // default: slog.New(discard)
	Registerer prometheus.Registerer // default: none (metrics not exported)
	Consumer   Consumer              // default: accepts every message at once
}

// Server is the embedded MQTT broker.
type Server struct{}

// New validates cfg and builds a Server. It does no I/O.
func New(cfg Config, opts Options) (*Server, error) { panic("unimplemented") }

// Listen binds every configured listener. After it returns, Addrs reports
// the bound addresses (useful with port 0).
func (s *Server) Listen() error { panic("unimplemented") }

// Addrs returns the bound listener addresses by listener name.
func (s *Server) Addrs() map[string]net.Addr { panic("unimplemented") }

// Serve accepts connections until ctx is cancelled, then shuts down:
// stops accepting, sends DISCONNECT 0x8B to v5 clients, waits for pending
// acks up to a deadline and closes every connection. Listen must be called
// first.
func (s *Server) Serve(ctx context.Context) error { panic("unimplemented") }

// Publish injects a message as if published by a client (used by the
// republish sink and downstream commands). It is routed to subscribers
// without passing through the Consumer.
func (s *Server) Publish(m *Message) error { panic("unimplemented") }
