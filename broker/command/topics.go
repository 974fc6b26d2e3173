package command

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/broker/topic"
)

// template is a compiled topic template: literal text and the
// placeholders {device} and {id}, compiled at New, rendered per command.
type template struct {
	parts []tmplPart
}

type tmplPart struct {
	lit string
	ph  string // "", "device" or "id"
}

// compileTemplate compiles s; withID allows {id}.
func compileTemplate(s string, withID bool) (*template, error) {
	if s == "" {
		return nil, errors.New("must not be empty")
	}
	t := &template{}
	rest := s
	for rest != "" {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			t.parts = append(t.parts, tmplPart{lit: rest})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, tmplPart{lit: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("%q: unclosed {", s)
		}
		name := rest[i+1 : i+j]
		switch {
		case name == "device", name == "id" && withID:
		default:
			return nil, fmt.Errorf("%q: unknown placeholder {%s}", s, name)
		}
		t.parts = append(t.parts, tmplPart{ph: name})
		rest = rest[i+j+1:]
	}
	if probe := t.render("d", "i"); !topic.ValidName([]byte(probe)) {
		return nil, fmt.Errorf("%q: not a valid topic name (no wildcards)", s)
	}
	return t, nil
}

// render substitutes device and id.
func (t *template) render(device, id string) string {
	var b strings.Builder
	for _, p := range t.parts {
		switch p.ph {
		case "device":
			b.WriteString(device)
		case "id":
			b.WriteString(id)
		default:
			b.WriteString(p.lit)
		}
	}
	return b.String()
}

// replyPattern matches reply topics of 3.1.1 devices: literal levels and
// whole levels "{device}" and "{id}".
type replyPattern struct {
	levels   []string
	deviceAt int // -1: none
	idAt     int
}

func compileReplyPattern(s string) (*replyPattern, error) {
	p := &replyPattern{levels: strings.Split(s, "/"), deviceAt: -1, idAt: -1}
	for i, lv := range p.levels {
		switch {
		case lv == "{device}" && p.deviceAt < 0:
			p.deviceAt = i
		case lv == "{id}" && p.idAt < 0:
			p.idAt = i
		case strings.ContainsAny(lv, "{}+#"):
			return nil, fmt.Errorf("%q: level %q: {device} and {id} must each be a whole level, once; no wildcards", s, lv)
		}
	}
	if p.idAt < 0 {
		return nil, fmt.Errorf("%q: must contain the level {id}", s)
	}
	return p, nil
}

// match returns the device and command id of a reply topic; ok is false
// if name does not match. It does not allocate.
func (p *replyPattern) match(name string) (device, id string, ok bool) {
	for i := range p.levels {
		lv, rest, found := strings.Cut(name, "/")
		if found == (i == len(p.levels)-1) {
			return "", "", false // too many or too few levels
		}
		switch i {
		case p.deviceAt:
			device = lv
		case p.idAt:
			id = lv
		default:
			if lv != p.levels[i] {
				return "", "", false
			}
		}
		name = rest
	}
	return device, id, id != ""
}
