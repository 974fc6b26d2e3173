package rules

import (
	"log/slog"

	"github.com/sluicehq/sluice/ingest"
)

// Config is the rules part of the Sluice config file: the inline `rules:`
// list and the `rules_files:` list of files, directories or globs holding
// more rules. cmd embeds it in the root config with `koanf:",squash"` so
// both keys sit at the top level.
type Config struct {
	// Rules are the inline rules, evaluated in order. Default: none.
	Rules []RuleConfig `koanf:"rules"`
	// Files are rule files, directories (every *.yaml and *.yml inside) or
	// glob patterns, relative to the main config file's directory. Their
	// rules follow the inline ones, files in lexical order. Default: none.
	Files []string `koanf:"rules_files"`
}

// RuleConfig is one rule: which messages it takes (topics, when), what it
// computes (let, transform) and where the result goes (to).
type RuleConfig struct {
	// Name identifies the rule in metrics, outputs and errors: letters,
	// digits, '-', '_' and '.', unique across all rules. Required.
	Name string `koanf:"name"`
	// Description is free text for humans. Default: "".
	Description string `koanf:"description"`
	// Topics are the MQTT topic filters the rule applies to. Required.
	Topics []string `koanf:"topics"`
	// When is a boolean expression; the rule applies only when it is true.
	// Default: "" (always).
	When string `koanf:"when"`
	// Let maps names to expressions computed once per message and usable
	// as variables in when, transform and the targets. A let may use
	// another let; they are evaluated in dependency order. Default: none.
	Let map[string]string `koanf:"let"`
	// Transform is an expression whose value becomes the output body: maps
	// and lists are JSON-encoded, strings and bytes are used as they are.
	// Default: "" (the raw payload).
	Transform string `koanf:"transform"`
	// Durability overrides the global durability mode for this rule's
	// outputs: spool, sinks or none. Default: "" (the global mode).
	Durability string `koanf:"durability"`
	// OnError says what happens when evaluating the rule fails at run
	// time: dead_letter (the message goes to the dead-letter store) or
	// skip (the rule is skipped, the error counted). Default: dead_letter.
	OnError string `koanf:"on_error"`
	// To lists the targets. At least one is required.
	To []TargetConfig `koanf:"to"`
}

// TargetConfig is one destination of a rule: either a sink or an MQTT
// republish.
type TargetConfig struct {
	// Sink names a configured sink. Exactly one of Sink and Republish is
	// required.
	Sink string `koanf:"sink"`
	// Topic is a template rendered per message ("telemetry.{{ site }}"),
	// the sink's destination topic. Default: "" (the sink's default).
	Topic string `koanf:"topic"`
	// Key is an expression whose value is the partition/ordering key.
	// Default: "" (the client id).
	Key string `koanf:"key"`
	// Republish publishes the output back to the broker.
	Republish *RepublishConfig `koanf:"republish"`
	// Encoding is the body's format: json (the transform's value as it
	// is) or protobuf (the JSON body, read as protojson, re-encoded as
	// Message). Default: "" (json).
	Encoding string `koanf:"encoding"`
	// Message is the fully qualified Protobuf message type of encoding
	// protobuf, e.g. acme.v1.Reading, found in the descriptors of the
	// schemas section. Default: "".
	Message string `koanf:"message"`
	// Columns maps column names to expressions (over the same variables
	// and lets as transform): the target's body becomes a JSON object of
	// these keys, each its expression's value, instead of the rule's
	// body. A ClickHouse sink writes each key to the column of that name
	// and checks the columns against its table at start-up. Default:
	// none (the rule's body).
	Columns map[string]string `koanf:"columns"`
}

// RepublishConfig is an MQTT republish target (the built-in "republish"
// sink).
type RepublishConfig struct {
	// Topic is a template for the topic name. Required.
	Topic string `koanf:"topic"`
	// QoS is the publish QoS, 0 to 2. Default: 0.
	QoS int `koanf:"qos"`
	// Retain sets the RETAIN flag. Default: false.
	Retain bool `koanf:"retain"`
}

// RepublishSink is the name of the built-in sink that republishes to the
// broker. It is always a known sink.
const RepublishSink = "republish"

// Error handling policies for RuleConfig.OnError.
const (
	OnErrorDeadLetter = "dead_letter"
	OnErrorSkip       = "skip"
)

// Options carries what compiling needs besides the rules themselves.
type Options struct {
	// Sinks are the configured sink names; a target naming another sink is
	// an error. nil disables the check (tools that load rules alone).
	Sinks []string
	// ConfigFile is the main config file. Errors in inline rules then name
	// its file and lines, relative Files resolve against its directory,
	// and the watcher polls it. Default: "" (errors name rules[i]).
	ConfigFile string
	// Metrics receives per-rule metrics. It is shared across reloads.
	// Default: nil (metrics are counted but not exported).
	Metrics *Metrics
	// Logger logs reloads. Default: discard.
	Logger *slog.Logger
	// Encoders resolves the targets' encoding and message at compile
	// time. Default: nil: they are not checked and outputs stay JSON
	// (tools that load rules alone).
	Encoders Encoders
}

// modes maps the durability names to ingest modes.
var modes = map[string]ingest.Mode{
	"":                       "",
	string(ingest.ModeSpool): ingest.ModeSpool,
	string(ingest.ModeSinks): ingest.ModeSinks,
	string(ingest.ModeNone):  ingest.ModeNone,
}
