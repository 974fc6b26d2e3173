package main

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/sluicehq/sluice/broker"
	"github.com/sluicehq/sluice/broker/auth"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/internal/admin"
	"github.com/sluicehq/sluice/internal/config"
	"github.com/sluicehq/sluice/rules"
	"github.com/sluicehq/sluice/schemas"
	"github.com/sluicehq/sluice/sinks/sinkconfig"
)

// Config is the whole Sluice configuration, one field per top-level
// section of the config file, tagged with the section's name.
type Config struct {
	// Log configures the process log, written to stderr.
	Log LogConfig `koanf:"log"`
	// Runtime tunes the Go runtime's garbage collector.
	Runtime RuntimeConfig `koanf:"runtime"`
	// Broker configures the embedded MQTT broker.
	Broker broker.Config `koanf:"broker"`
	// Auth configures MQTT users, failed-login limits and ACL rules.
	Auth auth.Config `koanf:"auth"`
	// Ingest configures the pipeline: durability, spool, retries, batching.
	Ingest ingest.Config `koanf:"ingest"`
	// Admin configures the admin HTTP listener (metrics, probes, APIs).
	Admin admin.Config `koanf:"admin"`
	// Schemas binds payload decoders and validators to topics.
	Schemas schemas.Config `koanf:"schemas"`
	// Sinks are the destinations rules write to, by name.
	Sinks sinkSection `koanf:"sinks"`
	// Rules route, filter and reshape messages; compiled by package rules,
	// which reports positions itself.
	Rules []rules.RuleConfig `koanf:"rules"`
	// RulesFiles are rule files, directories or globs (package rules).
	RulesFiles []string `koanf:"rules_files"`
	// Commands configures downstream commands to devices (commands_wire.go).
	Commands commandsSection `koanf:"commands"`
}

// rulesConfig assembles the rules package's view of the config.
func (c *Config) rulesConfig() rules.Config {
	return rules.Config{Rules: c.Rules, Files: c.RulesFiles}
}

// sinkSection is the `sinks:` section: sink name → spec.
type sinkSection map[string]sinkconfig.Spec

// Validate checks every sink spec.
func (s sinkSection) Validate() []error { return sinkconfig.ValidateAll(s) }

// sinkNames lists the configured sinks (and the built-in republish sink)
// for rule validation.
func (c *Config) sinkNames() []string {
	names := append([]string{rules.RepublishSink}, c.commandSinkNames()...)
	for name := range c.Sinks {
		names = append(names, name)
	}
	return names
}

// defaultConfig returns every section's defaults.
func defaultConfig() Config {
	return Config{
		Log:     LogConfig{Level: "info", Format: "text"},
		Runtime: RuntimeConfig{GCPercent: 100},
		Broker:  broker.DefaultConfig(),
		Auth:    auth.DefaultConfig(),
		Ingest:  ingest.DefaultConfig(),
		Admin:   admin.DefaultConfig(),
		Sinks:   sinkSection{},

		Commands: defaultCommandsSection(),
	}
}

// sections lists the config file's sections, pointing into c. A package
// joins the config file with one line here (and a field in Config).
func (c *Config) sections() []config.Section {
	return []config.Section{
		{Name: "log", Value: &c.Log},
		{Name: "runtime", Value: &c.Runtime},
		{Name: "broker", Value: &c.Broker},
		{Name: "auth", Value: &c.Auth},
		{Name: "ingest", Value: &c.Ingest},
		{Name: "admin", Value: &c.Admin},
		{Name: "schemas", Value: &c.Schemas},
		{Name: "sinks", Value: &c.Sinks},
		{Name: "rules", Value: &c.Rules},
		{Name: "rules_files", Value: &c.RulesFiles},
		{Name: "commands", Value: &c.Commands},
	}
}

// defaultFile documents every default. It is generated from the config
// structs' comments (go test ./cmd/sluice -run TestDefaultFile -update)
// and is the file used when no -c is given.
//
//go:embed sluice.default.yaml
var defaultFile []byte

// defaultFileName names the built-in file in error messages.
const defaultFileName = "sluice.default.yaml"

