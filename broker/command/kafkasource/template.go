package kafkasource

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A template is literal text with {{ placeholder }} parts, the same
// delimiters as the rules' topic templates. A placeholder names one part
// of the Kafka record (the rules' expression language does not apply: a
// record is not an MQTT message):
//
//	{{ key }}            the record key
//	{{ topic }}          the Kafka topic
//	{{ partition }}      the partition number
//	{{ header.NAME }}    the value of header NAME (the last one, if repeated)
//	{{ json.a.b }}       field b of object a of the JSON value; a numeric
//	                     segment indexes an array (json.items.0.id)
//
// A placeholder whose part is missing or empty fails the record.
type template struct {
	src   string
	parts []part
}

type partKind int

const (
	partLit partKind = iota
	partKey
	partTopic
	partPartition
	partHeader
	partJSON
)

// part is a literal (lit) or a placeholder (name and path).
type part struct {
	kind partKind
	lit  string   // partLit
	name string   // partHeader: the header name
	path []string // partJSON: the field path
	text string   // the placeholder as written, for errors
}

// compileTemplate parses src; errors name the column of the placeholder.
func compileTemplate(src string) (*template, error) {
	t := &template{src: src}
	rest, off := src, 0
	col := func(i int) int { return utf8.RuneCountInString(src[:i]) + 1 }
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			break
		}
		j := strings.Index(rest[i+2:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("unclosed {{ at column %d", col(off+i))
		}
		if i > 0 {
			t.parts = append(t.parts, part{kind: partLit, lit: rest[:i]})
		}
		p, err := parsePlaceholder(strings.TrimSpace(rest[i+2 : i+2+j]))
		if err != nil {
			return nil, fmt.Errorf("%w at column %d", err, col(off+i))
		}
		t.parts = append(t.parts, p)
		rest, off = rest[i+2+j+2:], off+i+2+j+2
	}
	if strings.Contains(rest, "}}") {
		return nil, fmt.Errorf("}} without {{ at column %d", col(off+strings.Index(rest, "}}")))
	}
	if rest != "" {
		t.parts = append(t.parts, part{kind: partLit, lit: rest})
	}
	return t, nil
}

func parsePlaceholder(s string) (part, error) {
	p := part{text: "{{" + s + "}}"}
	switch {
	case s == "":
		return p, errors.New("empty {{ }}")
	case s == "key":
		p.kind = partKey
	case s == "topic":
		p.kind = partTopic
	case s == "partition":
		p.kind = partPartition
	case strings.HasPrefix(s, "header."):
		p.kind, p.name = partHeader, s[len("header."):]
		if p.name == "" {
			return p, fmt.Errorf("%s: no header name", p.text)
		}
	case strings.HasPrefix(s, "json."):
		path, err := parsePath(s[len("json."):])
		if err != nil {
			return p, fmt.Errorf("%s: %w", p.text, err)
		}
		p.kind, p.path = partJSON, path
	default:
		return p, fmt.Errorf("unknown placeholder %s (want key, topic, partition, header.NAME or json.PATH)", p.text)
	}
	return p, nil
}

// parsePath splits a dotted JSON field path; no segment may be empty.
func parsePath(s string) ([]string, error) {
	path := strings.Split(s, ".")
	for _, seg := range path {
		if seg == "" {
			return nil, fmt.Errorf("empty segment in JSON path %q", s)
		}
	}
	return path, nil
}

// usesJSON reports whether rendering needs the value parsed as JSON.
func (t *template) usesJSON() bool {
	for _, p := range t.parts {
		if p.kind == partJSON {
			return true
		}
	}
	return false
}

