package listener

import (
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	got := Config{Name: "ws", Type: WebSocketTLS, Address: ":0"}.WithDefaults()
	want := Config{
		Name: "ws", Type: WebSocketTLS, Address: ":0",
		TLS:              TLSConfig{ClientAuth: ClientAuthNone, MinVersion: "1.2", CheckInterval: 2 * time.Second},
		WebSocket:        WebSocketConfig{Path: "/mqtt"},
		IdentityFromCert: IdentityNone,
		HandshakeTimeout: 10 * time.Second,
		MaxHandshakes:    1024,
		AcceptQueue:      128,
	}
	if got != want {
		t.Errorf("WithDefaults:\n got %+v\nwant %+v", got, want)
	}
	if got := (Config{}).WithDefaults(); got.Type != TCP || got.TLS != (TLSConfig{}) || got.WebSocket.Path != "" {
		t.Errorf("tcp defaults set TLS or WebSocket fields: %+v", got)
	}
}

func TestConfigValidate(t *testing.T) {
	tlsOK := TLSConfig{CertFile: "s.crt", KeyFile: "s.key"}
	mtls := TLSConfig{CertFile: "s.crt", KeyFile: "s.key", ClientCAFile: "ca.crt", ClientAuth: ClientAuthRequire}
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings, one per expected error, in order
	}{
		{"tcp minimal", Config{Name: "a", Address: "127.0.0.1:0"}, nil},
		{"tcp with proxy", Config{Name: "a", Address: ":1883", ProxyProtocol: true}, nil},
		{"tls", Config{Name: "a", Type: TLS, Address: ":8883", TLS: tlsOK}, nil},
		{"mtls with cn identity", Config{Name: "a", Type: TLS, Address: ":8883", TLS: mtls, IdentityFromCert: IdentityCN}, nil},
		{"ws", Config{Name: "a", Type: WebSocket, Address: ":80", WebSocket: WebSocketConfig{Path: "/x"}}, nil},
		{"wss request san", Config{Name: "a", Type: WebSocketTLS, Address: ":443", IdentityFromCert: IdentitySAN,
			TLS: TLSConfig{CertFile: "c", KeyFile: "k", ClientCAFile: "ca", ClientAuth: ClientAuthRequest, MinVersion: "1.3"}}, nil},
		{"everything missing", Config{}, []string{"name: missing", "address: missing"}},
		{"bad address", Config{Name: "a", Address: "localhost"}, []string{"address: missing port"}},
		{"bad port", Config{Name: "a", Address: ":99999"}, []string{`address: invalid port "99999"`}},
		{"unknown type", Config{Name: "a", Address: ":1", Type: "quic"}, []string{`type: unknown transport "quic"`}},
		{"tls files missing", Config{Name: "a", Address: ":1", Type: TLS},
			[]string{"tls.cert_file: missing", "tls.key_file: missing"}},
		{"tls on tcp", Config{Name: "a", Address: ":1", TLS: tlsOK}, []string{`tls: set, but type "tcp"`}},
		{"websocket on tls", Config{Name: "a", Address: ":1", Type: TLS, TLS: tlsOK, WebSocket: WebSocketConfig{Path: "/m"}},
			[]string{`websocket: set, but type "tls"`}},
		{"relative ws path", Config{Name: "a", Address: ":1", Type: WebSocket, WebSocket: WebSocketConfig{Path: "mqtt"}},
			[]string{`websocket.path: "mqtt" must start with /`}},
		{"client auth without CA", Config{Name: "a", Address: ":1", Type: TLS,
			TLS: TLSConfig{CertFile: "c", KeyFile: "k", ClientAuth: ClientAuthRequire}},
			[]string{"tls.client_ca_file: missing (needed by client_auth require)"}},
		{"CA without client auth", Config{Name: "a", Address: ":1", Type: TLS,
			TLS: TLSConfig{CertFile: "c", KeyFile: "k", ClientCAFile: "ca"}},
			[]string{"tls.client_ca_file: set, but tls.client_auth is none"}},
		{"bad client auth and version", Config{Name: "a", Address: ":1", Type: TLS,
			TLS: TLSConfig{CertFile: "c", KeyFile: "k", ClientAuth: "maybe", MinVersion: "1.0"}},
			[]string{`tls.client_auth: unknown policy "maybe"`, `tls.min_version: unknown version "1.0"`}},
		{"identity without client auth", Config{Name: "a", Address: ":1", Type: TLS, TLS: tlsOK, IdentityFromCert: IdentityCN},
			[]string{"identity_from_cert: needs tls.client_auth request or require"}},
		{"identity on tcp", Config{Name: "a", Address: ":1", IdentityFromCert: IdentitySAN},
			[]string{"identity_from_cert: needs a tls or wss listener"}},
		{"unknown identity", Config{Name: "a", Address: ":1", IdentityFromCert: "uid"},
			[]string{`identity_from_cert: unknown source "uid"`}},
		{"negative limits", Config{Name: "a", Address: ":1", HandshakeTimeout: -1, MaxHandshakes: -1, AcceptQueue: -1},
			[]string{"handshake_timeout: must not be negative", "max_handshakes: must not be negative", "accept_queue: must not be negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.cfg.Validate()
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors %v, want %d %q", len(errs), errs, len(tt.want), tt.want)
			}
			for i, err := range errs {
				if !strings.Contains(err.Error(), tt.want[i]) {
					t.Errorf("error %d = %q, want it to contain %q", i, err, tt.want[i])
				}
			}
		})
	}
}
