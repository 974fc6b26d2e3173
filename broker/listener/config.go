package listener

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Transport names, the values of Config.Type and ConnInfo.Transport.
const (
	TCP          = "tcp"
	TLS          = "tls"
	WebSocket    = "ws"
	WebSocketTLS = "wss"
)

// Client certificate policies, the values of TLSConfig.ClientAuth.
const (
	ClientAuthNone    = "none"
	ClientAuthRequest = "request"
	ClientAuthRequire = "require"
)

// Certificate identity sources, the values of Config.IdentityFromCert.
const (
	IdentityNone = "none"
	IdentityCN   = "cn"
	IdentitySAN  = "san"
)

// Defaults applied by Config.WithDefaults to zero fields.
const (
	DefaultWebSocketPath     = "/mqtt"
	DefaultHandshakeTimeout  = 10 * time.Second
	DefaultMaxHandshakes     = 1024
	DefaultAcceptQueue       = 128
	DefaultMinTLSVersion     = "1.2"
	DefaultCertCheckInterval = 2 * time.Second
)

// Config configures one listener. Zero values mean the documented default
// (a listener is an element of a list, so a config file replaces the whole
// element and cannot inherit defaults field by field).
type Config struct {
	// Name identifies the listener in logs, metrics and ConnInfo. Required.
	Name string `koanf:"name"`
	// Type is the transport: tcp, tls, ws (WebSocket) or wss (WebSocket
	// over TLS). Default: tcp.
	Type string `koanf:"type"`
	// Address is host:port to bind. Required.
	Address string `koanf:"address"`
	// TLS configures the certificate and client authentication of tls and
	// wss listeners. Required for them, not allowed for tcp and ws.
	TLS TLSConfig `koanf:"tls"`
	// WebSocket configures ws and wss listeners.
	WebSocket WebSocketConfig `koanf:"websocket"`
	// ProxyProtocol expects every connection to start with a PROXY
	// protocol v1 or v2 header (sent by a load balancer); the address it
	// carries becomes the connection's remote address. A connection
	// without a valid header is closed. Default: false.
	ProxyProtocol bool `koanf:"proxy_protocol"`
	// IdentityFromCert exposes a verified client certificate's identity
	// as ConnInfo.CertIdentity: none, cn (subject common name) or san
	// (first DNS name, else first email address). Needs tls or wss with
	// tls.client_auth request or require. Default: none.
	IdentityFromCert string `koanf:"identity_from_cert"`
	// HandshakeTimeout bounds everything before a connection is handed to
	// Accept: PROXY header, TLS handshake and WebSocket upgrade. A client
	// still handshaking at the deadline is closed and counted.
	// Default: 10s.
	HandshakeTimeout time.Duration `koanf:"handshake_timeout"`
	// MaxHandshakes bounds the connections handshaking at once; beyond
	// it the listener stops accepting (new connections wait in the
	// kernel's backlog) until one finishes. Default: 1024.
	MaxHandshakes int `koanf:"max_handshakes"`
	// AcceptQueue is the number of ready connections waiting for Accept.
	// When it is full, finished handshakes wait for room. Default: 128.
	AcceptQueue int `koanf:"accept_queue"`
}

// TLSConfig is the TLS section of a tls or wss listener.
type TLSConfig struct {
	// CertFile is the PEM certificate chain (leaf first). Required.
	// Reloaded when it changes.
	CertFile string `koanf:"cert_file"`
	// KeyFile is the PEM private key of CertFile. Required. Reloaded when
	// it changes.
	KeyFile string `koanf:"key_file"`
	// ClientCAFile is the PEM bundle of CAs that sign client certificates.
	// Required when ClientAuth is request or require. Reloaded when it
	// changes.
	ClientCAFile string `koanf:"client_ca_file"`
	// ClientAuth asks for client certificates: none, request (verified
	// when presented) or require (verified, connection refused without
	// one). Default: none.
	ClientAuth string `koanf:"client_auth"`
	// MinVersion is the lowest TLS version accepted: 1.2 or 1.3.
	// Default: 1.2.
	MinVersion string `koanf:"min_version"`
	// CheckInterval is how often, at most, a handshake checks the files'
	// modification times for a reload. Default: 2s.
	CheckInterval time.Duration `koanf:"check_interval"`
}

