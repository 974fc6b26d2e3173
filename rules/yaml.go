package rules

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// source records where a rule came from, so that every error can name a
// file and line.
type source struct {
	file  string         // "" when the rule came from decoded config
	path  string         // key path when file is unknown: "rules[3]"
	line  int            // line of the rule itself
	lines map[string]int // field path ("when", "to[0].topic") -> line
	lets  []string       // let names in source order
}

// lineOf returns the line of field, else of its closest parent
// ("to[2].republish.topic", "to[2].republish", "to[2]", "to"), else the
// rule's line.
func (s *source) lineOf(field string) int {
	for field != "" {
		if l, ok := s.lines[field]; ok {
			return l
		}
		i := strings.LastIndexAny(field, ".[")
		if i < 0 {
			break
		}
		field = field[:i]
	}
	return s.line
}

// errorf builds an Error for field of rule.
func (s *source) errorf(rule, field, format string, args ...any) *Error {
	return &Error{File: s.file, Line: s.lineOf(field), Path: s.path, Rule: rule, Field: field,
		Msg: fmt.Sprintf(format, args...)}
}

// ruleInput is one rule to compile and where it came from.
type ruleInput struct {
	cfg RuleConfig
	src source
}

// parseRuleFile decodes a rules file: either a list of rules or a mapping
// whose only key is `rules`. Every problem is reported, with its line.
func parseRuleFile(file string, data []byte) ([]ruleInput, []error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, []error{&Error{File: file, Msg: fmt.Sprintf("parsing YAML: %v", err), Err: err}}
	}
	if len(doc.Content) == 0 {
		return nil, nil // empty file
	}
	root := doc.Content[0]
	var errs []error
	if root.Kind == yaml.MappingNode {
		var list *yaml.Node
		for i := 0; i+1 < len(root.Content); i += 2 {
			k := root.Content[i]
			if k.Value == "rules" {
				list = root.Content[i+1]
				continue
			}
			errs = append(errs, &Error{File: file, Line: k.Line, Msg: fmt.Sprintf("unknown key %q (want rules)", k.Value)})
		}
		if list == nil {
			return nil, errs
		}
		root = list
	}
	ins, more := decodeRuleList(file, root)
	return ins, append(errs, more...)
}

// rulesNodeOf finds the top-level `rules` list of a main config file,
// ignoring the other sections; nil when there is none.
func rulesNodeOf(data []byte) *yaml.Node {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "rules" {
			return root.Content[i+1]
		}
	}
	return nil
}

// decodeRuleList decodes a sequence of rule mappings.
func decodeRuleList(file string, n *yaml.Node) ([]ruleInput, []error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, []error{&Error{File: file, Line: n.Line, Msg: "rules: want a list of rules"}}
	}
	var (
		ins  []ruleInput
		errs []error
	)
	for i, rn := range n.Content {
		in, es := decodeRule(file, i, rn)
		ins = append(ins, in)
		errs = append(errs, es...)
	}
	return ins, errs
}

// decoder accumulates the errors of one rule's decoding.
type decoder struct {
	src  *source
	name string
	errs []error
}

func (d *decoder) fail(field string, line int, format string, args ...any) {
	e := d.src.errorf(d.name, field, format, args...)
	e.Line = line
	d.errs = append(d.errs, e)
}

// decodeRule decodes one rule mapping, recording the line of every field.
func decodeRule(file string, index int, n *yaml.Node) (ruleInput, []error) {
	in := ruleInput{src: source{file: file, path: fmt.Sprintf("rules[%d]", index), line: n.Line, lines: map[string]int{}}}
	d := &decoder{src: &in.src}
	if n.Kind != yaml.MappingNode {
		d.fail("", n.Line, "want a mapping (name, topics, when, let, transform, to...)")
		return in, d.errs
	}
	// The name comes first so every other error can name the rule.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "name" {
			d.name = d.scalar("name", n.Content[i+1])
		}
	}
	c := &in.cfg
	c.Name = d.name
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		in.src.lines[k.Value] = v.Line
		switch k.Value {
		case "name":
		case "description":
			c.Description = d.scalar("description", v)
		case "topics":
			c.Topics = d.strings("topics", v)
		case "when":
			c.When = d.scalar("when", v)
		case "let":
			c.Let = d.lets(v)
		case "transform":
			c.Transform = d.scalar("transform", v)
		case "durability":
			c.Durability = d.scalar("durability", v)
		case "on_error":
			c.OnError = d.scalar("on_error", v)
		case "to":
			c.To = d.targets(v)
		default:
			d.fail(k.Value, k.Line, "unknown key (want name, description, topics, when, let, transform, durability, on_error, to)")
		}
	}
	return in, d.errs
}

