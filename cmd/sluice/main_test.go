package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// runCmd runs the program in process.
func runCmd(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(append([]string{"sluice"}, args...), &out, &errOut, env)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestValidate(t *testing.T) {
	good := writeFile(t, "good.yaml", `
log:
  level: debug
  format: json
broker:
  max_packet_size: 64KiB
  listeners:
    - name: local
      address: 127.0.0.1:18830
      allow_anonymous: true
`)
	bad := writeFile(t, "sluice.yaml", `log:
  level: loud
broker:
  max_packet_size: abc
  listeners:
    - name: a
      adress: 127.0.0.1:1
  connect_timeout: 10
sinkz: {}
`)
	unknownType := writeFile(t, "proto.yaml", `
rules:
  - name: shape
    topics: ["a/#"]
    to:
      - {sink: republish, encoding: protobuf, message: acme.v1.Missing}
`)
	missingSchema := writeFile(t, "schema.yaml", `
schemas:
  bindings:
    - {topic: "a/#", decoder: json, schema: `+filepath.Join(t.TempDir(), "none.json")+`}
`)
	tests := []struct {
		name       string
		args       []string
		env        []string
		wantCode   int
		wantStdout string
		wantStderr []string // lines, in order
	}{
		{name: "built-in default", args: []string{"validate"}, wantStdout: "config OK\n"},
		{name: "good file", args: []string{"validate", "-c", good}, wantStdout: "config OK\n"},
		{
			name:     "bad file reports every problem",
			args:     []string{"validate", "-c", bad},
			wantCode: 1,
			wantStderr: []string{
				`log.level: unknown level "loud" (want debug, info, warn or error) (` + bad + `:2)`,
				`broker.max_packet_size: cannot parse "abc" as uint32 (` + bad + `:4)`,
				`broker.listeners[0].adress: unknown key (` + bad + `:7)`,
				`broker.connect_timeout: cannot use 10 as duration: add a unit, e.g. "10s" (` + bad + `:8)`,
				`sinkz: unknown section (` + bad + `:9)`,
				`sluice: 5 config problems`,
			},
		},
		{
			name:     "environment is validated too",
			args:     []string{"validate", "-c", good},
			env:      []string{"SLUICE_LOG__FORMAT=xml", "SLUICE_BROKER__LISTENERS__0__ADDRESS=nowhere"},
			wantCode: 1,
			wantStderr: []string{
				`log.format: unknown format "xml" (want text or json) (env SLUICE_LOG__FORMAT)`,
				`broker.listeners[0].address: `,
				`sluice: 2 config problems`,
			},
		},
		{
			name:       "output message type checked against the schemas",
			args:       []string{"validate", "-c", unknownType},
			wantCode:   1,
			wantStderr: []string{unknownType + ":6: rule \"shape\""},
		},
		{
			name:       "schema files are read",
			args:       []string{"validate", "-c", missingSchema},
			wantCode:   1,
			wantStderr: []string{"sluice: "},
		},
		{
			name:       "missing file",
			args:       []string{"validate", "-c", filepath.Join(t.TempDir(), "nope.yaml")},
			wantCode:   1,
			wantStderr: []string{"sluice: reading config: open "},
		},
		{
			name:       "stray argument",
			args:       []string{"validate", "extra"},
			wantCode:   2,
			wantStderr: []string{`sluice validate: unexpected argument "extra"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, tt.env, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d\nstderr:\n%s", code, tt.wantCode, stderr)
			}
			if stdout != tt.wantStdout {
				t.Errorf("stdout %q, want %q", stdout, tt.wantStdout)
			}
			lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
			if stderr == "" {
				lines = nil
			}
			if tt.wantStderr == nil && len(lines) > 0 {
				t.Errorf("unexpected stderr:\n%s", stderr)
			}
			for i, want := range tt.wantStderr {
				if i >= len(lines) || !strings.HasPrefix(lines[i], want) {
					t.Errorf("stderr line %d: want prefix %q\nstderr:\n%s", i, want, stderr)
					break
				}
			}
		})
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runCmd(t, nil, "version")
	if code != 0 {
		t.Fatalf("exit code %d", code)
	}
	for _, want := range []string{"sluice ", " commit ", runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH} {
		if !strings.Contains(stdout, want) {
			t.Errorf("version output %q lacks %q", stdout, want)
		}
	}

	version, commit = "v1.2.3", "abc1234"
	t.Cleanup(func() { version, commit = "", "" })
	if _, stdout, _ := runCmd(t, nil, "version"); !strings.HasPrefix(stdout, "sluice v1.2.3 commit abc1234 ") {
		t.Errorf("with overrides: %q", stdout)
	}
}

func TestDispatch(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "help", args: []string{"help"}, wantStdout: "Usage: sluice <command>"},
		{name: "-h", args: []string{"-h"}, wantStdout: "Usage: sluice <command>"},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2, wantStderr: `sluice: unknown command "frobnicate"`},
		{name: "run with a bad flag", args: []string{"-x"}, wantCode: 2, wantStderr: "flag provided but not defined: -x"},
		{name: "run help", args: []string{"run", "-h"}, wantStderr: "Usage of sluice run:"},
		{name: "bench without a mode", args: []string{"bench"}, wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, nil, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code %d, want %d\nstderr:\n%s", code, tt.wantCode, stderr)
			}
			if !strings.HasPrefix(stdout, tt.wantStdout) {
				t.Errorf("stdout %q, want prefix %q", stdout, tt.wantStdout)
			}
			if !strings.HasPrefix(stderr, tt.wantStderr) {
				t.Errorf("stderr %q, want prefix %q", stderr, tt.wantStderr)
			}
		})
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	bad := writeFile(t, "bad.yaml", "broker:\n  max_packet_size: abc\n")
	code, _, stderr := runCmd(t, nil, "run", "-c", bad)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(stderr, `broker.max_packet_size: cannot parse "abc" as uint32 (`+bad+":2)") {
		t.Errorf("stderr lacks the problem:\n%s", stderr)
	}
}
