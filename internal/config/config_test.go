package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

type testListener struct {
	Name           string `koanf:"name"`
	Address        string `koanf:"address"`
	AllowAnonymous bool   `koanf:"allow_anonymous"`
}

type testBroker struct {
	Listeners      []testListener    `koanf:"listeners"`
	MaxPacketSize  uint32            `koanf:"max_packet_size"`
	MaxQueuedBytes int               `koanf:"max_queued_bytes"`
	ConnectTimeout time.Duration     `koanf:"connect_timeout"`
	Ratio          float64           `koanf:"ratio"`
	Tags           map[string]string `koanf:"tags"`
	Topics         []string          `koanf:"topics"`
}

func (c testBroker) Validate() []error {
	var errs []error
	for i, l := range c.Listeners {
		if l.Address == "" {
			errs = append(errs, fmt.Errorf("listeners[%d].address: required", i))
		}
	}
	if c.MaxPacketSize < 16 {
		errs = append(errs, fmt.Errorf("max_packet_size: must be at least 16, got %d", c.MaxPacketSize))
	}
	if c.Ratio > 1 {
		errs = append(errs, errors.New("ratio and max_packet_size disagree"))
	}
	return errs
}

type testLog struct {
	Level string `koanf:"level"`
}

func (c testLog) Validate() []error {
	if c.Level != "info" && c.Level != "debug" {
		return []error{fmt.Errorf("level: unknown level %q", c.Level)}
	}
	return nil
}

type testConfig struct {
	Log    testLog
	Broker testBroker
}

func defaults() testConfig {
	return testConfig{
		Log: testLog{Level: "info"},
		Broker: testBroker{
			Listeners:      []testListener{{Name: "default", Address: "127.0.0.1:1883", AllowAnonymous: true}},
			MaxPacketSize:  1 << 20,
			MaxQueuedBytes: 1 << 24,
			ConnectTimeout: 10 * time.Second,
		},
	}
}

// load runs Load on the test sections; file "" means no file.
func load(t *testing.T, file string, env ...string) (testConfig, []string) {
	t.Helper()
	cfg := defaults()
	src := Sources{Environ: env}
	if file != "" {
		src.FileName = "sluice.yaml"
		src.File = []byte(strings.TrimPrefix(file, "\n"))
	}
	err := Load([]Section{{Name: "log", Value: &cfg.Log}, {Name: "broker", Value: &cfg.Broker}}, src)
	if err == nil {
		return cfg, nil
	}
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("Load returned %T, want Errors: %v", err, err)
	}
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return cfg, lines
}

