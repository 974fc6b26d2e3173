// Package docs renders Sluice's configuration reference as Markdown. The
// reference is written once, as the config structs' doc comments:
// internal/config.Reference turns them into cmd/sluice/sluice.default.yaml
// (kept fresh by cmd/sluice's TestDefaultFile), and this package turns
// that file into configuration.md (kept fresh by TestConfigurationPage).
package docs

import (
	"bytes"
	"fmt"
	"strings"
)

// Key is one configuration key of the reference.
type Key struct {
	// Path is the key's full path: "broker.listeners[].address",
	// "sinks.<name>.kafka.brokers".
	Path string
	// Default is the default value as the YAML reference writes it; ""
	// for a key holding other keys.
	Default string
	// Doc is the key's doc comment, joined into one paragraph.
	Doc string
	// Depth is 0 for a section, 1 for its keys, and so on.
	Depth int
}

// ParseReference reads a YAML reference written by
// internal/config.Reference: a header of comment lines, then every key
// preceded by its doc comment, and "# Each element:" blocks documenting
// the elements of empty lists ("- ") and maps ("<name>: ") as
// commented-out YAML. It returns the keys in file order and the header.
func ParseReference(yaml []byte) (keys []Key, header []string, err error) {
	lines := strings.Split(strings.ReplaceAll(string(yaml), "\r\n", "\n"), "\n")
	i := 0
	for ; i < len(lines) && strings.HasPrefix(lines[i], "#"); i++ {
		header = append(header, strings.TrimPrefix(strings.TrimPrefix(lines[i], "#"), " "))
	}
	keys, err = parseBlock(lines[i:], "", 0)
	if err != nil {
		return nil, nil, err
	}
	return dedupe(keys), header, nil
}

// frame is an open key holding other keys, or a list element.
type frame struct {
	indent int
	path   string
	item   bool // a list element, which adds no depth
}

// parseBlock parses YAML lines whose keys extend prefix, at depth base.
func parseBlock(lines []string, prefix string, base int) ([]Key, error) {
	var keys []Key
	var doc []string
	var stack []frame
	parentPath := func() string {
		if len(stack) == 0 {
			return prefix
		}
		return stack[len(stack)-1].path
	}
	depth := func() int {
		d := base
		for _, f := range stack {
			if !f.item {
				d++
			}
		}
		return d
	}
	pop := func(indent int) {
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
	}
	for i := 0; i < len(lines); i++ {
		raw := lines[i]
		text := strings.TrimLeft(raw, " ")
		indent := len(raw) - len(text)
		switch {
		case text == "":
			doc = nil
			continue
		case text == "# Each element:":
			if len(keys) == 0 {
				return nil, fmt.Errorf("line %q: an element block with no key before it", raw)
			}
			lead := raw[:indent] + "# "
			var block []string
			for i+1 < len(lines) && strings.HasPrefix(lines[i+1], lead+"  ") {
				block = append(block, strings.TrimPrefix(lines[i+1], lead))
				i++
			}
			suffix, err := unmark(block)
			if err != nil {
				return nil, fmt.Errorf("element block of %s: %w", keys[len(keys)-1].Path, err)
			}
			owner := keys[len(keys)-1]
			sub, err := parseBlock(block, owner.Path+suffix, owner.Depth+1)
			if err != nil {
				return nil, err
			}
			keys = append(keys, sub...)
			doc = nil
			continue
		case strings.HasPrefix(text, "#"):
			doc = append(doc, strings.TrimPrefix(strings.TrimPrefix(text, "#"), " "))
			continue
		}
		if rest, ok := strings.CutPrefix(text, "- "); ok {
			// A list element: its keys sit two columns right of the dash.
			pop(indent + 1)
			if !strings.Contains(rest, ": ") && !strings.HasSuffix(rest, ":") {
				// A scalar element: part of its list's default.
				if n := len(keys); n > 0 && keys[n-1].Path == parentPath() {
					keys[n-1].Default = joinDefault(keys[n-1].Default, rest)
				}
				continue
			}
			stack = append(stack, frame{indent: indent + 1, path: parentPath() + "[]", item: true})
			text, indent = rest, indent+2
		}
		name, value, ok := strings.Cut(text, ":")
		if !ok {
			return nil, fmt.Errorf("line %q: want key: value", raw)
		}
		pop(indent)
		path := name
		if p := parentPath(); p != "" {
			path = p + "." + name
		}
		value = strings.TrimSpace(value)
		keys = append(keys, Key{Path: path, Default: value, Doc: strings.Join(doc, " "), Depth: depth()})
		doc = nil
		if value == "" {
			stack = append(stack, frame{indent: indent, path: path})
		}
	}
	return keys, nil
}

