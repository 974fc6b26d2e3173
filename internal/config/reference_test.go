package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// refConfig documents the test sections.
type refConfig struct {
	// Log configures the test log.
	Log testLog `koanf:"log"`
	// Broker is the test broker.
	Broker testBroker `koanf:"broker"`
}

func writeReference(t *testing.T, cfg *testConfig) string {
	t.Helper()
	r := &Reference{
		Header: "Test reference.\nSecond line.",
		Root:   refConfig{},
		SourceDir: func(string) (string, error) {
			return os.Getwd()
		},
	}
	var b bytes.Buffer
	if err := r.Write(&b, []Section{{Name: "log", Value: &cfg.Log}, {Name: "broker", Value: &cfg.Broker}}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestReferenceRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *testConfig)
	}{
		{"defaults", func(*testConfig) {}},
		{"collections and odd values", func(c *testConfig) {
			c.Broker.Tags = map[string]string{"b": "two words", "a": "yes", "c": "line\nbreak"}
			c.Broker.Topics = []string{"a/#", "#", ""}
			c.Broker.Ratio = 0.25
			c.Broker.MaxPacketSize = 3 << 20
			c.Broker.MaxQueuedBytes = 1000
			c.Broker.ConnectTimeout = 90 * time.Second
			c.Broker.Listeners = append(c.Broker.Listeners, testListener{Name: "tls", Address: "[::1]:8883"})
		}},
		{"empty list of structs", func(c *testConfig) { c.Broker.Listeners = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := defaults()
			tt.modify(&want)
			ref := writeReference(t, &want)

			var got testConfig // zero: every value must come from the file
			err := Load([]Section{{Name: "log", Value: &got.Log}, {Name: "broker", Value: &got.Broker}},
				Sources{FileName: "ref.yaml", File: []byte(ref)})
			if err != nil && !strings.Contains(err.Error(), "must be at least 16") {
				t.Fatalf("loading the reference: %v\n%s", err, ref)
			}
			if again := writeReference(t, &got); again != ref {
				t.Errorf("reference does not round-trip:\n%s\nread back as:\n%s", ref, again)
			}
		})
	}
}

func TestReferenceFormat(t *testing.T) {
	cfg := defaults()
	ref := writeReference(t, &cfg)
	for _, want := range []string{
		"# Test reference.\n# Second line.\n\n",
		"# log configures the test log.\nlog:\n  level: info\n",
		"broker:\n  listeners:\n    - name: default\n      address: 127.0.0.1:1883\n      allow_anonymous: true\n",
		"  max_packet_size: 1MiB\n",
		"  max_queued_bytes: 16MiB\n",
		"  connect_timeout: 10s\n",
		"  ratio: 0.0\n",
		"  tags: {}\n",
		"  topics: []\n",
	} {
		if !strings.Contains(ref, want) {
			t.Errorf("reference lacks %q:\n%s", want, ref)
		}
	}
	cfg.Broker.Listeners = nil
	ref = writeReference(t, &cfg)
	if want := "  listeners: []\n  # Each element:\n  #   - name: \"\"\n"; !strings.Contains(ref, want) {
		t.Errorf("reference lacks %q:\n%s", want, ref)
	}
}

func TestReferenceUsesDocComments(t *testing.T) {
	dir := t.TempDir()
	src := `package x

// Conf is documented.
type Conf struct {
	// MaxThings caps the things. Default: 3.
	MaxThings int ` + "`koanf:\"max_things\"`" + `
	Plain string ` + "`koanf:\"plain\"`" + ` // Plain has a trailing comment.
}
`
	if err := os.WriteFile(filepath.Join(dir, "x.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	docs, err := parseDocs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := docs["Conf"]["MaxThings"]; got != "MaxThings caps the things. Default: 3.\n" {
		t.Errorf("MaxThings doc = %q", got)
	}
	if got := docs["Conf"]["Plain"]; got != "Plain has a trailing comment.\n" {
		t.Errorf("Plain doc = %q", got)
	}
}
