package schemas

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/sluicehq/sluice/rules"
)

// Encoder implements rules.Encoders: it finds the message type of a rule
// target with encoding protobuf among the Protobuf definitions of the
// bindings, then of Config.Descriptors, in configuration order. It is
// called when rules are compiled, never per message.
func (d *Decoders) Encoder(encoding, message string) (rules.Encoder, error) {
	if encoding != rules.EncodingProtobuf {
		return nil, fmt.Errorf("unknown encoding %q (want protobuf)", encoding)
	}
	for _, files := range d.protoFiles {
		md, err := findMessage(files, message)
		if errors.Is(err, protoregistry.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &protobufEncoder{md: md}, nil
	}
	if len(d.protoFiles) == 0 {
		return nil, fmt.Errorf("unknown Protobuf message type %q: no Protobuf definitions are configured (schemas.descriptors or a protobuf binding)", message)
	}
	return nil, fmt.Errorf("unknown Protobuf message type %q: not in the definitions of schemas.descriptors or the protobuf bindings", message)
}

// protobufEncoder encodes JSON bodies as one message type.
type protobufEncoder struct {
	md protoreflect.MessageDescriptor
}

// Encode reads body as protojson (field names as in the .proto or in
// lowerCamelCase, enums by name or number, 64-bit integers as numbers or
// strings) and returns the message's wire encoding. An unknown field, a
// value of the wrong type or a missing required field is an error.
func (e *protobufEncoder) Encode(body []byte) ([]byte, error) {
	m := dynamicpb.NewMessage(e.md)
	if err := protojson.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("encoding %s: %w", e.md.FullName(), err)
	}
	b, err := proto.MarshalOptions{}.MarshalAppend(make([]byte, 0, len(body)/2), m)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", e.md.FullName(), err)
	}
	return b, nil
}
