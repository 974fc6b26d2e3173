package webhook

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		paths []string // key paths of the expected errors, in order
	}{
		{name: "minimal", cfg: Config{URL: "https://example.com/in"}},
		{name: "defaults are valid with a url", cfg: func() Config { c := DefaultConfig(); c.URL = "http://h/"; return c }()},
		{name: "no url", cfg: Config{}, paths: []string{"url"}},
		{name: "not http", cfg: Config{URL: "ftp://h/x"}, paths: []string{"url"}},
		{name: "no host", cfg: Config{URL: "http:///x"}, paths: []string{"url"}},
		{name: "placeholder in host", cfg: Config{URL: "http://{topic}.example.com/"}, paths: []string{"url"}},
		{name: "fragment", cfg: Config{URL: "http://h/#x"}, paths: []string{"url"}},
		{name: "everything wrong", cfg: Config{
			URL: "http://h/", Method: "GET", Body: "xml", Timeout: -time.Second, MaxConcurrency: -1,
			Headers: map[string]string{"Bad Name": "v", "X-Ok": "${unterminated"}, Secret: "${}",
			TLS: TLSConfig{CertFile: "c.pem"},
		}, paths: []string{"method", "body", "timeout", "max_concurrency", "headers.Bad Name", "headers.X-Ok", "secret", "tls.cert_file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.cfg.Validate()
			if len(errs) != len(tt.paths) {
				t.Fatalf("Validate() = %v, want errors at %v", errs, tt.paths)
			}
			for i, err := range errs {
				if !strings.HasPrefix(err.Error(), tt.paths[i]+": ") {
					t.Fatalf("error %d = %q, want it at %s", i, err, tt.paths[i])
				}
			}
		})
	}
}

func TestZeroMeansDefault(t *testing.T) {
	got := Config{URL: "http://h/"}.withDefaults()
	want := DefaultConfig()
	want.URL = "http://h/"
	if got.Method != want.Method || got.Body != want.Body || got.Timeout != want.Timeout || got.MaxConcurrency != want.MaxConcurrency {
		t.Fatalf("withDefaults() = %+v, want %+v", got, want)
	}
}
