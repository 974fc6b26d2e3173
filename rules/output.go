package rules

// Body encodings accepted by TargetConfig.Encoding.
const (
	// EncodingJSON sends the body as the transform makes it: maps and
	// lists as JSON, strings and bytes as they are.
	EncodingJSON = "json"
	// EncodingProtobuf re-encodes the JSON body as a Protobuf message
	// (TargetConfig.Message), for consumers that expect one.
	EncodingProtobuf = "protobuf"
)

// Encoder re-encodes an output body. It is called on the routing
// goroutine and must be safe for concurrent use.
type Encoder interface {
	// Encode turns body (the JSON a transform made, or the raw payload
	// when the rule has no transform) into the target's format. An error
	// says why the body does not fit (an unknown field, a wrong type);
	// it dead-letters the message or skips the rule, by on_error.
	Encode(body []byte) ([]byte, error)
}

// Encoders finds the Encoder of an encoding and message type when rules
// are compiled (package schemas implements it from its descriptors). The
// error of an unknown type is reported at load with its file and line.
type Encoders interface {
	Encoder(encoding, message string) (Encoder, error)
}

// encoder compiles a target's encoding and message; nil means the body
// is sent as it is.
func (rc *ruleCompiler) encoder(p string, tc *TargetConfig) Encoder {
	switch tc.Encoding {
	case "", EncodingJSON:
		if tc.Message != "" {
			rc.fail(p+".message", "set only with encoding protobuf")
		}
		return nil
	case EncodingProtobuf:
		if tc.Message == "" {
			rc.fail(p+".message", "required with encoding protobuf")
			return nil
		}
		if rc.encoders == nil {
			return nil // not checked: rules loaded alone
		}
		enc, err := rc.encoders.Encoder(tc.Encoding, tc.Message)
		if err != nil {
			rc.fail(p+".message", "%v", err)
			return nil
		}
		return enc
	}
	rc.fail(p+".encoding", "%q: want json or protobuf", tc.Encoding)
	return nil
}

// encodeBody encodes one target's body: value, or the raw payload when
// the rule has no transform. The result is never nil (nil would mean
// the raw payload to a sink).
func encodeBody(enc Encoder, value []byte, e *env) ([]byte, error) {
	if value == nil {
		value = e.in.Msg.Payload
	}
	b, err := enc.Encode(value)
	if err != nil {
		return nil, err // the target's field names the step
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}
