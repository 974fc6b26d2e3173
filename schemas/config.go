package schemas

import (
	"fmt"
	"time"

	"github.com/sluicehq/sluice/broker/topic"
)

// Decoder names accepted by BindingConfig.Decoder.
const (
	DecoderJSON       = "json"
	DecoderRaw        = "raw"
	DecoderMsgpack    = "msgpack"
	DecoderCBOR       = "cbor"
	DecoderProtobuf   = "protobuf"
	DecoderSparkplugB = "sparkplugb"
)

// Policies accepted by BindingConfig.OnInvalid.
const (
	// OnInvalidDeadLetter sends a payload that fails decoding or
	// validation to the dead-letter store with the reason; it reaches no
	// sink.
	OnInvalidDeadLetter = "dead_letter"
	// OnInvalidPass routes the message with no decoded payload, as the
	// pipeline does for undecodable JSON: rules using only topic and raw
	// fields still run.
	OnInvalidPass = "pass"
)

// Config binds payload decoders and validators to MQTT topic filters. A
// zero Config decodes every payload as JSON.
type Config struct {
	// Bindings are tried in order; the first whose topic filter matches a
	// message's topic decodes it. A topic no binding matches is decoded
	// as JSON. Default: none.
	Bindings []BindingConfig `koanf:"bindings"`
	// Sparkplug configures the state kept for Sparkplug B bindings.
	Sparkplug SparkplugConfig `koanf:"sparkplug"`
	// Descriptors are more Protobuf definitions, for rule targets with
	// encoding protobuf whose message type no binding decodes. The
	// bindings' own descriptors serve those targets too. Default: none.
	Descriptors []DescriptorConfig `koanf:"descriptors"`
}

// DescriptorConfig names Protobuf definitions: a descriptor set or .proto
// source files.
type DescriptorConfig struct {
	// DescriptorSet is the path of a FileDescriptorSet (.pb, .binpb), as
	// written by `protoc --include_imports -o` or `buf build -o`. One of
	// descriptor_set and files is required. Default: "".
	DescriptorSet string `koanf:"descriptor_set"`
	// Files are .proto source files compiled at load. Default: none.
	Files []string `koanf:"files"`
	// ImportPaths are the directories imports in Files are resolved
	// against. Default: the directory of each file.
	ImportPaths []string `koanf:"import_paths"`
}

// BindingConfig binds one decoder, and optionally a JSON Schema, to a
// topic filter.
type BindingConfig struct {
	// Topic is an MQTT topic filter (wildcards + and # allowed). Required.
	// Default: "".
	Topic string `koanf:"topic"`
	// Decoder is json, raw, msgpack, cbor, protobuf or sparkplugb. Raw
	// hands rules the payload bytes unchanged. Default: json.
	Decoder string `koanf:"decoder"`
	// Schema is the path of a JSON Schema file the decoded payload must
	// satisfy (any draft; compiled at load). It applies to every decoder
	// except raw. Default: "" (no validation).
	Schema string `koanf:"schema"`
	// OnInvalid is what happens to a payload that fails decoding or
	// validation: dead_letter or pass. Default: dead_letter.
	OnInvalid string `koanf:"on_invalid"`
	// Protobuf names the message type of the protobuf decoder.
	Protobuf ProtobufConfig `koanf:"protobuf"`
}

// ProtobufConfig names a protobuf message type and where its definition
// comes from: a descriptor set or .proto source files.
type ProtobufConfig struct {
	// Message is the fully qualified message name, e.g. acme.v1.Reading.
	// Required with decoder protobuf. Default: "".
	Message string `koanf:"message"`
	// DescriptorSet is the path of a FileDescriptorSet (.pb, .binpb), as
	// written by `protoc --include_imports -o` or `buf build -o`. One of
	// descriptor_set and files is required. Default: "".
	DescriptorSet string `koanf:"descriptor_set"`
	// Files are .proto source files compiled at load. Default: none.
	Files []string `koanf:"files"`
	// ImportPaths are the directories imports in Files are resolved
	// against. Default: the directory of each file.
	ImportPaths []string `koanf:"import_paths"`
}

// SparkplugConfig configures Sparkplug B state.
type SparkplugConfig struct {
	// StateDir holds one small file per edge node with the alias tables
	// of its last NBIRTH and DBIRTHs, so aliases resolve after a restart.
	// Default: "" (tables live in memory only).
	StateDir string `koanf:"state_dir"`
	// Rebirth requests a Rebirth NCMD from an edge node when one of its
	// messages uses an unknown alias, arrives out of sequence or comes
	// from a node whose birth was never seen. Default: true.
	Rebirth *bool `koanf:"rebirth"`
	// RebirthInterval is the least time between two rebirth requests to
	// the same edge node. Default: 10s.
	RebirthInterval time.Duration `koanf:"rebirth_interval"`
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	b := make([]BindingConfig, len(c.Bindings))
	for i, x := range c.Bindings {
		if x.Decoder == "" {
			x.Decoder = DecoderJSON
		}
		if x.OnInvalid == "" {
			x.OnInvalid = OnInvalidDeadLetter
		}
		b[i] = x
	}
	c.Bindings = b
	if c.Sparkplug.Rebirth == nil {
		t := true
		c.Sparkplug.Rebirth = &t
	}
	if c.Sparkplug.RebirthInterval == 0 {
		c.Sparkplug.RebirthInterval = 10 * time.Second
	}
	return c
}

// Validate reports every problem of c at once, each with its key path.
// It does not read files: New compiles schemas and descriptors.
func (c Config) Validate() []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	c = c.withDefaults()
	for i, b := range c.Bindings {
		key := fmt.Sprintf("bindings[%d]", i)
		if b.Topic == "" {
			bad("%s.topic: required", key)
		} else if !topic.ValidFilter([]byte(b.Topic)) {
			bad("%s.topic: invalid topic filter %q", key, b.Topic)
		}
		switch b.Decoder {
		case DecoderJSON, DecoderMsgpack, DecoderCBOR, DecoderSparkplugB:
		case DecoderRaw:
			if b.Schema != "" {
				bad("%s.schema: a raw payload cannot be validated against a JSON Schema", key)
			}
		case DecoderProtobuf:
			p := b.Protobuf
			if p.Message == "" {
				bad("%s.protobuf.message: required with decoder protobuf", key)
			}
			if (p.DescriptorSet == "") == (len(p.Files) == 0) {
				bad("%s.protobuf: exactly one of descriptor_set and files is required", key)
			}
		default:
			bad("%s.decoder: unknown decoder %q (want json, raw, msgpack, cbor, protobuf or sparkplugb)", key, b.Decoder)
		}
		if b.Decoder != DecoderProtobuf && (b.Protobuf.Message != "" || b.Protobuf.DescriptorSet != "" || len(b.Protobuf.Files) > 0) {
			bad("%s.protobuf: set but decoder is %s", key, b.Decoder)
		}
		if b.OnInvalid != OnInvalidDeadLetter && b.OnInvalid != OnInvalidPass {
			bad("%s.on_invalid: unknown policy %q (want dead_letter or pass)", key, b.OnInvalid)
		}
	}
	for i, d := range c.Descriptors {
		if (d.DescriptorSet == "") == (len(d.Files) == 0) {
			bad("descriptors[%d]: exactly one of descriptor_set and files is required", i)
		}
	}
	if c.Sparkplug.RebirthInterval < 0 {
		bad("sparkplug.rebirth_interval: negative duration %s", c.Sparkplug.RebirthInterval)
	}
	return errs
}