// render fills the template from r.
func (t *template) render(r *recordView) (string, error) {
	if len(t.parts) == 1 && t.parts[0].kind == partLit {
		return t.parts[0].lit, nil
	}
	var b strings.Builder
	for _, p := range t.parts {
		v, err := r.placeholder(&p)
		if err != nil {
			return "", err
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// recordView is the part of a Kafka record templates read, with the
// value's top-level JSON object parsed at most once.
type recordView struct {
	topic     string
	partition int
	key       []byte
	headers   []header
	value     []byte
	root      map[string]json.RawMessage // parsed on first use
	rootErr   error
	parsed    bool
}

// header is one Kafka record header.
type header struct {
	Key   string
	Value []byte
}

// header returns the value of the last header named name.
func (r *recordView) header(name string) ([]byte, bool) {
	for i := len(r.headers) - 1; i >= 0; i-- {
		if r.headers[i].Key == name {
			return r.headers[i].Value, true
		}
	}
	return nil, false
}

func (r *recordView) placeholder(p *part) (string, error) {
	var v string
	switch p.kind {
	case partLit:
		return p.lit, nil
	case partKey:
		v = string(r.key)
	case partTopic:
		v = r.topic
	case partPartition:
		v = strconv.Itoa(r.partition)
	case partHeader:
		h, ok := r.header(p.name)
		if !ok {
			return "", fmt.Errorf("%s: record has no header %q", p.text, p.name)
		}
		v = string(h)
	case partJSON:
		raw, err := r.jsonField(p.path)
		if err != nil {
			return "", fmt.Errorf("%s: %w", p.text, err)
		}
		if v, err = scalarText(raw); err != nil {
			return "", fmt.Errorf("%s: %w", p.text, err)
		}
	}
	if v == "" {
		return "", fmt.Errorf("%s is empty", p.text)
	}
	return v, nil
}

// jsonField returns the raw JSON at path in the value.
func (r *recordView) jsonField(path []string) (json.RawMessage, error) {
	if !r.parsed {
		r.parsed = true
		if err := json.Unmarshal(r.value, &r.root); err != nil {
			r.rootErr = fmt.Errorf("value is not a JSON object: %w", err)
		}
	}
	if r.rootErr != nil {
		return nil, r.rootErr
	}
	raw, ok := r.root[path[0]]
	if !ok {
		return nil, fmt.Errorf("no field %q", path[0])
	}
	for i, seg := range path[1:] {
		where := strings.Join(path[:i+1], ".")
		switch firstByte(raw) {
		case '{':
			var m map[string]json.RawMessage
			if err := json.Unmarshal(raw, &m); err != nil {
				return nil, fmt.Errorf("field %s: %w", where, err)
			}
			if raw, ok = m[seg]; !ok {
				return nil, fmt.Errorf("no field %q in %s", seg, where)
			}
		case '[':
			n, err := strconv.Atoi(seg)
			if err != nil {
				return nil, fmt.Errorf("field %s is an array, %q is not an index", where, seg)
			}
			var a []json.RawMessage
			if err := json.Unmarshal(raw, &a); err != nil {
				return nil, fmt.Errorf("field %s: %w", where, err)
			}
			if n < 0 || n >= len(a) {
				return nil, fmt.Errorf("index %d out of range in %s (length %d)", n, where, len(a))
			}
			raw = a[n]
		default:
			return nil, fmt.Errorf("field %s is not an object or array", where)
		}
	}
	return raw, nil
}

func firstByte(raw json.RawMessage) byte {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// scalarText renders a JSON string, number or boolean as text; null,
// objects and arrays cannot name a device or topic.
func scalarText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	switch firstByte(raw) {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return s, nil
	case '{', '[':
		return "", errors.New("is an object or array, not a string, number or boolean")
	case 'n':
		return "", errors.New("is null")
	}
	return string(raw), nil // number or boolean, as written
}

// jsonPayload returns the payload the field at path holds: a string's
// text, anything else as its JSON.
func (r *recordView) jsonPayload(path []string) ([]byte, error) {
	raw, err := r.jsonField(path)
	if err != nil {
		return nil, err
	}
	raw = bytes.TrimSpace(raw)
	if firstByte(raw) == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []byte(s), nil
	}
	return raw, nil
}