// scalar returns a scalar's text; expressions such as `true` or `42` are
// taken as written.
func (d *decoder) scalar(field string, v *yaml.Node) string {
	if v.Kind != yaml.ScalarNode {
		d.fail(field, v.Line, "want a string")
		return ""
	}
	if v.Tag == "!!null" {
		return ""
	}
	return v.Value
}

// strings decodes a list of strings; a single string is a list of one.
func (d *decoder) strings(field string, v *yaml.Node) []string {
	if v.Kind == yaml.ScalarNode {
		if s := d.scalar(field, v); s != "" {
			d.src.lines[field+"[0]"] = v.Line
			return []string{s}
		}
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		d.fail(field, v.Line, "want a list of strings")
		return nil
	}
	out := make([]string, 0, len(v.Content))
	for i, e := range v.Content {
		f := field + "[" + strconv.Itoa(i) + "]"
		d.src.lines[f] = e.Line
		out = append(out, d.scalar(f, e))
	}
	return out
}

// lets decodes the let mapping, keeping the source order.
func (d *decoder) lets(v *yaml.Node) map[string]string {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		d.fail("let", v.Line, "want a mapping of name: expression")
		return nil
	}
	out := make(map[string]string, len(v.Content)/2)
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, e := v.Content[i], v.Content[i+1]
		f := "let." + k.Value
		d.src.lines[f] = e.Line
		if _, dup := out[k.Value]; dup {
			d.fail(f, k.Line, "duplicate let name")
			continue
		}
		out[k.Value] = d.scalar(f, e)
		d.src.lets = append(d.src.lets, k.Value)
	}
	return out
}

// targets decodes the `to` list.
func (d *decoder) targets(v *yaml.Node) []TargetConfig {
	if v.Kind != yaml.SequenceNode {
		d.fail("to", v.Line, "want a list of targets")
		return nil
	}
	out := make([]TargetConfig, 0, len(v.Content))
	for i, tn := range v.Content {
		p := "to[" + strconv.Itoa(i) + "]"
		d.src.lines[p] = tn.Line
		var t TargetConfig
		if tn.Kind != yaml.MappingNode {
			d.fail(p, tn.Line, "want a mapping (sink, topic, key or republish)")
			out = append(out, t)
			continue
		}
		for j := 0; j+1 < len(tn.Content); j += 2 {
			k, e := tn.Content[j], tn.Content[j+1]
			f := p + "." + k.Value
			d.src.lines[f] = e.Line
			switch k.Value {
			case "sink":
				t.Sink = d.scalar(f, e)
			case "topic":
				t.Topic = d.scalar(f, e)
			case "key":
				t.Key = d.scalar(f, e)
			case "republish":
				t.Republish = d.republish(f, e)
			case "encoding":
				t.Encoding = d.scalar(f, e)
			case "message":
				t.Message = d.scalar(f, e)
			case "columns":
				t.Columns = d.columns(f, e)
			default:
				d.fail(f, k.Line, "unknown key (want sink, topic, key, republish, encoding, message or columns)")
			}
		}
		out = append(out, t)
	}
	return out
}

// republish decodes a republish target.
func (d *decoder) republish(p string, v *yaml.Node) *RepublishConfig {
	if v.Kind != yaml.MappingNode {
		d.fail(p, v.Line, "want a mapping (topic, qos, retain)")
		return nil
	}
	r := &RepublishConfig{}
	for j := 0; j+1 < len(v.Content); j += 2 {
		k, e := v.Content[j], v.Content[j+1]
		f := p + "." + k.Value
		d.src.lines[f] = e.Line
		switch k.Value {
		case "topic":
			r.Topic = d.scalar(f, e)
		case "qos":
			q, err := strconv.Atoi(d.scalar(f, e))
			if err != nil {
				d.fail(f, e.Line, "want 0, 1 or 2")
			}
			r.QoS = q
		case "retain":
			b, err := strconv.ParseBool(d.scalar(f, e))
			if err != nil {
				d.fail(f, e.Line, "want true or false")
			}
			r.Retain = b
		default:
			d.fail(f, k.Line, "unknown key (want topic, qos or retain)")
		}
	}
	return r
}
