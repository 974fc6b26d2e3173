package docs

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite configuration.md from cmd/sluice/sluice.default.yaml")

// defaultFile is the YAML reference generated from the config structs.
const defaultFile = "../../cmd/sluice/sluice.default.yaml"

// pageIntro heads configuration.md.
const pageIntro = `# Configuration reference

<!-- Generated from the config structs' doc comments, through
cmd/sluice/sluice.default.yaml; do not edit. Regenerate with
  go test ./cmd/sluice -run TestDefaultFile -update
  go test ./examples/docs -run TestConfigurationPage -update -->

Every key of Sluice's configuration file, with its default and what it
does. This page and [` + "`cmd/sluice/sluice.default.yaml`" + `](../../cmd/sluice/sluice.default.yaml)
(the built-in configuration, the same content as YAML) are generated from
the doc comments of the config structs, so they cannot disagree with the
code: a test fails when either is stale.

Sluice reads three layers, each overriding the one before: the built-in
defaults, the YAML file given with ` + "`-c FILE`" + `, and ` + "`SLUICE_*`" + ` environment
variables. A variable names a key path: ` + "`SLUICE_`" + `, the section, then each
nested key, joined by a double underscore; a number indexes a list
(` + "`SLUICE_BROKER__LISTENERS__0__ADDRESS=0.0.0.0:1883`" + `). Durations need a unit
(` + "`10s`" + `), sizes may take one (` + "`64KB`, `16MiB`" + `). Unknown keys are errors;
` + "`sluice validate -c FILE`" + ` reports every problem at once.

In key paths, ` + "`[]`" + ` stands for every element of a list and ` + "`<name>`" + ` for
the name of a map entry (a sink's name). A list written in the file
replaces the default list whole: an element's keys you leave out take
their zero value, not the default element's (write
` + "`allow_anonymous: true`" + ` in a listener you define, for instance).`

// TestConfigurationPage checks that configuration.md is the rendering of
// the current sluice.default.yaml (run with -update to regenerate).
func TestConfigurationPage(t *testing.T) {
	src, err := os.ReadFile(defaultFile)
	if err != nil {
		t.Fatal(err)
	}
	keys, _, err := ParseReference(src)
	if err != nil {
		t.Fatal(err)
	}
	want := Markdown(keys, pageIntro)
	if *update {
		if err := os.WriteFile("configuration.md", want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("configuration.md is stale: run go test ./examples/docs -run TestConfigurationPage -update")
	}
	// Every key of the YAML is on the page: count the keys the parser
	// found against the key lines of the file.
	for _, path := range []string{"log.level", "broker.listeners[].allow_anonymous", "auth.users[].password_hash",
		"ingest.spool.max_bytes", "schemas.bindings[].protobuf.message", "sinks.<name>.kafka.brokers",
		"sinks.<name>.clickhouse.batch.linger", "rules[].to[].sink"} {
		if !strings.Contains(string(want), "| `"+path+"` |") {
			t.Errorf("the page has no row for %s", path)
		}
	}
}

func TestParseReference(t *testing.T) {
	const src = `# Header line one.
#
# Two.

# log configures the log.
log:
  # level is the level.
  # Default: info.
  level: info

# broker is the broker.
broker:
  # listeners are endpoints.
  listeners:
    # name names it.
    - name: default
      # tls holds TLS.
      tls:
        # cert_file is a file.
        cert_file: ""
      # port is a port.
      port: 1883
  # filters are filters.
  filters:
    - a
    - b
  # users are users.
  users: []
  # Each element:
  #   # username names a user.
  #   - username: ""
  #     # hash is a hash.
  #     hash: ""

# sinks are sinks.
sinks: {}
# Each element:
#   # type is a type.
#   <name>: type: ""
#           # kafka is Kafka.
#           kafka:
#             # brokers are brokers.
#             brokers: []
`
	keys, header, err := ParseReference([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(header, "|"); got != "Header line one.||Two." {
		t.Errorf("header %q", got)
	}
	want := []Key{
		{"log", "", "log configures the log.", 0},
		{"log.level", "info", "level is the level. Default: info.", 1},
		{"broker", "", "broker is the broker.", 0},
		{"broker.listeners", "", "listeners are endpoints.", 1},
		{"broker.listeners[].name", "default", "name names it.", 2},
		{"broker.listeners[].tls", "", "tls holds TLS.", 2},
		{"broker.listeners[].tls.cert_file", `""`, "cert_file is a file.", 3},
		{"broker.listeners[].port", "1883", "port is a port.", 2},
		{"broker.filters", "[a, b]", "filters are filters.", 1},
		{"broker.users", "[]", "users are users.", 1},
		{"broker.users[].username", `""`, "username names a user.", 2},
		{"broker.users[].hash", `""`, "hash is a hash.", 2},
		{"sinks", "{}", "sinks are sinks.", 0},
		{"sinks.<name>.type", `""`, "type is a type.", 1},
		{"sinks.<name>.kafka", "", "kafka is Kafka.", 1},
		{"sinks.<name>.kafka.brokers", "[]", "brokers are brokers.", 2},
	}
	if len(keys) != len(want) {
		t.Errorf("%d keys, want %d:\n%+v", len(keys), len(want), keys)
	}
	for i := range min(len(keys), len(want)) {
		t.Run(want[i].Path, func(t *testing.T) {
			if keys[i] != want[i] {
				t.Errorf("key %d = %+v, want %+v", i, keys[i], want[i])
			}
		})
	}
}

func TestParseReferenceErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"element block first", "\n# Each element:\n#   - a: 1\n", "no key before it"},
		{"no marker", "x: []\n# Each element:\n#   a: 1\n", "no element marker"},
		{"not a key", "x: 1\njust text\n", "want key: value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseReference([]byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a | b", `a \| b`},
		{"SLUICE_<KEY>", "SLUICE_&lt;KEY&gt;"},
		{"`<name>` and <x>", "`<name>` and &lt;x&gt;"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := escape(tc.in); got != tc.want {
				t.Errorf("escape(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
