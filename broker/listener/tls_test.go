package listener

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// mtlsConfig is a tls listener asking for client certificates signed by
// clientCA.
func mtlsConfig(t *testing.T, serverCA, clientCA *testCA, auth, identity string) Config {
	t.Helper()
	tc := serverFiles(t, serverCA, "server")
	tc.ClientCAFile = filepath.Join(t.TempDir(), "clients.crt")
	writeFile(t, tc.ClientCAFile, clientCA.pem)
	tc.ClientAuth = auth
	return Config{Type: TLS, TLS: tc, IdentityFromCert: identity}
}

// tlsDial connects to l and runs the client handshake; it also writes and
// reads one byte, since a TLS 1.3 client learns that the server refused
// its certificate only when reading.
func tlsDial(t *testing.T, l *Listener, cfg *tls.Config) (*tls.Conn, error) {
	t.Helper()
	c := dial(t, l)
	tc := tls.Client(c, cfg)
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	return tc, nil
}

// roundTrip sends a byte through the server side and expects it back.
func roundTrip(t *testing.T, client net.Conn, server net.Conn) {
	t.Helper()
	go func() {
		b := make([]byte, 1)
		if _, err := io.ReadFull(server, b); err == nil {
			server.Write(b)
		}
	}()
	if _, err := client.Write([]byte{'x'}); err != nil {
		t.Fatalf("client write: %v", err)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(client, b); err != nil || b[0] != 'x' {
		t.Fatalf("client read %q: %v", b, err)
	}
}

func TestTLSServer(t *testing.T) {
	ca := newTestCA(t, "server ca")
	l := listen(t, Config{Type: TLS, TLS: serverFiles(t, ca, "server")})
	tc, err := tlsDial(t, l, &tls.Config{RootCAs: ca.pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	sc := accept(t, l)
	roundTrip(t, tc, sc)
	info := Info(sc)
	if info.Transport != TLS || info.Listener != "test" || info.TLS == nil {
		t.Fatalf("Info = %+v", info)
	}
	if info.TLS.Version != "TLS 1.3" || info.TLS.ServerName != "localhost" || info.TLS.CipherSuite == "" ||
		info.TLS.ClientCertSubject != "" || info.CertIdentity != "" {
		t.Errorf("TLS = %+v, identity %q", info.TLS, info.CertIdentity)
	}
	if info.RemoteAddr.String() != tc.LocalAddr().String() {
		t.Errorf("RemoteAddr = %s, want %s", info.RemoteAddr, tc.LocalAddr())
	}
}

func TestTLSMinVersion(t *testing.T) {
	ca := newTestCA(t, "ca")
	files := serverFiles(t, ca, "server")
	files.MinVersion = "1.3"
	l := listen(t, Config{Type: TLS, TLS: files})
	_, err := tlsDial(t, l, &tls.Config{RootCAs: ca.pool, ServerName: "localhost", MaxVersion: tls.VersionTLS12})
	if err == nil {
		t.Fatal("a TLS 1.2 client connected to a min_version 1.3 listener")
	}
	waitFor(t, "the failure to be counted", func() bool { return l.Stats().Failed["tls"] == 1 })
}

func TestMutualTLS(t *testing.T) {
	serverCA, clientCA, otherCA := newTestCA(t, "server ca"), newTestCA(t, "client ca"), newTestCA(t, "other ca")
	device := leafSpec{cn: "device-17", dns: []string{"device-17.plant.example", "d17.example"},
		emails: []string{"ops@example.com"}, client: true}
	mailOnly := leafSpec{cn: "operator", emails: []string{"op@example.com"}, client: true}
	tests := []struct {
		name     string
		auth     string
		identity string
		ca       *testCA  // issuer of the client certificate; nil: none
		spec     leafSpec //
		wantOK   bool     //
		wantID   string   //
		wantSubj string   // ClientCertSubject
	}{
		{"require cn", ClientAuthRequire, IdentityCN, clientCA, device, true, "device-17", "CN=device-17,O=Sluice test"},
		{"require san dns", ClientAuthRequire, IdentitySAN, clientCA, device, true, "device-17.plant.example", "CN=device-17,O=Sluice test"},
		{"require san email", ClientAuthRequire, IdentitySAN, clientCA, mailOnly, true, "op@example.com", "CN=operator,O=Sluice test"},
		{"require without identity", ClientAuthRequire, IdentityNone, clientCA, device, true, "", "CN=device-17,O=Sluice test"},
		{"require no cert", ClientAuthRequire, IdentityCN, nil, leafSpec{}, false, "", ""},
		{"require wrong ca", ClientAuthRequire, IdentityCN, otherCA, device, false, "", ""},
		{"request no cert", ClientAuthRequest, IdentityCN, nil, leafSpec{}, true, "", ""},
		{"request cn", ClientAuthRequest, IdentityCN, clientCA, device, true, "device-17", "CN=device-17,O=Sluice test"},
		{"request wrong ca", ClientAuthRequest, IdentityCN, otherCA, device, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := listen(t, mtlsConfig(t, serverCA, clientCA, tt.auth, tt.identity))
			cc := &tls.Config{RootCAs: serverCA.pool, ServerName: "localhost"}
			if tt.ca != nil {
				// Sent whatever CAs the server names (a Go client would
				// otherwise send nothing for a foreign CA).
				_, _, pair := tt.ca.issue(t, tt.spec)
				cc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
			}
			tc, err := tlsDial(t, l, cc)
			if !tt.wantOK {
				if err == nil {
					// TLS 1.3: the refusal arrives after the client's
					// handshake; the connection must not be usable.
					tc.Write([]byte{'x'})
					_, err = tc.Read(make([]byte, 1))
				}
				if err == nil {
					t.Fatal("connection accepted, want it refused")
				}
				waitFor(t, "the failure to be counted", func() bool { return l.Stats().Failed["tls"] == 1 })
				if l.Stats().Accepted != 0 {
					t.Error("refused connection was handed to Accept")
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			sc := accept(t, l)
			roundTrip(t, tc, sc)
			info := Info(sc)
			if info.CertIdentity != tt.wantID || info.TLS.ClientCertSubject != tt.wantSubj {
				t.Errorf("identity %q subject %q, want %q %q", info.CertIdentity, info.TLS.ClientCertSubject, tt.wantID, tt.wantSubj)
			}
		})
	}
}

// servedCN connects and returns the common name of the server's
// certificate.
func servedCN(t *testing.T, l *Listener, ca *testCA) string {
	t.Helper()
	tc, err := tlsDial(t, l, &tls.Config{RootCAs: ca.pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer tc.Close()
	return tc.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func TestCertReload(t *testing.T) {
	ca := newTestCA(t, "ca")
	files := serverFiles(t, ca, "first")
	files.CheckInterval = 20 * time.Millisecond
	l := listen(t, Config{Type: TLS, TLS: files})
	if cn := servedCN(t, l, ca); cn != "first" {
		t.Fatalf("served %q, want first", cn)
	}

	// Replace both files: the new certificate is served once the check
	// interval passed.
	next := serverFiles(t, ca, "second")
	for _, f := range [][2]string{{next.CertFile, files.CertFile}, {next.KeyFile, files.KeyFile}} {
		data, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, f[1], data)
	}
	waitFor(t, "the new certificate", func() bool { return servedCN(t, l, ca) == "second" })
	if s := l.Stats(); s.CertReloads != 1 || s.CertReloadErrors != 0 {
		t.Errorf("after reload: %+v", s)
	}

	// A broken certificate file keeps the loaded certificate, counted
	// once however many handshakes see it.
	writeFile(t, files.CertFile, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"))
	waitFor(t, "the reload error", func() bool { servedCN(t, l, ca); return l.Stats().CertReloadErrors == 1 })
	time.Sleep(3 * files.CheckInterval)
	for range 3 {
		if cn := servedCN(t, l, ca); cn != "second" {
			t.Fatalf("served %q after a bad reload, want second", cn)
		}
	}
	if s := l.Stats(); s.CertReloadErrors != 1 {
		t.Errorf("reload errors = %d, want 1", s.CertReloadErrors)
	}

	// A key that does not match the certificate is refused too.
	third := serverFiles(t, ca, "third")
	data, _ := os.ReadFile(third.CertFile)
	writeFile(t, files.CertFile, data)
	waitFor(t, "the mismatch error", func() bool { servedCN(t, l, ca); return l.Stats().CertReloadErrors == 2 })
	if cn := servedCN(t, l, ca); cn != "second" {
		t.Fatalf("served %q with a mismatched key, want second", cn)
	}
	// Then the matching key arrives.
	data, _ = os.ReadFile(third.KeyFile)
	writeFile(t, files.KeyFile, data)
	waitFor(t, "the third certificate", func() bool { return servedCN(t, l, ca) == "third" })
}

func TestClientCAReload(t *testing.T) {
	serverCA, oldCA, newCA := newTestCA(t, "server ca"), newTestCA(t, "old client ca"), newTestCA(t, "new client ca")
	cfg := mtlsConfig(t, serverCA, oldCA, ClientAuthRequire, IdentityCN)
	cfg.TLS.CheckInterval = 20 * time.Millisecond
	l := listen(t, cfg)
	_, _, pair := newCA.issue(t, leafSpec{cn: "dev", client: true})
	serveIdentity(t, l)
	connects := func() bool {
		tc, err := tlsDial(t, l, &tls.Config{RootCAs: serverCA.pool, ServerName: "localhost",
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }})
		if err != nil {
			return false
		}
		defer tc.Close()
		tc.Write([]byte{'?'})
		id, err := bufio.NewReader(tc).ReadString('\n')
		return err == nil && id == "dev\n"
	}
	if connects() {
		t.Fatal("a certificate from a CA not in client_ca_file was accepted")
	}
	writeFile(t, cfg.TLS.ClientCAFile, newCA.pem)
	waitFor(t, "the new client CA", connects)
}

func TestListenTLSErrors(t *testing.T) {
	ca := newTestCA(t, "ca")
	good := serverFiles(t, ca, "server")
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	writeFile(t, garbage, []byte("hello"))
	tests := []struct {
		name string
		tls  TLSConfig
	}{
		{"missing cert", TLSConfig{CertFile: filepath.Join(dir, "none.crt"), KeyFile: good.KeyFile}},
		{"garbage key", TLSConfig{CertFile: good.CertFile, KeyFile: garbage}},
		{"garbage client ca", TLSConfig{CertFile: good.CertFile, KeyFile: good.KeyFile, ClientCAFile: garbage, ClientAuth: ClientAuthRequire}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Listen(t.Context(), Config{Name: "x", Address: "127.0.0.1:0", Type: TLS, TLS: tt.tls}, Options{})
			if err == nil {
				l.Close()
				t.Fatal("Listen succeeded")
			}
			t.Log(err)
		})
	}
}

// serveIdentity accepts connections until l closes and answers the first
// byte each sends with its certificate identity and a newline.
func serveIdentity(t *testing.T, l *Listener) {
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { l.Close() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Read(make([]byte, 1)); err == nil {
					io.WriteString(c, Info(c).CertIdentity+"\n")
				}
			}()
		}
	}()
}