func TestLoadValues(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		want func(c *testConfig)
	}{
		{name: "defaults only", want: func(*testConfig) {}},
		{name: "empty file", file: "# nothing\n", want: func(*testConfig) {}},
		{
			name: "file overrides",
			file: `
log:
  level: debug
broker:
  max_packet_size: 2048
  connect_timeout: 1m30s
  listeners:
    - name: a
      address: 127.0.0.1:0
`,
			want: func(c *testConfig) {
				c.Log.Level = "debug"
				c.Broker.MaxPacketSize = 2048
				c.Broker.ConnectTimeout = 90 * time.Second
				c.Broker.Listeners = []testListener{{Name: "a", Address: "127.0.0.1:0"}}
			},
		},
		{
			name: "env overrides file",
			file: "broker:\n  max_packet_size: 2048\n",
			env:  []string{"SLUICE_BROKER__MAX_PACKET_SIZE=4096", "SLUICE_LOG__LEVEL=debug", "PATH=/bin"},
			want: func(c *testConfig) {
				c.Log.Level = "debug"
				c.Broker.MaxPacketSize = 4096
			},
		},
		{
			name: "env indexes and appends list elements in index order",
			env: []string{
				"SLUICE_BROKER__LISTENERS__2__ADDRESS=127.0.0.1:3",
				"SLUICE_BROKER__LISTENERS__1__ADDRESS=127.0.0.1:2",
				"SLUICE_BROKER__LISTENERS__0__ADDRESS=127.0.0.1:1",
				"SLUICE_BROKER__LISTENERS__1__ALLOW_ANONYMOUS=true",
				"SLUICE_BROKER__TOPICS__0=a/#",
			},
			want: func(c *testConfig) {
				c.Broker.Listeners = []testListener{
					{Name: "default", Address: "127.0.0.1:1", AllowAnonymous: true},
					{Address: "127.0.0.1:2", AllowAnonymous: true},
					{Address: "127.0.0.1:3"},
				}
				c.Broker.Topics = []string{"a/#"}
			},
		},
		{
			name: "env replaces a list and a map with YAML",
			env: []string{
				`SLUICE_BROKER__LISTENERS=[{name: x, address: "127.0.0.1:9"}]`,
				"SLUICE_BROKER__TAGS={site: lab}",
				"SLUICE_BROKER__TAGS__ROOM=b12",
			},
			want: func(c *testConfig) {
				c.Broker.Listeners = []testListener{{Name: "x", Address: "127.0.0.1:9"}}
				c.Broker.Tags = map[string]string{"site": "lab", "room": "b12"}
			},
		},
		{
			name: "byte sizes, hex, null keeps the default, merge keys",
			file: `
broker:
  max_packet_size: 64KiB
  max_queued_bytes: 0x100
  connect_timeout:
  ratio: 0.5
  listeners:
    - <<: &l {name: m, address: "127.0.0.1:7", allow_anonymous: true}
      name: n
    - *l
`,
			want: func(c *testConfig) {
				c.Broker.MaxPacketSize = 64 << 10
				c.Broker.MaxQueuedBytes = 256
				c.Broker.Ratio = 0.5
				c.Broker.Listeners = []testListener{
					{Name: "n", Address: "127.0.0.1:7", AllowAnonymous: true},
					{Name: "m", Address: "127.0.0.1:7", AllowAnonymous: true},
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := load(t, tt.file, tt.env...)
			if errs != nil {
				t.Fatalf("unexpected errors:\n%s", strings.Join(errs, "\n"))
			}
			want := defaults()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		want []string
	}{
		{
			name: "unknown key in file",
			file: "broker:\n  max_packt_size: 3\n",
			want: []string{"broker.max_packt_size: unknown key (sluice.yaml:2)"},
		},
		{
			name: "keys are case-sensitive",
			file: "broker:\n  Max_Packet_Size: 3000\n",
			want: []string{"broker.Max_Packet_Size: unknown key (sluice.yaml:2)"},
		},
		{
			name: "unknown nested key in a list element",
			file: `
broker:
  listeners:
    - name: a
      address: 127.0.0.1:1
    - name: b
      adress: 127.0.0.1:2
`,
			want: []string{
				"broker.listeners[1].adress: unknown key (sluice.yaml:6)",
			},
		},
		{
			name: "wrong type with file line",
			file: "log:\n  level: info\nbroker:\n  max_packet_size: abc\n",
			want: []string{`broker.max_packet_size: cannot parse "abc" as uint32 (sluice.yaml:4)`},
		},
		{
			name: "integer overflow and fractions",
			file: "broker:\n  max_packet_size: 5000000000\n  max_queued_bytes: 1.5\n",
			want: []string{
				"broker.max_packet_size: 5000000000 is out of range for uint32 (sluice.yaml:2)",
				"broker.max_queued_bytes: cannot use 1.5 as int: not an integer (sluice.yaml:3)",
			},
		},
		{
			name: "bad durations",
			file: "broker:\n  connect_timeout: 10x\n",
			env:  []string{"SLUICE_BROKER__LISTENERS__0__NAME=a"},
			want: []string{`broker.connect_timeout: cannot parse "10x" as duration (use e.g. "10s", "1m30s") (sluice.yaml:2)`},
		},
		{
			name: "duration without unit",
			file: "broker:\n  connect_timeout: 10\n",
			want: []string{`broker.connect_timeout: cannot use 10 as duration: add a unit, e.g. "10s" (sluice.yaml:2)`},
		},
		{
			name: "several errors reported together in file order",
			file: `
broker:
  tags: {a: 1}
  max_packet_size: -1
  listeners:
    - {name: a, address: 127.0.0.1:1, extra: x}
  connect_timeout: soon
  topics: a/b
bogus: {}
log:
  level: [1]
`,
			want: []string{
				"broker.tags.a: cannot use number 1 as string (sluice.yaml:2)",
				"broker.max_packet_size: -1 is out of range for uint32 (sluice.yaml:3)",
				"broker.listeners[0].extra: unknown key (sluice.yaml:5)",
				`broker.connect_timeout: cannot parse "soon" as duration (use e.g. "10s", "1m30s") (sluice.yaml:6)`,
				`broker.topics: expected a list, got string "a/b" (sluice.yaml:7)`,
				"bogus: unknown section (sluice.yaml:8)",
				"log.level: cannot use a list as string (sluice.yaml:10)",
			},
		},
		{
			name: "unknown env var under a known section",
			env:  []string{"SLUICE_BROKER__NOPE=1", "SLUICE_BROKER__LISTENERS__0__ADRESS=x"},
			want: []string{
				"broker.listeners[0].adress: unknown key (env SLUICE_BROKER__LISTENERS__0__ADRESS)",
				"broker.nope: unknown key (env SLUICE_BROKER__NOPE)",
			},
		},
		{
			name: "bad env values and names",
			env: []string{
				"SLUICE_BROKER__MAX_PACKET_SIZE=abc",
				"SLUICE_BROKER_MAX_PACKET_SIZE=1",
				"SLUICE_ADMIN__ADDRESS=x",
				"SLUICE_BROKER____X=1",
				"SLUICE_BROKER__LISTENERS__5__NAME=x",
				"SLUICE_BROKER__LISTENERS__NAME=x",
				"SLUICE_BROKER__RATIO__X=1",
			},
			want: []string{
				`broker_max_packet_size: unknown section (separate keys with __, e.g. SLUICE_BROKER__MAX_PACKET_SIZE) (env SLUICE_BROKER_MAX_PACKET_SIZE)`,
				"admin: unknown section (env SLUICE_ADMIN__ADDRESS)",
				"malformed name: want SLUICE_<SECTION>__<KEY>, with __ between nested keys and list indexes (env SLUICE_BROKER____X)",
				"broker.listeners[5]: index out of range: the list has 1 elements (index 1 appends) (env SLUICE_BROKER__LISTENERS__5__NAME)",
				"broker.listeners: is a list: address an element by index (…__0__NAME) (env SLUICE_BROKER__LISTENERS__NAME)",
				`broker.ratio: is number 0, not a mapping or list: cannot set "x" inside it (env SLUICE_BROKER__RATIO__X)`,
				`broker.max_packet_size: cannot parse "abc" as uint32 (env SLUICE_BROKER__MAX_PACKET_SIZE)`,
			},
		},
		{
			name: "validate errors prefixed with section",
			file: `
broker:
  max_packet_size: 8
  ratio: 2
  listeners:
    - name: a
    - name: b
      address: 127.0.0.1:2
log:
  level: loud
`,
			env: []string{"SLUICE_BROKER__LISTENERS__2__NAME=c"},
			want: []string{
				"broker: ratio and max_packet_size disagree (sluice.yaml:1)",
				"broker.max_packet_size: must be at least 16, got 8 (sluice.yaml:2)",
				"broker.listeners[0].address: required (sluice.yaml:5)",
				`log.level: unknown level "loud" (sluice.yaml:9)`,
				"broker.listeners[2].address: required (env SLUICE_BROKER__LISTENERS__2__NAME)",
			},
		},
		{
			name: "env value replaces file position",
			file: "broker:\n  max_packet_size: 4096\n",
			env:  []string{"SLUICE_BROKER__MAX_PACKET_SIZE=8"},
			want: []string{"broker.max_packet_size: must be at least 16, got 8 (env SLUICE_BROKER__MAX_PACKET_SIZE)"},
		},
		{
			name: "yaml syntax error",
			file: "broker:\n  max_packet_size: 1\n   bad: [\n",
			want: []string{"invalid YAML: mapping values are not allowed in this context (sluice.yaml:3)"},
		},
		{
			name: "duplicate key",
			file: "broker:\n  max_packet_size: 1024\n  max_packet_size: 2048\n",
			want: []string{"broker.max_packet_size: duplicate key (first set at line 2) (sluice.yaml:3)"},
		},
		{
			name: "more than one document",
			file: "broker: {}\n---\nlog: {}\n",
			want: []string{"more than one YAML document (sluice.yaml:2)"},
		},
		{
			name: "top level not a mapping",
			file: "- broker\n",
			want: []string{"top level must be a mapping of sections, got a list (sluice.yaml:1)"},
		},
		{
			name: "section not a mapping",
			file: "broker: 5\n",
			want: []string{"broker: expected a mapping, got number 5 (sluice.yaml:1)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := load(t, tt.file, tt.env...)
			if !reflect.DeepEqual(errs, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestLoadRejectsBadSections(t *testing.T) {
	var c testBroker
	tests := []struct {
		name     string
		sections []Section
	}{
		{"not a pointer", []Section{{Name: "broker", Value: c}}},
		{"nil pointer", []Section{{Name: "broker", Value: (*testBroker)(nil)}}},
		{"uppercase", []Section{{Name: "Broker", Value: &c}}},
		{"twice", []Section{{Name: "broker", Value: &c}, {Name: "broker", Value: &c}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Load(tt.sections, Sources{})
			var es Errors
			if err == nil || errors.As(err, &es) {
				t.Fatalf("Load = %v, want a programming error", err)
			}
		})
	}
}

func TestLoadLeavesSectionOnDecodeError(t *testing.T) {
	cfg := defaults()
	err := Load([]Section{{Name: "broker", Value: &cfg.Broker}}, Sources{
		FileName: "f.yaml",
		File:     []byte("broker:\n  max_packet_size: 100\n  connect_timeout: x\n"),
	})
	if err == nil {
		t.Fatal("want an error")
	}
	if cfg.Broker.MaxPacketSize != 1<<20 {
		t.Errorf("section modified despite errors: max_packet_size=%d", cfg.Broker.MaxPacketSize)
	}
}
