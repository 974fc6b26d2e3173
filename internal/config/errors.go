package config

import (
	"regexp"
	"strings"
)

// Error is one configuration problem: the key path it concerns, what is
// wrong, and where the offending value came from.
type Error struct {
	// Path is the key path, e.g. "broker.listeners[0].address". Empty for
	// problems with the file as a whole (such as a YAML syntax error).
	Path string
	// Msg says what is wrong, e.g. `cannot parse "abc" as uint32`.
	Msg string
	// Source is where the value came from: "file:line" for the config
	// file, "env NAME" for an environment variable, empty for defaults.
	Source string
}

// Error formats e as "path: msg (source)", leaving out empty parts.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Source != "" {
		b.WriteString(" (")
		b.WriteString(e.Source)
		b.WriteString(")")
	}
	return b.String()
}

// Errors is every problem Load found. It is returned as a single error;
// use errors.As to get at the individual problems.
type Errors []*Error

// Error lists the problems one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual problems.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// keyPathRE matches a key path such as "listeners[0].address" at the start
// of a Validate error, which is how sections report what a problem is about.
var keyPathRE = regexp.MustCompile(`^[A-Za-z0-9_\-]+(\[[^\]]*\])*(\.[A-Za-z0-9_\-]+(\[[^\]]*\])*)*$`)

// splitValidateError splits a section's Validate error "path: msg" into its
// key path (relative to the section) and message. An error without a path
// prefix concerns the section as a whole.
func splitValidateError(err error) (rel, msg string) {
	s := err.Error()
	before, after, ok := strings.Cut(s, ": ")
	if ok && keyPathRE.MatchString(before) {
		return before, after
	}
	return "", s
}

// joinPath appends a relative key path to a section name.
func joinPath(section, rel string) string {
	switch {
	case rel == "":
		return section
	case strings.HasPrefix(rel, "["):
		return section + rel
	default:
		return section + "." + rel
	}
}