// loadConfig loads path (the built-in default file when empty) over the
// defaults, then the SLUICE_* variables in environ.
func loadConfig(path string, environ []string) (Config, error) {
	cfg := defaultConfig()
	src := config.Sources{FileName: defaultFileName, File: defaultFile, Environ: environ}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("reading config: %w", err)
		}
		src.FileName, src.File = path, data
	}
	if err := config.Load(cfg.sections(), src); err != nil {
		return cfg, err
	}
	// The schemas (JSON Schema and Protobuf files) compile here too, so
	// validate sees their errors and rule targets' output message types.
	decoders, err := schemas.New(cfg.Schemas, schemas.Options{})
	if err != nil {
		return cfg, err
	}
	opts := cfg.rulesOptions(path)
	opts.Encoders = decoders
	if _, errs := rules.Compile(cfg.rulesConfig(), opts); len(errs) > 0 {
		return cfg, ruleErrors(errs)
	}
	return cfg, nil
}

// rulesOptions is how rules are compiled for this config.
func (c *Config) rulesOptions(path string) rules.Options {
	return rules.Options{Sinks: c.sinkNames(), ConfigFile: path}
}

// ruleErrors lists rule compile errors, already carrying their file:line.
type ruleErrors []error

func (e ruleErrors) Error() string { return errors.Join(e...).Error() }

// printConfigError writes a loadConfig error to w, one problem a line.
func printConfigError(w io.Writer, err error) {
	if re, ok := err.(ruleErrors); ok {
		for _, e := range re {
			fmt.Fprintln(w, e)
		}
		fmt.Fprintf(w, "sluice: %d rule problem(s)\n", len(re))
		return
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		fmt.Fprintf(w, "sluice: %v\n", err)
		return
	}
	for _, e := range errs {
		fmt.Fprintln(w, e)
	}
	noun := "problems"
	if len(errs) == 1 {
		noun = "problem"
	}
	fmt.Fprintf(w, "sluice: %d config %s\n", len(errs), noun)
}

// LogConfig configures the process log.
type LogConfig struct {
	// Level is the least severe level logged: debug, info, warn or error.
	// Default: info.
	Level string `koanf:"level"`
	// Format is text (key=value pairs) or json (one object a line).
	// Default: text.
	Format string `koanf:"format"`
}

// Validate reports an unknown level or format.
func (c LogConfig) Validate() []error {
	var errs []error
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.Level)); err != nil || strings.ContainsAny(c.Level, "+-") {
		errs = append(errs, fmt.Errorf("level: unknown level %q (want debug, info, warn or error)", c.Level))
	}
	if c.Format != "text" && c.Format != "json" {
		errs = append(errs, fmt.Errorf("format: unknown format %q (want text or json)", c.Format))
	}
	return errs
}

// newLogger builds the process logger writing to w.
func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.Level)) // validated by LogConfig.Validate
	opts := &slog.HandlerOptions{Level: l}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// RuntimeConfig tunes the garbage collector: a larger heap between
// collections trades memory for fewer GC cycles, which are what stalls
// the tail of command and ack latencies on a busy process.
type RuntimeConfig struct {
	// GCPercent is the heap growth, in percent of the live heap, that
	// starts a collection (Go's GOGC); -1 turns collection off unless
	// memory_limit is reached. The GOGC environment variable, when set,
	// wins. Default: 100.
	GCPercent int `koanf:"gc_percent"`
	// MemoryLimit is a soft limit on the memory the Go runtime uses (Go's
	// GOMEMLIMIT): near it, the collector runs more often whatever
	// gc_percent says. 0 means none. The GOMEMLIMIT environment variable,
	// when set, wins. Default: 0.
	MemoryLimit int64 `koanf:"memory_limit"`
}

// Validate reports out-of-range values.
func (c RuntimeConfig) Validate() []error {
	var errs []error
	if c.GCPercent < -1 {
		errs = append(errs, fmt.Errorf("gc_percent: %d is below -1 (off)", c.GCPercent))
	}
	if c.MemoryLimit < 0 {
		errs = append(errs, fmt.Errorf("memory_limit: %d is negative", c.MemoryLimit))
	}
	return errs
}

// apply sets the collector's knobs, leaving those the environment set.
func (c RuntimeConfig) apply(environ []string) {
	if !hasEnv(environ, "GOGC") {
		debug.SetGCPercent(c.GCPercent)
	}
	if c.MemoryLimit > 0 && !hasEnv(environ, "GOMEMLIMIT") {
		debug.SetMemoryLimit(c.MemoryLimit)
	}
}

func hasEnv(environ []string, name string) bool {
	for _, kv := range environ {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}
