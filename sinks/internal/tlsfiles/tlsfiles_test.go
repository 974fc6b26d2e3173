package tlsfiles

import (
	"crypto/tls"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/sinks/internal/testpki"
)

func TestLoad(t *testing.T) {
	pki := testpki.New(t)
	notPEM := filepath.Join(t.TempDir(), "junk.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		files     Files
		wantErr   bool
		handshake bool // a handshake with the test server (client cert required) succeeds
	}{
		{name: "ca and client cert", files: Files{CAFile: pki.CAFile, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}, handshake: true},
		{name: "no client cert", files: Files{CAFile: pki.CAFile}},
		{name: "unknown CA", files: Files{CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}},
		{name: "insecure skip verify", files: Files{InsecureSkipVerify: true, CertFile: pki.ClientCertFile, KeyFile: pki.ClientKeyFile}, handshake: true},
		{name: "missing ca file", files: Files{CAFile: filepath.Join(t.TempDir(), "none.pem")}, wantErr: true},
		{name: "ca file without PEM", files: Files{CAFile: notPEM}, wantErr: true},
		{name: "key does not match", files: Files{CertFile: pki.ClientCertFile, KeyFile: pki.ServerKeyFile}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.files.Load()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Load() error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got := handshake(t, pki, c); got != tt.handshake {
				t.Fatalf("handshake succeeded = %v, want %v", got, tt.handshake)
			}
		})
	}
}

func handshake(t *testing.T, pki *testpki.PKI, c *tls.Config) bool {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", pki.ServerConfig(true))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.(*tls.Conn).Handshake()
		_, _ = conn.Write([]byte("ok"))
	}()
	defer func() { <-done }()
	conn, err := tls.Dial("tcp", ln.Addr().String(), c)
	if err != nil {
		return false
	}
	defer conn.Close()
	// With TLS 1.3 a rejected client certificate surfaces on first read.
	_, err = io.ReadFull(conn, make([]byte, 2))
	return err == nil
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		files Files
		want  int
	}{
		{name: "empty", files: Files{}},
		{name: "both", files: Files{CertFile: "c", KeyFile: "k"}},
		{name: "cert only", files: Files{CertFile: "c"}, want: 1},
		{name: "key only", files: Files{KeyFile: "k"}, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.files.Validate("tls."); len(got) != tt.want {
				t.Fatalf("Validate() = %v, want %d errors", got, tt.want)
			}
		})
	}
}
