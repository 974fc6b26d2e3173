package clickhouse

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// elements calls fn with the raw text of each element of the JSON array
// raw.
func elements(raw []byte, fn func(elem []byte) error) error {
	s := scanner{data: raw}
	if len(raw) == 0 || raw[0] != '[' {
		return errors.New("not an array")
	}
	s.pos++
	s.ws()
	if s.pos < len(raw) && raw[s.pos] == ']' {
		return nil
	}
	for {
		s.ws()
		start := s.pos
		if err := s.skip(); err != nil {
			return err
		}
		if err := fn(raw[start:s.pos]); err != nil {
			return err
		}
		s.ws()
		if s.pos >= len(raw) {
			return s.syntax("unterminated array")
		}
		switch raw[s.pos] {
		case ',':
			s.pos++
		case ']':
			return nil
		default:
			return s.syntax("want ',' or ']'")
		}
	}
}

// parseToken turns the raw text of a JSON value into a value. Escaped
// strings are unescaped into *scratch.
func parseToken(tok []byte, v *value, scratch *[]byte) error {
	if tok == nil {
		*v = value{kind: valMissing}
		return nil
	}
	switch tok[0] {
	case '"':
		body := tok[1 : len(tok)-1]
		if bytes.IndexByte(body, '\\') >= 0 {
			var err error
			if *scratch, err = unescape((*scratch)[:0], body); err != nil {
				return err
			}
			*v = value{kind: valString, b: *scratch}
			return nil
		}
		*v = value{kind: valString, b: body, stable: true}
	case '{', '[':
		*v = value{kind: valRaw, b: tok, stable: true}
	case 't':
		*v = value{kind: valBool, n: 1}
	case 'f':
		*v = value{kind: valBool}
	case 'n':
		*v = value{kind: valNull}
	default:
		*v = value{kind: valNumber, b: tok, stable: true}
	}
	return nil
}

// unescape appends the unescaped JSON string body s to dst.
func unescape(dst, s []byte) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		if i >= len(s) {
			return dst, errors.New("invalid escape at end of string")
		}
		switch s[i] {
		case '"', '\\', '/':
			dst = append(dst, s[i])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(s[i+1:])
			if !ok {
				return dst, errors.New(`invalid \u escape`)
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if i+2 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					r2, ok = hex4(s[i+3:])
				}
				if d := utf16.DecodeRune(r, r2); ok && d != utf8.RuneError {
					r = d
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default:
			return dst, fmt.Errorf("invalid escape \\%c", s[i])
		}
	}
	return dst, nil
}

func hex4(s []byte) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
