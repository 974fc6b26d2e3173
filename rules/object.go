package rules

import (
	"slices"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/parser"
)

// objectTransform is a transform written as an object literal with
// constant keys, `{"site": site, "temp": payload.temp}`, the usual shape.
// Instead of building a map at run time and encoding it, each value is its
// own program and the JSON object is written directly, keys sorted at load
// (the same bytes, without the map, the sort or the VM run for values that
// are plain variables).
type objectTransform struct {
	keys [][]byte // `"key":`, sorted by key
	vals []*program
}

// objectOf returns the object form of a compiled transform tree, or nil
// when the transform is not an object literal with distinct string keys.
func objectOf(tree *parser.Tree, run *conf.Config) *objectTransform {
	m, ok := tree.Node.(*ast.MapNode)
	if !ok || len(m.Pairs) == 0 {
		return nil
	}
	type kvNode struct {
		key string
		val ast.Node
	}
	pairs := make([]kvNode, 0, len(m.Pairs))
	for _, p := range m.Pairs {
		pn, ok := p.(*ast.PairNode)
		if !ok {
			return nil
		}
		k, ok := pn.Key.(*ast.StringNode)
		if !ok {
			return nil
		}
		pairs = append(pairs, kvNode{k.Value, pn.Value})
	}
	slices.SortFunc(pairs, func(a, b kvNode) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	o := &objectTransform{}
	for i, p := range pairs {
		if i > 0 && p.key == pairs[i-1].key {
			return nil // duplicate keys: leave expr's last-wins to the generic path
		}
		prog, err := compiler.Compile(&parser.Tree{Node: p.val, Source: tree.Source}, run)
		if err != nil {
			return nil
		}
		o.keys = append(o.keys, append(appendString(nil, p.key), ':'))
		o.vals = append(o.vals, newProgram(prog))
	}
	return o
}

// encode evaluates the values and writes the JSON object.
func (o *objectTransform) encode(s *state) ([]byte, error) {
	b := make([]byte, 0, 32*len(o.keys))
	b = append(b, '{')
	for i, k := range o.keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, k...)
		v, err := o.vals[i].run(s)
		if err != nil {
			return nil, err
		}
		if b, err = appendJSON(b, v); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}
