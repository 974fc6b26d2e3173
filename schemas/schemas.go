// Package schemas decodes MQTT payloads into the values rules see as
// `payload`: a decoder (JSON, raw, MessagePack, CBOR, Protobuf, Sparkplug B)
// and optionally a JSON Schema are bound to topic filters, compiled at load
// and applied once per message. A payload that fails decoding or validation
// is reported as an *InvalidError the pipeline dead-letters.
package schemas

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluicehq/sluice/broker/topic"
	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/rules"
	"github.com/sluicehq/sluice/schemas/sparkplug"
)

// InvalidError reports a payload that could not be decoded or did not
// satisfy its binding's schema. The pipeline reads it with errors.As: when
// DeadLetter is set the message goes to the dead-letter store with Error()
// as its reason and reaches no sink.
type InvalidError struct {
	// Binding is the topic filter of the binding that decoded the payload
	// ("" for the default JSON decoder).
	Binding string
	// Decoder is the binding's decoder name.
	Decoder string
	// Schema is the JSON Schema file, for a validation failure.
	Schema string
	// Path is the JSON pointer of the offending value, for a validation
	// failure ("" is the whole payload).
	Path string
	// Reason says what is wrong.
	Reason string
	// DeadLetter is the binding's policy: true for on_invalid dead_letter.
	DeadLetter bool
	// Err is the underlying decoder error, if any.
	Err error
}

// Error implements error.
func (e *InvalidError) Error() string {
	if e.Schema != "" {
		return fmt.Sprintf("validating payload against %s at %q: %s", e.Schema, e.Path, e.Reason)
	}
	return fmt.Sprintf("decoding %s payload: %s", e.Decoder, e.Reason)
}

// Unwrap returns the underlying decoder error.
func (e *InvalidError) Unwrap() error { return e.Err }

// DeadLetterPayload tells the pipeline to dead-letter the message instead
// of routing it (the binding's on_invalid: dead_letter).
func (e *InvalidError) DeadLetterPayload() bool { return e.DeadLetter }

// Options carries the collaborators of New.
type Options struct {
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Registerer receives the metrics; nil exports none.
	Registerer prometheus.Registerer
	// Rebirth is called when a Sparkplug edge node must be asked to
	// rebirth (see sparkplug.RebirthFunc); nil asks nobody.
	Rebirth sparkplug.RebirthFunc
	// PayloadKeys says which top-level fields the rules read
	// (rules.Holder.PayloadKeys): payloads no binding claims decode only
	// those. Default: nil, decode everything.
	PayloadKeys func() (keys []string, all bool)
}

type decodeFunc func(topic string, payload []byte) (any, error)

// recycleFunc is a decodeFunc building its value in recycled memory, given
// back by the Releaser (nil on error).
type recycleFunc func(topic string, payload []byte) (any, ingest.Releaser, error)

type binding struct {
	filter   string
	decoder  string
	decode   decodeFunc
	recycle  recycleFunc // nil: decode allocates afresh
	validate *validator
	dead     bool
	decErrs  prometheus.Counter
	valErrs  prometheus.Counter
}

// Decoders decodes payloads by topic. It implements ingest.Decoder and is
// safe for concurrent use.
type Decoders struct {
	json      rules.JSONDecoder // payloads no binding claims
	bindings  []binding
	sparkplug *sparkplug.Decoder
	// protoFiles are the Protobuf definitions of the bindings, then of
	// Config.Descriptors, searched in order for output message types.
	protoFiles []descriptorFinder
}

var (
	_ ingest.Decoder          = (*Decoders)(nil)
	_ ingest.RecyclingDecoder = (*Decoders)(nil)
	_ rules.Encoders          = (*Decoders)(nil)
)

// New validates cfg and compiles its schemas and protobuf descriptors. It
// reads those files but opens nothing that needs closing.
func New(cfg Config, opts Options) (*Decoders, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("invalid schemas config: %w", errors.Join(errs...))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	invalid := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_schemas_invalid_total",
		Help: "Payloads that failed decoding (stage=decode) or validation (stage=validate), by binding.",
	}, []string{"binding", "stage"})
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(invalid); err != nil {
			return nil, fmt.Errorf("registering schemas metrics: %w", err)
		}
	}
	d := &Decoders{json: rules.JSONDecoder{Keys: opts.PayloadKeys}}
	var errs []error
	for i, bc := range cfg.Bindings {
		key := fmt.Sprintf("schemas.bindings[%d]", i)
		b := binding{
			filter: bc.Topic, decoder: bc.Decoder, dead: bc.OnInvalid == OnInvalidDeadLetter,
			decErrs: invalid.WithLabelValues(bc.Topic, "decode"),
			valErrs: invalid.WithLabelValues(bc.Topic, "validate"),
		}
		switch bc.Decoder {
		case DecoderJSON:
			b.decode, b.recycle = decodeJSON, recycleJSON
			if bc.Schema == "" { // no schema reads the other fields
				b.decode, b.recycle = d.decodeJSONKeys, d.recycleJSONKeys
			}
		case DecoderRaw:
			b.decode = decodeRaw
		case DecoderMsgpack:
			b.decode = decodeMsgpack
		case DecoderCBOR:
			b.decode = decodeCBOR
		case DecoderProtobuf:
			pd, files, err := newProtobuf(bc.Protobuf)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.protobuf: %w", key, err))
				continue
			}
			b.decode = pd.decode
			d.protoFiles = append(d.protoFiles, files)
		case DecoderSparkplugB:
			if d.sparkplug == nil {
				sp, err := sparkplug.New(sparkplug.Options{
					StateDir:        cfg.Sparkplug.StateDir,
					Rebirth:         *cfg.Sparkplug.Rebirth,
					RebirthInterval: cfg.Sparkplug.RebirthInterval,
					OnRebirth:       opts.Rebirth,
					Logger:          opts.Logger.With("component", "sparkplug"),
					Registerer:      opts.Registerer,
				})
				if err != nil {
					return nil, fmt.Errorf("%s: %w", key, err)
				}
				d.sparkplug = sp
			}
			b.decode, b.recycle = d.sparkplug.Decode, d.recycleSparkplug
		}
		if bc.Schema != "" {
			v, err := compileSchema(bc.Schema)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.schema: %w", key, err))
				continue
			}
			b.validate = v
		}
		d.bindings = append(d.bindings, b)
	}
	for i, dc := range cfg.Descriptors {
		files, err := loadDescriptors(dc)
		if err != nil {
			errs = append(errs, fmt.Errorf("schemas.descriptors[%d]: %w", i, err))
			continue
		}
		d.protoFiles = append(d.protoFiles, files)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return d, nil
}