// WebSocketConfig is the WebSocket section of a ws or wss listener.
type WebSocketConfig struct {
	// Path is the HTTP path of the upgrade request; other paths get 404.
	// Default: /mqtt.
	Path string `koanf:"path"`
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Type == "" {
		c.Type = TCP
	}
	if c.IdentityFromCert == "" {
		c.IdentityFromCert = IdentityNone
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.MaxHandshakes == 0 {
		c.MaxHandshakes = DefaultMaxHandshakes
	}
	if c.AcceptQueue == 0 {
		c.AcceptQueue = DefaultAcceptQueue
	}
	if c.isWebSocket() && c.WebSocket.Path == "" {
		c.WebSocket.Path = DefaultWebSocketPath
	}
	if c.isTLS() {
		if c.TLS.ClientAuth == "" {
			c.TLS.ClientAuth = ClientAuthNone
		}
		if c.TLS.MinVersion == "" {
			c.TLS.MinVersion = DefaultMinTLSVersion
		}
		if c.TLS.CheckInterval == 0 {
			c.TLS.CheckInterval = DefaultCertCheckInterval
		}
	}
	return c
}

func (c Config) isTLS() bool       { return c.Type == TLS || c.Type == WebSocketTLS }
func (c Config) isWebSocket() bool { return c.Type == WebSocket || c.Type == WebSocketTLS }

// Validate reports every problem in c (after defaults), each prefixed with
// its key path relative to the listener, e.g. "tls.cert_file: missing".
// It does no I/O: unreadable files are reported by Listen.
func (c Config) Validate() []error {
	c = c.WithDefaults()
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if c.Name == "" {
		add("name", "missing")
	}
	if err := validAddress(c.Address); err != nil {
		add("address", "%v", err)
	}
	switch c.Type {
	case TCP, TLS, WebSocket, WebSocketTLS:
	default:
		add("type", "unknown transport %q (want tcp, tls, ws or wss)", c.Type)
	}
	if c.isTLS() {
		validateTLS(c.TLS, add)
	} else if c.TLS != (TLSConfig{}) {
		add("tls", "set, but type %q does not use TLS", c.Type)
	}
	if c.isWebSocket() {
		if !strings.HasPrefix(c.WebSocket.Path, "/") {
			add("websocket.path", "%q must start with /", c.WebSocket.Path)
		}
	} else if c.WebSocket != (WebSocketConfig{}) {
		add("websocket", "set, but type %q is not ws or wss", c.Type)
	}
	switch c.IdentityFromCert {
	case IdentityNone:
	case IdentityCN, IdentitySAN:
		if c.isTLS() && c.TLS.ClientAuth == ClientAuthNone {
			add("identity_from_cert", "needs tls.client_auth request or require")
		} else if c.Type == TCP || c.Type == WebSocket {
			add("identity_from_cert", "needs a tls or wss listener")
		}
	default:
		add("identity_from_cert", "unknown source %q (want none, cn or san)", c.IdentityFromCert)
	}
	if c.HandshakeTimeout < 0 {
		add("handshake_timeout", "must not be negative")
	}
	if c.MaxHandshakes < 0 {
		add("max_handshakes", "must not be negative")
	}
	if c.AcceptQueue < 0 {
		add("accept_queue", "must not be negative")
	}
	return errs
}

func validateTLS(t TLSConfig, add func(path, format string, args ...any)) {
	if t.CertFile == "" {
		add("tls.cert_file", "missing")
	}
	if t.KeyFile == "" {
		add("tls.key_file", "missing")
	}
	switch t.ClientAuth {
	case ClientAuthNone:
		if t.ClientCAFile != "" {
			add("tls.client_ca_file", "set, but tls.client_auth is none (want request or require)")
		}
	case ClientAuthRequest, ClientAuthRequire:
		if t.ClientCAFile == "" {
			add("tls.client_ca_file", "missing (needed by client_auth %s)", t.ClientAuth)
		}
	default:
		add("tls.client_auth", "unknown policy %q (want none, request or require)", t.ClientAuth)
	}
	if _, ok := tlsVersions[t.MinVersion]; !ok {
		add("tls.min_version", "unknown version %q (want 1.2 or 1.3)", t.MinVersion)
	}
	if t.CheckInterval < 0 {
		add("tls.check_interval", "must not be negative")
	}
}

// validAddress checks a host:port listener address.
func validAddress(addr string) error {
	if addr == "" {
		return errors.New("missing")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		var ae *net.AddrError
		if errors.As(err, &ae) {
			return errors.New(strings.TrimSuffix(ae.Err, " in address"))
		}
		return err
	}
	if port == "" {
		return errors.New("missing port")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("invalid port %q", port)
	}
	return nil
}
