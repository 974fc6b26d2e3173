package rules

import (
	"slices"

	"github.com/expr-lang/expr/ast"
)

// payloadUse is what a rule's expressions read of `payload`: the
// top-level fields named by constant member accesses (payload.temp,
// payload["temp"], payload.vibration.x), or all of it when payload is
// used any other way (passed whole, indexed by a computed key, bound to
// a let).
type payloadUse struct {
	keys []string
	all  bool
}

// add records the payload reads of one parsed expression.
func (u *payloadUse) add(node ast.Node) {
	v := &payloadVisitor{covered: map[ast.Node]bool{}}
	ast.Walk(&node, v)
	for _, id := range v.seen {
		if !v.covered[id] {
			u.all = true
		}
	}
	for _, k := range v.keys {
		if !slices.Contains(u.keys, k) {
			u.keys = append(u.keys, k)
		}
	}
}

// merge adds o's reads to u.
func (u *payloadUse) merge(o payloadUse) {
	u.all = u.all || o.all
	for _, k := range o.keys {
		if !slices.Contains(u.keys, k) {
			u.keys = append(u.keys, k)
		}
	}
}

// payloadVisitor collects the payload identifiers and those of them that
// are the base of a constant member access (ast.Walk visits children
// first, so both are compared after the walk).
type payloadVisitor struct {
	seen    []ast.Node
	covered map[ast.Node]bool
	keys    []string
}

func (v *payloadVisitor) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.IdentifierNode:
		if x.Value == "payload" {
			v.seen = append(v.seen, x)
		}
	case *ast.MemberNode:
		id, ok := x.Node.(*ast.IdentifierNode)
		if !ok || id.Value != "payload" {
			return
		}
		if prop, ok := x.Property.(*ast.StringNode); ok {
			v.covered[id] = true
			v.keys = append(v.keys, prop.Value)
		}
	}
}

// PayloadKeys reports which top-level payload fields the rules read:
// all is true when some rule needs the whole payload; otherwise only
// keys are read (none: no rule looks at the payload). A decoder may then
// build just those members (DecodeJSONKeys): the rules see the same
// values for every field they can reach.
func (e *Engine) PayloadKeys() (keys []string, all bool) {
	return e.payload.keys, e.payload.all
}

// PayloadKeys reports the active rule set's payload reads (see
// Engine.PayloadKeys). It changes on reload.
func (h *Holder) PayloadKeys() (keys []string, all bool) { return h.cur.Load().PayloadKeys() }
