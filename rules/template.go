package rules

import (
	"reflect"
	"strings"
	"unicode/utf8"
)

// tmpl is a compiled template: literal text with {{ expression }}
// placeholders, e.g. "alerts/{{ site }}/{{ line }}".
type tmpl struct {
	lit   string     // the whole text when there are no placeholders
	parts []tmplPart // literal and expression parts otherwise
}

// tmplPart is a literal (prog nil) or an expression.
type tmplPart struct {
	lit  string
	prog *program
}

// isConst reports whether the template has no placeholders.
func (t *tmpl) isConst() bool { return len(t.parts) == 0 }

// template compiles src; nil after an error. Expression errors are
// positioned within the template text.
func (rc *ruleCompiler) template(field, src string) *tmpl {
	t := &tmpl{}
	rest, off := src, 0
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			break
		}
		j := strings.Index(rest[i+2:], "}}")
		if j < 0 {
			rc.fail(field, "unclosed {{ at column %d", utf8.RuneCountInString(src[:off+i])+1)
			return nil
		}
		if i > 0 {
			t.parts = append(t.parts, tmplPart{lit: rest[:i]})
		}
		code := rest[i+2 : i+2+j]
		if strings.TrimSpace(code) == "" {
			rc.fail(field, "empty {{ }} at column %d", utf8.RuneCountInString(src[:off+i])+1)
			return nil
		}
		col0 := utf8.RuneCountInString(src[:off+i+2])
		prog, _ := rc.exprTyped(field, code, reflect.Invalid, col0)
		if prog == nil {
			return nil
		}
		t.parts = append(t.parts, tmplPart{prog: prog})
		rest, off = rest[i+2+j+2:], off+i+2+j+2
	}
	if len(t.parts) == 0 {
		t.lit = src
		return t
	}
	if rest != "" {
		t.parts = append(t.parts, tmplPart{lit: rest})
	}
	return t
}

// render evaluates the template into a string. A template that is one
// expression yielding a string returns that string without copying.
func (t *tmpl) render(s *state) (string, error) {
	if len(t.parts) == 0 {
		return t.lit, nil
	}
	if len(t.parts) == 1 {
		v, err := t.parts[0].prog.run(s)
		if err != nil {
			return "", err
		}
		if str, ok := v.(string); ok {
			return str, nil
		}
		b, err := appendText(s.buf[:0], v)
		s.buf = b
		return string(b), err
	}
	b := s.buf[:0]
	for _, p := range t.parts {
		if p.prog == nil {
			b = append(b, p.lit...)
			continue
		}
		v, err := p.prog.run(s)
		if err != nil {
			return "", err
		}
		if b, err = appendText(b, v); err != nil {
			return "", err
		}
	}
	s.buf = b
	return string(b), nil
}
