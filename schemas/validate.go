package schemas

import (
	"errors"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// validator checks decoded payloads against one compiled JSON Schema.
type validator struct {
	file   string
	schema *jsonschema.Schema
	// fast accepts valid payloads without jsonschema's cost; nil when the
	// schema uses keywords it does not implement (see fastSchema).
	fast *fastSchema
}

// compileSchema loads and compiles the JSON Schema in file, and the
// schemas it references.
func compileSchema(file string) (*validator, error) {
	c := jsonschema.NewCompiler()
	s, err := c.Compile(file)
	if err != nil {
		return nil, fmt.Errorf("compiling JSON Schema %s: %w", file, err)
	}
	return &validator{file: file, schema: s, fast: compileFast(file)}, nil
}

// check validates v. When v is invalid it returns the JSON pointer of the
// first offending value and every problem found, "; "-separated.
func (vd *validator) check(v any) (path, reason string, ok bool) {
	if vd.fast != nil && vd.fast.check(v) == valid {
		return "", "", true
	}
	// Invalid, or undecided by the fast path: jsonschema decides, and
	// its messages are the ones reported.
	err := vd.schema.Validate(v)
	if err == nil {
		return "", "", true
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return "", err.Error(), false
	}
	out := ve.BasicOutput()
	var msgs []string
	first := true
	for _, u := range out.Errors {
		if u.Error == nil {
			continue
		}
		if first {
			path, first = u.InstanceLocation, false
		}
		msgs = append(msgs, fmt.Sprintf("%s: %s", pointerOrRoot(u.InstanceLocation), u.Error.String()))
	}
	if len(msgs) == 0 {
		return "", ve.Error(), false
	}
	return path, strings.Join(msgs, "; "), false
}

func pointerOrRoot(p string) string {
	if p == "" {
		return "/"
	}
	return p
}
