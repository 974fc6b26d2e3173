package listener

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// tlsVersions maps TLSConfig.MinVersion to crypto/tls constants.
var tlsVersions = map[string]uint16{"1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}

var clientAuthTypes = map[string]tls.ClientAuthType{
	ClientAuthNone: tls.NoClientCert,
	// request verifies a presented certificate: an identity is only ever
	// taken from a certificate that chains to client_ca_file.
	ClientAuthRequest: tls.VerifyClientCertIfGiven,
	ClientAuthRequire: tls.RequireAndVerifyClientCert,
}

// fileStamp identifies one version of a file cheaply.
type fileStamp struct {
	mod  time.Time
	size int64
}

// certStore holds the TLS configuration built from the certificate files
// and rebuilds it when they change. Handshakes read it through
// GetConfigForClient; at most once per CheckInterval one of them stats the
// files (no goroutine, no watcher). A set of files that fails to load is
// logged once and the previous configuration stays in use.
type certStore struct {
	cfg   TLSConfig
	log   *slog.Logger
	stats *counters

	cur       atomic.Pointer[tls.Config]
	nextCheck atomic.Int64 // unix nanos of the next allowed stat

	mu     sync.Mutex // one reload at a time; guards the fields below
	loaded [3]fileStamp
	failed [3]fileStamp // last stamps that failed to load: not retried
}

// newCertStore loads the files once; an error here fails Listen.
func newCertStore(cfg TLSConfig, log *slog.Logger, st *counters) (*certStore, error) {
	s := &certStore{cfg: cfg, log: log, stats: st}
	stamps, err := s.stamps()
	if err != nil {
		return nil, err
	}
	c, err := s.build()
	if err != nil {
		return nil, err
	}
	s.cur.Store(c)
	s.loaded = stamps
	s.nextCheck.Store(time.Now().Add(cfg.CheckInterval).UnixNano())
	return s, nil
}

// serverConfig is the tls.Config handed to tls.Server: every handshake
// asks the store for the current configuration.
func (s *certStore) serverConfig() *tls.Config {
	return &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			s.maybeReload()
			return s.cur.Load(), nil
		},
	}
}

// maybeReload stats the files when CheckInterval has passed and reloads
// them when they changed. Concurrent handshakes do not wait: one checks,
// the others use the current configuration.
func (s *certStore) maybeReload() {
	now := time.Now().UnixNano()
	next := s.nextCheck.Load()
	if now < next || !s.nextCheck.CompareAndSwap(next, now+int64(s.cfg.CheckInterval)) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	stamps, err := s.stamps()
	if err != nil {
		if stamps != s.failed {
			s.failed = stamps
			s.stats.certReloadErrors.Add(1)
			s.log.Error("checking certificate files, keeping the loaded certificate", "err", err)
		}
		return
	}
	if stamps == s.loaded || stamps == s.failed {
		return
	}
	c, err := s.build()
	if err != nil {
		s.failed = stamps
		s.stats.certReloadErrors.Add(1)
		s.log.Error("reloading certificate, keeping the loaded one", "err", err)
		return
	}
	s.cur.Store(c)
	s.loaded = stamps
	s.stats.certReloads.Add(1)
	s.log.Info("reloaded certificate", "cert_file", s.cfg.CertFile, "not_after", leafNotAfter(c))
}

// stamps stats the certificate, key and CA files.
func (s *certStore) stamps() ([3]fileStamp, error) {
	var st [3]fileStamp
	var errs []error
	for i, name := range [3]string{s.cfg.CertFile, s.cfg.KeyFile, s.cfg.ClientCAFile} {
		if name == "" {
			continue
		}
		fi, err := os.Stat(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		st[i] = fileStamp{mod: fi.ModTime(), size: fi.Size()}
	}
	return st, errors.Join(errs...)
}

// build loads the files into a new tls.Config.
func (s *certStore) build() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(s.cfg.CertFile, s.cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("loading tls.cert_file %s and tls.key_file %s: %w", s.cfg.CertFile, s.cfg.KeyFile, err)
	}
	c := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tlsVersions[s.cfg.MinVersion],
		ClientAuth:   clientAuthTypes[s.cfg.ClientAuth],
	}
	if s.cfg.ClientCAFile != "" {
		pem, err := os.ReadFile(s.cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("reading tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("reading tls.client_ca_file %s: no PEM certificate found", s.cfg.ClientCAFile)
		}
		c.ClientCAs = pool
	}
	return c, nil
}

// leafNotAfter is the expiry of c's certificate, for logs.
func leafNotAfter(c *tls.Config) time.Time {
	if len(c.Certificates) == 0 || c.Certificates[0].Leaf == nil {
		return time.Time{}
	}
	return c.Certificates[0].Leaf.NotAfter
}
