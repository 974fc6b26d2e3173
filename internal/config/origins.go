package config

import (
	"regexp"
	"strings"
)

// origins maps a key path ("broker.listeners[0].address") to where its
// value came from: "file:line" or "env NAME". Paths with no entry hold
// defaults. Map keys are written with dots and list indexes in brackets,
// the same way errors print them.
type origins map[string]string

// set records src for path.
func (o origins) set(path, src string) { o[path] = src }

// replace records src for path and forgets everything recorded below it:
// an environment variable that replaces a list replaces its elements too.
func (o origins) replace(path, src string) {
	for k := range o {
		if isBelow(k, path) {
			delete(o, k)
		}
	}
	o[path] = src
}

// lookup returns the source of path. A path with no entry of its own (a
// required key missing from a list element, say) takes the source of its
// nearest ancestor, but never of a whole top-level section: a default
// value inside a section the file mentions did not come from the file.
func (o origins) lookup(path string) string {
	if src, ok := o[path]; ok {
		return src
	}
	for p := parentPath(path); strings.ContainsAny(p, ".["); p = parentPath(p) {
		if src, ok := o[p]; ok {
			return src
		}
	}
	return ""
}

// isBelow reports whether k is path or lies below it.
func isBelow(k, path string) bool {
	if !strings.HasPrefix(k, path) {
		return false
	}
	rest := k[len(path):]
	return rest == "" || rest[0] == '.' || rest[0] == '['
}

// parentPath strips the last key or index from path.
func parentPath(path string) string {
	if i := strings.LastIndexAny(path, ".["); i > 0 {
		return path[:i]
	}
	return ""
}

// bracketRE matches one bracketed path element, as mapstructure writes
// both list indexes ("[0]") and Go map keys ("[name]").
var bracketRE = regexp.MustCompile(`\[([^\]]*)\]`)

// normalizePath rewrites a mapstructure field name into our key path form:
// list indexes stay in brackets, map keys become dotted like struct fields.
func normalizePath(name string) string {
	return bracketRE.ReplaceAllStringFunc(name, func(m string) string {
		key := m[1 : len(m)-1]
		if isIndex(key) {
			return m
		}
		return "." + key
	})
}

// isIndex reports whether s is a non-negative decimal list index.
func isIndex(s string) bool {
	if s == "" || len(s) > 9 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