// Sparkplug returns the Sparkplug B decoder shared by every sparkplugb
// binding, or nil when there is none.
func (d *Decoders) Sparkplug() *sparkplug.Decoder { return d.sparkplug }

// Decode implements ingest.Decoder: the first binding whose filter matches
// topicName decodes the payload, JSON when none does. A failure is an
// *InvalidError.
func (d *Decoders) Decode(topicName string, payload []byte) (any, error) {
	v, _, err := d.decode(topicName, payload, false)
	return v, err
}

// DecodeRecycled implements ingest.RecyclingDecoder: Decode, building
// JSON and Sparkplug B payloads in recycled memory that r gives back.
func (d *Decoders) DecodeRecycled(topicName string, payload []byte) (v any, r ingest.Releaser, err error) {
	return d.decode(topicName, payload, true)
}

func (d *Decoders) decode(topicName string, payload []byte, recycle bool) (any, ingest.Releaser, error) {
	for i := range d.bindings {
		b := &d.bindings[i]
		if !topic.Match(b.filter, topicName) {
			continue
		}
		var v any
		var r ingest.Releaser
		var err error
		if recycle && b.recycle != nil {
			v, r, err = b.recycle(topicName, payload)
		} else {
			v, err = b.decode(topicName, payload)
		}
		if err != nil {
			b.decErrs.Inc()
			return nil, nil, &InvalidError{Binding: b.filter, Decoder: b.decoder, Reason: err.Error(), DeadLetter: b.dead, Err: err}
		}
		if b.validate != nil {
			if path, reason, ok := b.validate.check(v); !ok {
				if r != nil {
					r.Release() // path and reason are strings of their own
				}
				b.valErrs.Inc()
				return nil, nil, &InvalidError{Binding: b.filter, Decoder: b.decoder, Schema: b.validate.file,
					Path: path, Reason: reason, DeadLetter: b.dead}
			}
		}
		return v, r, nil
	}
	// No binding: the default JSON decoder (its not-JSON error is shared,
	// so binary payloads cost no error formatting).
	if recycle {
		return d.json.DecodeRecycled(topicName, payload)
	}
	v, err := d.json.Decode(topicName, payload)
	return v, nil, err
}

func decodeJSON(_ string, payload []byte) (any, error) {
	return rules.DecodeJSON(payload)
}

// decodeJSONKeys decodes, of an object, only the top-level members the
// rules read (Options.PayloadKeys), and checks the rest is valid JSON.
func (d *Decoders) decodeJSONKeys(_ string, payload []byte) (any, error) {
	return d.json.Value(payload)
}

func recycleJSON(_ string, payload []byte) (any, ingest.Releaser, error) {
	s := rules.NewScratch()
	v, err := s.DecodeJSON(payload)
	return inScratch(s, v, err)
}

func (d *Decoders) recycleJSONKeys(_ string, payload []byte) (any, ingest.Releaser, error) {
	s := rules.NewScratch()
	v, err := d.json.ValueIn(payload, s)
	return inScratch(s, v, err)
}

// inScratch returns v, decoded in s, with s as its Releaser; on error it
// releases s.
func inScratch(s *rules.Scratch, v any, err error) (any, ingest.Releaser, error) {
	if err != nil {
		s.Release()
		return nil, nil, err
	}
	return v, s, nil
}

func (d *Decoders) recycleSparkplug(topicName string, payload []byte) (any, ingest.Releaser, error) {
	v, s, err := d.sparkplug.DecodeScratch(topicName, payload)
	if s == nil {
		return v, nil, err // no nil *Scratch in a non-nil Releaser
	}
	return v, s, err
}

// recycled runs decode into a new Scratch, released on error.
func recycled(decode func(*rules.Scratch) (any, error)) (any, ingest.Releaser, error) {
	s := rules.NewScratch()
	v, err := decode(s)
	if err != nil {
		s.Release()
		return nil, nil, err
	}
	return v, s, nil
}

func decodeRaw(_ string, payload []byte) (any, error) { return payload, nil }