// unmark removes the element marker ("- " or "<name>: ") from the first
// key line of an element block, keeping its columns, and returns the
// path suffix it stands for.
func unmark(block []string) (string, error) {
	for i, l := range block {
		text := strings.TrimLeft(l, " ")
		if strings.HasPrefix(text, "#") {
			continue
		}
		lead := l[:len(l)-len(text)]
		switch {
		case strings.HasPrefix(text, "- "):
			block[i] = lead + "  " + text[2:]
			return "[]", nil
		case strings.HasPrefix(text, "<name>: "):
			block[i] = lead + strings.Repeat(" ", len("<name>: ")) + text[len("<name>: "):]
			return ".<name>", nil
		}
		return "", fmt.Errorf("first key %q has no element marker", text)
	}
	return "", fmt.Errorf("no key")
}

// joinDefault appends a scalar list element to a list's default.
func joinDefault(list, elem string) string {
	if list == "" || list == "[]" {
		return "[" + elem + "]"
	}
	return strings.TrimSuffix(list, "]") + ", " + elem + "]"
}

// dedupe keeps the first key of each path: a default list of several
// elements documents the element's keys once.
func dedupe(keys []Key) []Key {
	seen := map[string]bool{}
	out := keys[:0]
	for _, k := range keys {
		if !seen[k.Path] {
			seen[k.Path] = true
			out = append(out, k)
		}
	}
	return out
}

// Markdown renders keys as a page: intro first, then one section per
// top-level key with its doc and a table of its keys.
func Markdown(keys []Key, intro string) []byte {
	var b bytes.Buffer
	b.WriteString(strings.TrimRight(intro, "\n") + "\n\n")
	var sections []string
	for _, k := range keys {
		if k.Depth == 0 {
			sections = append(sections, fmt.Sprintf("[`%s`](#%s)", k.Path, k.Path))
		}
	}
	b.WriteString("Sections: " + strings.Join(sections, " · ") + "\n")
	for i, k := range keys {
		if k.Depth != 0 {
			continue
		}
		fmt.Fprintf(&b, "\n## %s\n\n", k.Path)
		if k.Doc != "" {
			b.WriteString(escape(k.Doc) + "\n\n")
		}
		if k.Default != "" {
			fmt.Fprintf(&b, "Default: `%s`.\n\n", k.Default)
		}
		rows := 0
		for _, c := range keys[i+1:] {
			if c.Depth == 0 {
				break
			}
			if rows == 0 {
				b.WriteString("| Key | Default | Description |\n|---|---|---|\n")
			}
			rows++
			def, doc := splitDefault(c)
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", c.Path, def, escape(doc))
		}
	}
	return b.Bytes()
}

// splitDefault returns the Default cell of k and the rest of its doc.
// A doc ending in "Default: X." documents the default; X goes to the
// cell and leaves the description. Otherwise the cell holds the value
// the YAML reference writes, except inside list elements and map entries
// ("[]", "<name>"), whose written values are placeholders.
func splitDefault(k Key) (cell, doc string) {
	if i := strings.LastIndex(k.Doc, "Default: "); i >= 0 && strings.HasSuffix(k.Doc, ".") {
		def := strings.TrimSuffix(k.Doc[i+len("Default: "):], ".")
		return escape(def), strings.TrimSpace(k.Doc[:i])
	}
	if k.Default == "" || strings.Contains(k.Path, "[]") || strings.Contains(k.Path, "<name>") {
		return "", k.Doc
	}
	return "`" + strings.ReplaceAll(k.Default, "|", `\|`) + "`", k.Doc
}

// escape makes doc text safe in a table cell: pipes escaped, and angle
// brackets outside code spans written as entities so that Markdown does
// not take "<KEY>" for an HTML tag.
func escape(s string) string {
	var b strings.Builder
	code := false
	for _, r := range s {
		switch {
		case r == '`':
			code = !code
			b.WriteRune(r)
		case r == '|':
			b.WriteString(`\|`)
		case r == '<' && !code:
			b.WriteString("&lt;")
		case r == '>' && !code:
			b.WriteString("&gt;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
