package schemas

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// protobufDecoder decodes one message type dynamically.
type protobufDecoder struct {
	md protoreflect.MessageDescriptor
}

// descriptorFinder is what both a descriptor set and compiled sources give.
type descriptorFinder interface {
	FindDescriptorByName(protoreflect.FullName) (protoreflect.Descriptor, error)
}

// newProtobuf loads the message type named by c from its descriptor set or
// compiles it from .proto sources. It returns the files too: their other
// message types serve output encoding.
func newProtobuf(c ProtobufConfig) (*protobufDecoder, descriptorFinder, error) {
	finder, err := loadDescriptors(DescriptorConfig{DescriptorSet: c.DescriptorSet, Files: c.Files, ImportPaths: c.ImportPaths})
	if err != nil {
		return nil, nil, err
	}
	md, err := findMessage(finder, c.Message)
	if err != nil {
		return nil, nil, err
	}
	return &protobufDecoder{md: md}, finder, nil
}

// loadDescriptors reads a descriptor set or compiles .proto sources.
func loadDescriptors(c DescriptorConfig) (descriptorFinder, error) {
	if c.DescriptorSet != "" {
		b, err := os.ReadFile(c.DescriptorSet)
		if err != nil {
			return nil, fmt.Errorf("reading descriptor set: %w", err)
		}
		var set descriptorpb.FileDescriptorSet
		if err := proto.Unmarshal(b, &set); err != nil {
			return nil, fmt.Errorf("parsing descriptor set %s: %w", c.DescriptorSet, err)
		}
		files, err := protodesc.NewFiles(&set)
		if err != nil {
			return nil, fmt.Errorf("linking descriptor set %s (built with --include_imports?): %w", c.DescriptorSet, err)
		}
		return files, nil
	}
	res, names, err := protoSources(c)
	if err != nil {
		return nil, err
	}
	comp := protocompile.Compiler{Resolver: protocompile.WithStandardImports(res)}
	files, err := comp.Compile(context.Background(), names...)
	if err != nil {
		return nil, fmt.Errorf("compiling .proto files: %w", err)
	}
	return files.AsResolver(), nil
}

// findMessage looks the message type name up in finder.
func findMessage(finder descriptorFinder, name string) (protoreflect.MessageDescriptor, error) {
	d, err := finder.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		return nil, fmt.Errorf("finding message %s: %w", name, err)
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil, fmt.Errorf("finding message %s: it is not a message", name)
	}
	return md, nil
}

// protoSources maps the configured files to names relative to the import
// paths (each file's own directory when none are configured).
func protoSources(c DescriptorConfig) (*protocompile.SourceResolver, []string, error) {
	paths := c.ImportPaths
	names := make([]string, 0, len(c.Files))
	if len(paths) == 0 {
		seen := map[string]bool{}
		for _, f := range c.Files {
			dir := filepath.Dir(f)
			if !seen[dir] {
				seen[dir] = true
				paths = append(paths, dir)
			}
			names = append(names, filepath.Base(f))
		}
		return &protocompile.SourceResolver{ImportPaths: paths}, names, nil
	}
	for _, f := range c.Files {
		name := ""
		for _, p := range paths {
			if rel, err := filepath.Rel(p, f); err == nil && !strings.HasPrefix(rel, "..") {
				name = filepath.ToSlash(rel)
				break
			}
		}
		if name == "" {
			return nil, nil, fmt.Errorf("locating %s: not under any import path", f)
		}
		names = append(names, name)
	}
	return &protocompile.SourceResolver{ImportPaths: paths}, names, nil
}

// decode unmarshals payload (required fields enforced) and converts it to
// a map keyed by the fields' JSON names, as protojson would name them.
func (p *protobufDecoder) decode(_ string, payload []byte) (any, error) {
	m := dynamicpb.NewMessage(p.md)
	if err := proto.Unmarshal(payload, m); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", p.md.FullName(), err)
	}
	return messageMap(m), nil
}

// messageMap converts the populated fields of m.
func messageMap(m protoreflect.Message) map[string]any {
	out := make(map[string]any, m.Descriptor().Fields().Len())
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			l := v.List()
			a := make([]any, l.Len())
			for i := range a {
				a[i] = scalarValue(fd, l.Get(i))
			}
			out[fd.JSONName()] = a
		case fd.IsMap():
			mm := make(map[string]any, v.Map().Len())
			vd := fd.MapValue()
			v.Map().Range(func(k protoreflect.MapKey, e protoreflect.Value) bool {
				mm[k.String()] = scalarValue(vd, e)
				return true
			})
			out[fd.JSONName()] = mm
		default:
			out[fd.JSONName()] = scalarValue(fd, v)
		}
		return true
	})
	return out
}

// scalarValue converts one singular value of field fd.
func scalarValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return v.Bool()
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return v.Int()
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return normUint(v.Uint())
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return v.Float()
	case protoreflect.StringKind:
		return v.String()
	case protoreflect.BytesKind:
		return v.Bytes()
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return int64(v.Enum())
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return messageMap(v.Message())
	}
	return nil
}
