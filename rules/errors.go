package rules

import (
	"errors"
	"fmt"
	"strings"

	"github.com/expr-lang/expr/file"
)

// Error is one problem found while loading rules. It names where the
// problem is (file and line when the source has positions, otherwise the
// key path rules[i]), the rule and the field, and, for expression errors,
// the position inside the expression.
type Error struct {
	// File is the file the rule came from ("" when unknown).
	File string
	// Line is the 1-based line of the offending field in File (0 = unknown).
	Line int
	// Path is the key path of the rule when File is unknown, e.g. "rules[3]".
	Path string
	// Rule is the rule's name ("" when the rule has none).
	Rule string
	// Field is the offending field, e.g. "when", "let.site", "to[1].topic".
	Field string
	// Msg describes the problem.
	Msg string
	// ExprLine and ExprColumn are the 1-based position inside the
	// expression (0 = not an expression error).
	ExprLine, ExprColumn int
	// Err is the underlying error, if any.
	Err error
}

// Error formats e as `file:line: rule "name" field: message (l:c)`.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		fmt.Fprintf(&b, "%s: ", e.File)
	case e.Path != "":
		fmt.Fprintf(&b, "%s: ", e.Path)
	}
	if e.Rule != "" {
		fmt.Fprintf(&b, "rule %q ", e.Rule)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.ExprLine > 0 {
		fmt.Fprintf(&b, " (%d:%d)", e.ExprLine, e.ExprColumn)
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// exprMessage splits an expr error into its message and 1-based position.
func exprMessage(err error) (msg string, line, col int) {
	var fe *file.Error
	if errors.As(err, &fe) {
		if fe.Line == 0 {
			return fe.Message, 0, 0
		}
		return fe.Message, fe.Line, fe.Column + 1
	}
	return err.Error(), 0, 0
}

// Join returns errs as one error (nil when errs is empty), one per line,
// for callers that want a single error value.
func Join(errs []error) error {
	return errors.Join(errs...)
}
