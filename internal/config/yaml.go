package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxAliasDepth bounds alias expansion so a self-referencing document
// cannot recurse forever.
const maxAliasDepth = 32

// fileParser turns a YAML document into the nested map koanf layers, and
// records the line of every key so errors can point into the file.
type fileParser struct {
	name    string
	origins origins
	errs    []*Error
}

// parseFile parses data (named name in errors) into a map of sections. It
// records each key's line in origins and returns every problem it finds.
func parseFile(name string, data []byte, o origins) (map[string]any, []*Error) {
	p := &fileParser{name: name, origins: o}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return map[string]any{}, nil // empty file: defaults only
		}
		return nil, []*Error{p.syntaxError(err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return nil, []*Error{p.syntaxError(err)}
		}
		return nil, []*Error{{Msg: "more than one YAML document", Source: p.at(line)}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return map[string]any{}, nil
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return map[string]any{}, nil // a file holding only comments
	}
	if root.Kind != yaml.MappingNode {
		return nil, []*Error{{Msg: "top level must be a mapping of sections, got " + kindName(root), Source: p.at(root.Line)}}
	}
	m := p.mapping(root, "", 0)
	return m, p.errs
}

// yamlLineRE finds the line number in a yaml.v3 syntax error.
var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): `)

func (p *fileParser) syntaxError(err error) *Error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{Msg: "invalid YAML: " + msg[len(m[0]):], Source: p.at(line)}
	}
	return &Error{Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: "), Source: p.name}
}

func (p *fileParser) at(line int) string { return fmt.Sprintf("%s:%d", p.name, line) }

func (p *fileParser) fail(path string, line int, format string, args ...any) {
	p.errs = append(p.errs, &Error{Path: path, Msg: fmt.Sprintf(format, args...), Source: p.at(line)})
}

// value converts any node below the root.
func (p *fileParser) value(n *yaml.Node, path string, depth int) any {
	if n.Kind == yaml.AliasNode {
		if depth >= maxAliasDepth {
			p.fail(path, n.Line, "aliases nested too deeply")
			return nil
		}
		return p.value(n.Alias, path, depth+1)
	}
	switch n.Kind {
	case yaml.MappingNode:
		return p.mapping(n, path, depth)
	case yaml.SequenceNode:
		list := make([]any, len(n.Content))
		for i, item := range n.Content {
			ip := path + "[" + strconv.Itoa(i) + "]"
			p.origins.set(ip, p.at(item.Line))
			list[i] = p.value(item, ip, depth)
		}
		return list
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			p.fail(path, n.Line, "invalid value %q: %v", n.Value, err)
			return nil
		}
		return v
	}
	p.fail(path, n.Line, "unsupported YAML node")
	return nil
}

// mapping converts a mapping node. Keys are kept as written (the decoder
// matches them case-sensitively); a key repeated in one mapping is an
// error, and "<<" merge keys add only the keys not set explicitly.
func (p *fileParser) mapping(n *yaml.Node, path string, depth int) map[string]any {
	out := make(map[string]any, len(n.Content)/2)
	// Merged keys first, so that explicit keys override them.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			p.merge(out, n.Content[i+1], path, depth)
		}
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			continue
		}
		if k.Kind != yaml.ScalarNode {
			p.fail(path, k.Line, "keys must be scalars, got %s", kindName(k))
			continue
		}
		kp := k.Value
		if path != "" {
			kp = path + "." + k.Value
		}
		if first, dup := seen[k.Value]; dup {
			p.fail(kp, k.Line, "duplicate key (first set at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		p.origins.set(kp, p.at(k.Line))
		val := p.value(v, kp, depth)
		if val == nil && isNull(v) {
			// "key:" with no value means "use the default".
			delete(out, k.Value)
			continue
		}
		out[k.Value] = val
	}
	return out
}

// merge applies a "<<" merge key: a mapping, or a list of mappings.
func (p *fileParser) merge(out map[string]any, n *yaml.Node, path string, depth int) {
	if depth >= maxAliasDepth {
		p.fail(path, n.Line, "aliases nested too deeply")
		return
	}
	if n.Kind == yaml.AliasNode {
		p.merge(out, n.Alias, path, depth+1)
		return
	}
	switch n.Kind {
	case yaml.MappingNode:
		for k, v := range p.mapping(n, path, depth+1) {
			if _, set := out[k]; !set {
				out[k] = v
			}
		}
	case yaml.SequenceNode:
		for _, item := range n.Content {
			p.merge(out, item, path, depth+1)
		}
	default:
		p.fail(path, n.Line, "merge key << needs a mapping, got %s", kindName(n))
	}
}

func isNull(n *yaml.Node) bool {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "a document"
}
