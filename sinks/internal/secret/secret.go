// Package secret resolves ${NAME} references to environment variables in
// sink settings that hold secrets (HTTP header values, passwords, signing
// keys), so that a config file can name a secret without containing it.
package secret

import (
	"fmt"
	"strings"
)

// Expand replaces every ${NAME} in s with the value lookup returns for
// NAME. NAME is a letter or underscore followed by letters, digits and
// underscores; "$$" stands for a literal "$"; any other "$" is kept as
// is. A reference to a variable lookup does not know is an error, so a
// missing secret is caught at startup instead of sending an empty one.
func Expand(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '{':
		default:
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ at offset %d", i)
		}
		name := s[i+2 : i+2+end]
		if !validName(name) {
			return "", fmt.Errorf("invalid variable name %q", name)
		}
		v, ok := lookup(name)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		b.WriteString(v)
		i += 2 + end
	}
	return b.String(), nil
}

// Check reports the syntax errors Expand would report, without looking
// any variable up (for config validation, before the environment of the
// running process matters).
func Check(s string) error {
	_, err := Expand(s, func(string) (string, bool) { return "", true })
	return err
}

func validName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
