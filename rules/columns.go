package rules

import (
	"reflect"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ColumnMapping is one target's `columns:` as compiled, for the sink it
// names to check against its destination before the first message: the
// ClickHouse sink checks each column against its table (DESCRIBE TABLE)
// and refuses a column the table lacks or a kind the column type cannot
// hold. cmd hands them over (Engine.ColumnMappings).
type ColumnMapping struct {
	// Rule is the rule's name.
	Rule string
	// Target is the target's key path in the rule, "to[0]".
	Target string
	// Where is the rule's position for messages: "rules.yaml:12", or the
	// key path of an inline rule without a known file ("rules[3]").
	Where string
	// Sink is the sink the target names.
	Sink string
	// Topic is the target's topic template as written; "" means the
	// sink's default (for ClickHouse, its configured table).
	Topic string
	// Columns are the mapped columns, sorted by name: the order of the
	// keys in the body.
	Columns []MappedColumn
}

// MappedColumn is one column of a ColumnMapping.
type MappedColumn struct {
	// Name is the column (the body's key).
	Name string
	// Expr is the expression as written.
	Expr string
	// Kind is the JSON kind of the expression's value as far as load-time
	// type checking knows: KindString, KindTime, KindBytes, KindInteger,
	// KindNumber, KindBool, KindArray, KindObject, or KindAny when only
	// run time tells (payload.x, a nil).
	Kind string
}

// Value kinds of MappedColumn.Kind. Times and bytes are JSON strings
// (RFC 3339 with nanoseconds, base64), told apart for the checks.
const (
	KindAny     = ""
	KindString  = "string"
	KindTime    = "time"
	KindBytes   = "bytes"
	KindInteger = "integer"
	KindNumber  = "number"
	KindBool    = "bool"
	KindArray   = "array"
	KindObject  = "object"
)

// columnsTarget is a compiled `columns:`: the target's body is a JSON
// object of the columns, written like an object transform (keys sorted,
// one program per value, no map built).
type columnsTarget struct {
	obj     *objectTransform
	mapping ColumnMapping
}

var timeType = reflect.TypeOf(time.Time{})

// columns compiles a target's columns; nil when it has none (or after an
// error, which is recorded).
func (rc *ruleCompiler) columns(p string, tc *TargetConfig) *columnsTarget {
	if len(tc.Columns) == 0 {
		return nil
	}
	if tc.Republish != nil {
		rc.fail(p+".columns", "columns are for sink targets (a table's columns), not republish")
		return nil
	}
	names := make([]string, 0, len(tc.Columns))
	for name := range tc.Columns {
		names = append(names, name)
	}
	slices.Sort(names)
	ct := &columnsTarget{obj: &objectTransform{}, mapping: ColumnMapping{
		Rule: rc.in.cfg.Name, Target: p, Where: rc.in.src.where(), Sink: tc.Sink, Topic: tc.Topic,
	}}
	ok := true
	for _, name := range names {
		f := p + ".columns." + name
		src := tc.Columns[name]
		switch {
		case strings.TrimSpace(name) == "":
			rc.fail(f, "empty column name")
			ok = false
			continue
		case strings.TrimSpace(src) == "":
			rc.fail(f, "empty expression (want an expression, e.g. payload.%s)", name)
			ok = false
			continue
		}
		prog, typ := rc.exprTyped(f, src, reflect.Invalid, 0)
		if prog == nil {
			ok = false
			continue
		}
		ct.obj.keys = append(ct.obj.keys, append(appendString(nil, name), ':'))
		ct.obj.vals = append(ct.obj.vals, prog)
		ct.mapping.Columns = append(ct.mapping.Columns, MappedColumn{Name: name, Expr: src, Kind: kindOf(typ)})
	}
	if !ok {
		return nil
	}
	return ct
}

// encode evaluates the columns and writes the JSON object; on an error
// it returns the column that failed.
func (c *columnsTarget) encode(s *state) (body []byte, column string, err error) {
	o := c.obj
	b := make([]byte, 0, 24*len(o.keys))
	b = append(b, '{')
	for i, k := range o.keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, k...)
		v, err := o.vals[i].run(s)
		if err == nil {
			b, err = appendJSON(b, v)
		}
		if err != nil {
			return nil, c.mapping.Columns[i].Name, err
		}
	}
	return append(b, '}'), "", nil
}

// kindOf is the JSON kind appendJSON writes for values of type t.
func kindOf(t reflect.Type) string {
	if t == nil {
		return KindAny
	}
	if t == timeType {
		return KindTime
	}
	switch t.Kind() {
	case reflect.String:
		return KindString
	case reflect.Bool:
		return KindBool
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return KindInteger
	case reflect.Float32, reflect.Float64:
		return KindNumber
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return KindBytes
		}
		return KindArray
	case reflect.Map, reflect.Struct:
		return KindObject
	}
	return KindAny
}

// ColumnMappings returns the compiled `columns:` of every target that has
// them, in rule and target order.
func (e *Engine) ColumnMappings() []ColumnMapping {
	var out []ColumnMapping
	for _, r := range e.rules {
		for i := range r.targets {
			if c := r.targets[i].columns; c != nil {
				m := c.mapping
				m.Columns = slices.Clone(m.Columns)
				out = append(out, m)
			}
		}
	}
	return out
}

// columns decodes a target's `columns:` mapping of column to expression,
// recording each entry's line.
func (d *decoder) columns(p string, v *yaml.Node) map[string]string {
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		d.fail(p, v.Line, "want a mapping of column: expression")
		return nil
	}
	out := make(map[string]string, len(v.Content)/2)
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, e := v.Content[i], v.Content[i+1]
		f := p + "." + k.Value
		d.src.lines[f] = e.Line
		if _, dup := out[k.Value]; dup {
			d.fail(f, k.Line, "duplicate column")
			continue
		}
		out[k.Value] = d.scalar(f, e)
	}
	return out
}
