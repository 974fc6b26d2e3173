package webhook

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/sluicehq/sluice/sinks/internal/secret"
	"github.com/sluicehq/sluice/sinks/internal/tlsfiles"
)

// Body modes.
const (
	// BodyObject sends one request per record, its body one JSON object.
	BodyObject = "object"
	// BodyArray sends one request per batch (per distinct URL), its body a
	// JSON array of objects.
	BodyArray = "array"
	// BodyNDJSON sends one request per batch (per distinct URL), its body
	// one JSON object a line.
	BodyNDJSON = "ndjson"
)

// Config configures a webhook sink. A zero field means its default, so a
// Config decoded over a zero value (as a map entry is) is complete.
type Config struct {
	// URL is the http or https URL records are sent to. It may hold a
	// {topic} placeholder in its path or query, replaced by the record's
	// topic (escaped); without one, a record's topic, when set, is
	// appended to the path. Required. Default: "".
	URL string `koanf:"url"`
	// Method is the HTTP method: POST, PUT or PATCH. Default: POST.
	Method string `koanf:"method"`
	// Headers are added to every request. Values may reference
	// environment variables as ${NAME} (resolved when the sink is built),
	// so secrets stay out of the file. Default: none.
	Headers map[string]string `koanf:"headers"`
	// Body is object (one request per record), array (one JSON array per
	// batch) or ndjson (one JSON object a line per batch). Default: array.
	Body string `koanf:"body"`
	// Timeout bounds one request, from connecting to reading the answer.
	// Default: 10s.
	Timeout time.Duration `koanf:"timeout"`
	// MaxConcurrency bounds the requests in flight at once, across all
	// writes of the sink. Default: 8.
	MaxConcurrency int `koanf:"max_concurrency"`
	// Secret signs every request when set: an X-Sluice-Signature header
	// holds t=<unix time>,v1=<hex HMAC-SHA256 of "<unix time>.<body>">
	// and X-Sluice-Timestamp the same time (see sinks/README.md for
	// verifying it). ${NAME} is replaced by environment variable NAME.
	// Default: "" (unsigned).
	Secret string `koanf:"secret"`
	// TLS configures https connections.
	TLS TLSConfig `koanf:"tls"`
}

// TLSConfig configures TLS for https URLs.
type TLSConfig struct {
	// CAFile is a PEM file of CA certificates trusted in addition to the
	// system's. Default: "" (system roots only).
	CAFile string `koanf:"ca_file"`
	// CertFile is the PEM client certificate (set with key_file).
	// Default: "" (no client certificate).
	CertFile string `koanf:"cert_file"`
	// KeyFile is the PEM key of cert_file. Default: "".
	KeyFile string `koanf:"key_file"`
	// InsecureSkipVerify accepts any server certificate. For tests only.
	// Default: false.
	InsecureSkipVerify bool `koanf:"insecure_skip_verify"`
}

// DefaultConfig returns the defaults (URL still has to be set).
func DefaultConfig() Config {
	return Config{
		Method:         http.MethodPost,
		Body:           BodyArray,
		Timeout:        10 * time.Second,
		MaxConcurrency: 8,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Method == "" {
		c.Method = d.Method
	}
	if c.Body == "" {
		c.Body = d.Body
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.MaxConcurrency == 0 {
		c.MaxConcurrency = d.MaxConcurrency
	}
	return c
}

// Validate reports every problem in c, each with its key path relative
// to the sink's section.
func (c Config) Validate() []error {
	c = c.withDefaults()
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if c.URL == "" {
		bad("url", "is required")
	} else if _, err := compileURL(c.URL); err != nil {
		bad("url", "%v", err)
	}
	if !slices.Contains([]string{http.MethodPost, http.MethodPut, http.MethodPatch}, c.Method) {
		bad("method", "must be POST, PUT or PATCH, not %q", c.Method)
	}
	if !slices.Contains([]string{BodyObject, BodyArray, BodyNDJSON}, c.Body) {
		bad("body", "must be object, array or ndjson, not %q", c.Body)
	}
	if c.Timeout < 0 {
		bad("timeout", "must not be negative")
	}
	if c.MaxConcurrency < 1 {
		bad("max_concurrency", "must be at least 1")
	}
	for _, name := range slices.Sorted(maps.Keys(c.Headers)) {
		if !validHeaderName(name) {
			bad("headers."+name, "invalid header name")
		}
		if err := secret.Check(c.Headers[name]); err != nil {
			bad("headers."+name, "%v", err)
		}
	}
	if err := secret.Check(c.Secret); err != nil {
		bad("secret", "%v", err)
	}
	errs = append(errs, c.TLS.files().Validate("tls.")...)
	return errs
}

func (t TLSConfig) files() tlsfiles.Files {
	return tlsfiles.Files{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, InsecureSkipVerify: t.InsecureSkipVerify}
}

// validHeaderName reports whether n is an HTTP token (RFC 9110).
func validHeaderName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c < 0x80 && c > 0x20 && !isSeparator(c):
		default:
			return false
		}
	}
	return true
}

func isSeparator(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '@', ',', ';', ':', '\\', '"', '/', '[', ']', '?', '=', '{', '}', 0x7f:
		return true
	}
	return false
}
