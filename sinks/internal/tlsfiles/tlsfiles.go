// Package tlsfiles builds a *tls.Config from the PEM files and options a
// sink's config names, so every sink reads its TLS settings the same way.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Config is the `tls` section of a sink that connects to servers
// (Kafka brokers, ClickHouse servers).
type Config struct {
	// Enabled turns TLS on. Default: false.
	Enabled bool `koanf:"enabled"`
	// CAFile is a PEM file of CA certificates trusted in addition to the
	// system's. Default: "" (system roots only).
	CAFile string `koanf:"ca_file"`
	// CertFile is the PEM client certificate (set with key_file).
	// Default: "" (no client certificate).
	CertFile string `koanf:"cert_file"`
	// KeyFile is the PEM key of cert_file. Default: "".
	KeyFile string `koanf:"key_file"`
	// ServerName overrides the name verified in the servers'
	// certificates. Default: "" (the host of each address).
	ServerName string `koanf:"server_name"`
	// InsecureSkipVerify accepts any server certificate. For tests only.
	// Default: false.
	InsecureSkipVerify bool `koanf:"insecure_skip_verify"`
}

// Files returns the files and options c names.
func (c Config) Files() Files {
	return Files{CAFile: c.CAFile, CertFile: c.CertFile, KeyFile: c.KeyFile, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
}

// Files are the TLS settings of a sink's config.
type Files struct {
	CAFile             string
	CertFile           string
	KeyFile            string
	ServerName         string
	InsecureSkipVerify bool
}

// Validate reports inconsistent settings, with key paths relative to the
// TLS section (prefix is prepended, e.g. "tls.").
func (f Files) Validate(prefix string) []error {
	var errs []error
	if (f.CertFile == "") != (f.KeyFile == "") {
		errs = append(errs, fmt.Errorf("%scert_file: cert_file and key_file must be set together", prefix))
	}
	return errs
}

// Load reads the files and returns the client TLS configuration: the
// system roots plus CAFile when set, the client certificate when set.
func (f Files) Load() (*tls.Config, error) {
	c := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         f.ServerName,
		InsecureSkipVerify: f.InsecureSkipVerify, //nolint:gosec // an explicit, documented opt-in
	}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("reading ca_file %s: %w", f.CAFile, errors.New("no PEM certificate found"))
		}
		c.RootCAs = pool
	}
	if f.CertFile != "" || f.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading cert_file and key_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
