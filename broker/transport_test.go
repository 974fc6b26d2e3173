package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluicehq/sluice/broker/auth"
	"github.com/sluicehq/sluice/broker/listener"
)

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files.
type testPKI struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	client                    tls.Certificate
}

func newTestPKI(t *testing.T, clientCN string) *testPKI {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips, KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	srvDER, srvKey := issue(2, "server", x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	srvKeyDER, _ := x509.MarshalECPrivateKey(srvKey)
	cliDER, cliKey := issue(3, clientCN, x509.ExtKeyUsageClientAuth, nil)
	pki := &testPKI{
		caFile:   write("ca.pem", "CERTIFICATE", caDER),
		certFile: write("server.pem", "CERTIFICATE", srvDER),
		keyFile:  write("server.key", "EC PRIVATE KEY", srvKeyDER),
		pool:     x509.NewCertPool(),
		client:   tls.Certificate{Certificate: [][]byte{cliDER}, PrivateKey: cliKey},
	}
	pki.pool.AddCert(ca)
	return pki
}

// pahoRoundTrip connects a paho 3.1.1 client at url, subscribes and
// publishes to itself, and returns an error on any failure.
func pahoRoundTrip(t *testing.T, url, id string, tc *tls.Config) error {
	return pahoRoundTripIdle(t, url, id, tc, 0)
}

// pahoRoundTripIdle is pahoRoundTrip with the client idle for idle after
// connecting (past the broker's idle hand-off).
func pahoRoundTripIdle(t *testing.T, url, id string, tc *tls.Config, idle time.Duration) error {
	t.Helper()
	got := make(chan string, 1)
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetAutoReconnect(false).
		SetConnectRetry(false).SetTLSConfig(tc).SetConnectTimeout(5 * time.Second)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return tok.Error()
	}
	defer c.Disconnect(100)
	time.Sleep(idle)
	if tok := c.Subscribe("t/"+id, 1, func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	if tok := c.Publish("t/"+id, 1, false, "hello"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	select {
	case p := <-got:
		if p != "hello" {
			t.Fatalf("got %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("message not received over %s", url)
	}
	return nil
}

func TestTransports(t *testing.T) {
	pki := newTestPKI(t, "dev-7")
	cons := &topicConsumer{}
	a := newTestAuth(t, []auth.ACLRule{{Permission: "allow", Topic: "t/#", Users: []string{"dev-7"}}})
	s, _ := startServer(t, func(c *Config) {
		c.Listeners = []ListenerConfig{
			{Config: listener.Config{Name: "test", Address: "127.0.0.1:0"}},
			{Config: listener.Config{Name: "tls", Type: listener.TLS, Address: "127.0.0.1:0",
				TLS: listener.TLSConfig{CertFile: pki.certFile, KeyFile: pki.keyFile}}, AllowAnonymous: true},
			{Config: listener.Config{Name: "mtls", Type: listener.TLS, Address: "127.0.0.1:0",
				IdentityFromCert: listener.IdentityCN,
				TLS: listener.TLSConfig{CertFile: pki.certFile, KeyFile: pki.keyFile,
					ClientCAFile: pki.caFile, ClientAuth: listener.ClientAuthRequire}}},
			{Config: listener.Config{Name: "ws", Type: listener.WebSocket, Address: "127.0.0.1:0"}, AllowAnonymous: true},
		}
	}, Options{Auth: a, Consumer: cons})
	addrs := s.Addrs()
	tests := []struct {
		name     string
		url      string
		tls      *tls.Config
		wantFail bool
	}{
		{"tls anonymous denied by ACL still connects", "tls://" + addrs["tls"].String(),
			&tls.Config{RootCAs: pki.pool}, false},
		{"mtls identity is the username", "tls://" + addrs["mtls"].String(),
			&tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}}, false},
		{"mtls without a certificate", "tls://" + addrs["mtls"].String(),
			&tls.Config{RootCAs: pki.pool}, true},
		{"websocket", "ws://" + addrs["ws"].String() + "/mqtt", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "mtls identity is the username" {
				if err := pahoRoundTrip(t, tc.url, "cert-client", tc.tls); err != nil {
					t.Fatalf("connect: %v", err)
				}
				return
			}
			err := connectOnly(tc.url, tc.tls)
			if (err != nil) != tc.wantFail {
				t.Fatalf("connect error %v, want failure %v", err, tc.wantFail)
			}
		})
	}
	// Only the certificate client may publish to t/#: its message reached
	// the consumer with the certificate's name as the user name.
	cons.mu.Lock()
	defer cons.mu.Unlock()
	if len(cons.topics) != 1 || cons.users[0] != "dev-7" {
		t.Fatalf("consumer saw %v users %v, want one message from dev-7", cons.topics, cons.users)
	}
}

// connectOnly connects and disconnects a paho 3.1.1 client.
func connectOnly(url string, tc *tls.Config) error {
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID("c").SetAutoReconnect(false).
		SetConnectRetry(false).SetTLSConfig(tc).SetConnectTimeout(5 * time.Second)
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return os.ErrDeadlineExceeded
	}
	if tok.Error() != nil {
		return tok.Error()
	}
	c.Disconnect(100)
	return nil
}

// TestWebSocketRoundTrip sends and receives over ws:// with paho (its
// gorilla-based WebSocket transport).
func TestWebSocketRoundTrip(t *testing.T) {
	s, _ := startServer(t, func(c *Config) {
		c.Listeners = []ListenerConfig{
			{Config: listener.Config{Name: "test", Address: "127.0.0.1:0"}, AllowAnonymous: true},
			{Config: listener.Config{Name: "ws", Type: listener.WebSocket, Address: "127.0.0.1:0",
				WebSocket: listener.WebSocketConfig{Path: "/custom"}}, AllowAnonymous: true},
		}
	}, Options{})
	if err := pahoRoundTrip(t, "ws://"+s.Addrs()["ws"].String()+"/custom", "ws-client", nil); err != nil {
		t.Fatalf("ws: %v", err)
	}
	// Idle past the broker's idle hand-off: the blocking read path keeps
	// the stream usable.
	if err := pahoRoundTripIdle(t, "ws://"+s.Addrs()["ws"].String()+"/custom", "ws-idle", nil, 1500*time.Millisecond); err != nil {
		t.Fatalf("ws after idle: %v", err)
	}
	if err := connectOnly("ws://"+s.Addrs()["ws"].String()+"/mqtt", nil); err == nil {
		t.Fatalf("connect on the wrong path succeeded")
	}
}

// x509Pool returns a pool holding the PEM certificates in pem.
func x509Pool(pem []byte) *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(pem)
	return p
}
