package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/config"
)

var update = flag.Bool("update", false, "rewrite sluice.default.yaml from the config structs")

const defaultFileHeader = `Sluice configuration: every key, its default value and what it does.
This is the built-in configuration used when sluice runs without -c.
Generated from the config structs' comments; do not edit, run
  go test ./cmd/sluice -run TestDefaultFile -update

Environment variables override the file: SLUICE_<SECTION>__<KEY>, with __
between nested keys and list indexes, e.g.
  SLUICE_LOG__LEVEL=debug
  SLUICE_BROKER__LISTENERS__0__ADDRESS=0.0.0.0:1883
Durations take a unit ("10s"); sizes may too ("16MiB", "64KB").`

// moduleRoot finds the directory holding go.mod and the module path.
func moduleRoot(t *testing.T) (dir, module string) {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			for _, line := range strings.Split(string(data), "\n") {
				if m, ok := strings.CutPrefix(line, "module "); ok {
					return dir, strings.TrimSpace(m)
				}
			}
			t.Fatal("go.mod has no module line")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// reference renders cfg the way sluice.default.yaml is written.
func reference(t *testing.T, cfg *Config) string {
	t.Helper()
	root, module := moduleRoot(t)
	r := &config.Reference{
		Header: defaultFileHeader,
		Root:   Config{},
		SourceDir: func(pkg string) (string, error) {
			rel, ok := strings.CutPrefix(pkg, module)
			if !ok {
				return "", errors.New("not in module " + module)
			}
			return filepath.Join(root, filepath.FromSlash(rel)), nil
		},
	}
	var b bytes.Buffer
	if err := r.Write(&b, cfg.sections()); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestDefaultFile checks that sluice.default.yaml is generated from the
// current defaults and doc comments (run with -update to regenerate), and
// that it states every default itself.
func TestDefaultFile(t *testing.T) {
	cfg := defaultConfig()
	want := reference(t, &cfg)
	if *update {
		if err := os.WriteFile("sluice.default.yaml", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		defaultFile = []byte(want)
	}
	if string(defaultFile) != want {
		t.Fatalf("sluice.default.yaml is stale: run go test ./cmd/sluice -run TestDefaultFile -update\n%s", want)
	}

	// Read the file over zero values: it must reproduce the defaults.
	var got Config
	if err := config.Load(got.sections(), config.Sources{FileName: defaultFileName, File: defaultFile}); err != nil {
		t.Fatalf("loading sluice.default.yaml over zero values: %v", err)
	}
	if again := reference(t, &got); again != want {
		t.Errorf("sluice.default.yaml does not reproduce the defaults; it reads back as:\n%s", again)
	}
}

// TestSectionsMatchConfig checks that every Config field is a section
// under its tag name, so a new section cannot be half wired.
func TestSectionsMatchConfig(t *testing.T) {
	var cfg Config
	secs := cfg.sections()
	v := reflect.ValueOf(&cfg).Elem()
	if len(secs) != v.NumField() {
		t.Fatalf("%d sections for %d Config fields", len(secs), v.NumField())
	}
	for i, s := range secs {
		f := v.Type().Field(i)
		if tag := f.Tag.Get("koanf"); tag != s.Name {
			t.Errorf("Config.%s is tagged %q, section %d is %q", f.Name, tag, i, s.Name)
		}
		if s.Value != v.Field(i).Addr().Interface() {
			t.Errorf("section %q does not point to Config.%s", s.Name, f.Name)
		}
	}
}
