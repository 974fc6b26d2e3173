// Package topic validates MQTT topic names and filters, matches names against
// filters, and indexes subscriptions (Tree) and retained messages (Retained)
// in level tries so that routing a PUBLISH costs one walk of its topic levels
// rather than a scan of every subscription.
//
// Spec statements are cited as [MQTT-x.y.z-n] from MQTT 3.1.1 and 5.0, whose
// topic rules are identical except for shared subscriptions (5.0 only).
package topic

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// MaxLen is the longest topic name or filter in bytes: both are UTF-8 strings
// with a two-byte length prefix [MQTT-4.7.3-3].
const MaxLen = 65535

// SharePrefix starts every shared subscription filter [MQTT-4.8.2-1].
const SharePrefix = "$share/"

// ErrInvalidShared is wrapped by ParseShared errors so callers can map a
// malformed shared filter to reason code 0x8F (Topic Filter invalid).
var ErrInvalidShared = errors.New("invalid shared subscription filter")

// ValidName reports whether b is a valid PUBLISH topic name: 1 to MaxLen
// bytes [MQTT-4.7.3-1, -3] of valid UTF-8 without U+0000 [MQTT-4.7.3-2] and
// without the wildcards '+' and '#' [MQTT-4.7.1-1].
func ValidName(b []byte) bool {
	return validName(view(b))
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > MaxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == 0 || c == '+' || c == '#' {
			return false
		}
	}
	return utf8.ValidString(s)
}

// view returns b as a string without copying. The result must not outlive
// the call it is passed to, nor be retained, since b may be reused.
func view(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// ValidFilter reports whether b is a valid subscription filter: 1 to MaxLen
// bytes of valid UTF-8 without U+0000, where '+' occupies a whole level
// [MQTT-4.7.1-3] and '#' occurs only as the whole last level [MQTT-4.7.1-2].
// A "$share/{group}/{filter}" filter is valid when ParseShared accepts it and
// its inner filter is valid.
func ValidFilter(b []byte) bool {
	f := view(b)
	if _, inner, ok, err := ParseShared(f); ok {
		return err == nil && validPlainFilter(inner)
	}
	return validPlainFilter(f)
}

// validPlainFilter checks a filter without the $share/{group}/ prefix.
func validPlainFilter(f string) bool {
	if len(f) == 0 || len(f) > MaxLen {
		return false
	}
	levelStart := 0
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case 0:
			return false
		case '/':
			levelStart = i + 1
		case '+':
			if i != levelStart || (i+1 < len(f) && f[i+1] != '/') {
				return false
			}
		case '#':
			if i != levelStart || i != len(f)-1 {
				return false
			}
		}
	}
	return utf8.ValidString(f)
}

// ParseShared splits a shared subscription filter "$share/{group}/{filter}".
// ok is false (and err nil) when f does not start with "$share/". err wraps
// ErrInvalidShared when the group is empty [MQTT-4.8.2-1], contains '+' or
// '#' [MQTT-4.8.2-2], or is not followed by '/' and a non-empty filter
// [MQTT-4.8.2-2]. The inner filter itself is checked by ValidFilter, not here.
func ParseShared(f string) (group, filter string, ok bool, err error) {
	if !strings.HasPrefix(f, SharePrefix) {
		return "", "", false, nil
	}
	rest := f[len(SharePrefix):]
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return "", "", true, fmt.Errorf("parsing %q: share name not followed by '/': %w", f, ErrInvalidShared)
	}
	group, filter = rest[:i], rest[i+1:]
	switch {
	case group == "":
		return "", "", true, fmt.Errorf("parsing %q: empty share name: %w", f, ErrInvalidShared)
	case strings.ContainsAny(group, "+#"):
		return "", "", true, fmt.Errorf("parsing %q: share name contains a wildcard: %w", f, ErrInvalidShared)
	case filter == "":
		return "", "", true, fmt.Errorf("parsing %q: missing topic filter: %w", f, ErrInvalidShared)
	}
	return group, filter, true, nil
}

// Match reports whether topic name matches filter. A filter whose first
// level is a wildcard does not match a name starting with '$'
// [MQTT-4.7.2-1]. A shared filter matches as its inner filter. Invalid
// filters and names match nothing. Match is the reference the Tree and
// Retained indexes are fuzzed against; it does not allocate.
func Match(filter, name string) bool {
	if _, inner, ok, err := ParseShared(filter); ok {
		if err != nil {
			return false
		}
		filter = inner
	}
	if !validPlainFilter(filter) || !validName(name) {
		return false
	}
	if name[0] == '$' && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	// A position past the end of the string means every level is consumed;
	// a position equal to len(s) is a final empty level ("a/" has two).
	fi, ni := 0, 0
	for {
		if fi > len(filter) {
			return ni > len(name)
		}
		fe := levelEnd(filter, fi)
		fl := filter[fi:fe]
		if fl == "#" {
			return true // '#' also matches the parent level: "a/#" matches "a".
		}
		if ni > len(name) {
			return false
		}
		ne := levelEnd(name, ni)
		if fl != "+" && fl != name[ni:ne] {
			return false
		}
		fi, ni = fe+1, ne+1
	}
}

// levelEnd returns the index of the '/' ending the level starting at i, or
// len(s) for the last level.
func levelEnd(s string, i int) int {
	if j := strings.IndexByte(s[i:], '/'); j >= 0 {
		return i + j
	}
	return len(s)
}
