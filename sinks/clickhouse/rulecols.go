package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/sinks"
)

// RuleColumns is one rule target's column mapping, a rule's
// `columns: {column: expression}` for this sink. The rule writes the
// record's body as a JSON object whose keys are the columns; the sink
// inserts exactly those columns (plus the sink's own `$property`
// mappings), so ClickHouse fills the others with their DEFAULT. cmd
// builds them from the rules engine (rules.Engine.ColumnMappings).
type RuleColumns struct {
	// Rule is the rule's name: its records are written with this mapping.
	Rule string
	// Target is the target's key path in the rule ("to[0]") and Where the
	// rule's position ("rules.yaml:12"), both for messages.
	Target, Where string
	// Table is the target's topic: "table" or "database.table", "" for
	// the sink's table. A template ({{ }}) is only known per record: its
	// plan is made, and checked, on first use.
	Table string
	// Columns are the mapped columns.
	Columns []RuleColumn
}

// RuleColumn is one column of a RuleColumns.
type RuleColumn struct {
	// Name is the column.
	Name string
	// Expr is the expression as written, for messages.
	Expr string
	// Kind is what the expression yields, in the rules package's terms
	// (rules.Kind*): string, time, bytes, integer, number, bool, array,
	// object, or "" when only run time tells.
	Kind string
}

// RuleColumnsFunc supplies the current rule mappings of this sink. The
// sink passes the version it has; the function returns the current
// version (the rules' hash) and, only when that differs from known, the
// mappings. It is called at Connect and once per Write, so a rules reload
// is picked up by the next write.
type RuleColumnsFunc func(known string) (version string, mappings []RuleColumns)

// ruleSet is the mappings of one rules version, by rule name.
type ruleSet struct {
	version string
	byRule  map[string][]*RuleColumns
}

// rulePlans holds the sink's rule mappings.
type rulePlans struct {
	mu  sync.Mutex
	fn  RuleColumnsFunc
	set *ruleSet
}

// SetRuleColumns makes the sink read the rules' column mappings from fn:
// Connect checks them against their tables, and each record of a rule
// with a mapping is written with it. Call it before Connect.
func (s *Sink) SetRuleColumns(fn RuleColumnsFunc) {
	s.rules.mu.Lock()
	s.rules.fn, s.rules.set = fn, nil
	s.rules.mu.Unlock()
}

// ruleSet returns the current mappings (nil when there are none).
func (s *Sink) ruleSet() *ruleSet {
	r := &s.rules
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fn == nil {
		return nil
	}
	known := ""
	if r.set != nil {
		known = r.set.version
	}
	v, m := r.fn(known)
	if r.set != nil && v == known {
		return r.set
	}
	set := &ruleSet{version: v, byRule: map[string][]*RuleColumns{}}
	for i := range m {
		set.byRule[m[i].Rule] = append(set.byRule[m[i].Rule], &m[i])
	}
	r.set = set
	return set
}

// mapping returns the mapping of rule for records whose rule rendered
// topic: the rule's target with that table, else its templated one.
func (rs *ruleSet) mapping(rule, topic string) *RuleColumns {
	if rs == nil {
		return nil
	}
	var tmpl *RuleColumns
	for _, m := range rs.byRule[rule] {
		if m.Table == topic {
			return m
		}
		if strings.Contains(m.Table, "{{") {
			tmpl = m
		}
	}
	return tmpl
}

// CheckRuleColumns checks mappings against their tables (describing the
// tables not read yet): every problem is in a *ConfigError naming the
// rule, column and types (several tables: joined). Mappings whose table
// is a template are not checked. Any other error is an outage.
func (s *Sink) CheckRuleColumns(ctx context.Context, mappings []RuleColumns) error {
	var errs []error
	byTable := map[string]*ConfigError{}
	var order []string
	for i := range mappings {
		m := &mappings[i]
		if strings.Contains(m.Table, "{{") {
			continue
		}
		ref := m.Table
		if ref == "" {
			ref = s.cfg.Table
		}
		db, name, err := splitTable(s.cfg.Database, ref)
		if err != nil {
			errs = append(errs, &ConfigError{Table: ref, Problems: []string{m.prefix("topic") + err.Error()}})
			continue
		}
		_, err = s.table(ctx, db, name, m.Table == "", m)
		var ce *ConfigError
		var nt *errNoTable
		switch {
		case err == nil:
			continue
		case errors.As(err, &ce):
		case errors.As(err, &nt):
			ce = &ConfigError{Table: nt.table, Problems: []string{m.prefix("topic") + "table " + nt.table + " does not exist"}}
		default:
			return err
		}
		if prev := byTable[ce.Table]; prev != nil {
			prev.Problems = append(prev.Problems, ce.Problems...)
			continue
		}
		byTable[ce.Table] = ce
		order = append(order, ce.Table)
	}
	for _, t := range order {
		errs = append(errs, byTable[t])
	}
	return errors.Join(errs...)
}

// prefix starts a problem of the mapping's field: `rule "r" to[0].columns.temp (rules.yaml:12): `.
func (m *RuleColumns) prefix(field string) string {
	where := ""
	if m.Where != "" {
		where = " (" + m.Where + ")"
	}
	return fmt.Sprintf("rule %q %s.%s%s: ", m.Rule, m.Target, field, where)
}

// signature identifies the plan a mapping needs: its columns.
func (m *RuleColumns) signature() string {
	var b strings.Builder
	for _, c := range m.Columns {
		b.WriteString(c.Name)
		b.WriteByte(0)
		b.WriteString(c.Kind)
		b.WriteByte(0)
	}
	return b.String()
}

// planRule plans an insert of a rule's columns: each from the body's key
// of its name, plus the sink's `$property` mappings of columns the rule
// does not name, in the table's order. Every problem is reported.
func planRule(db, name string, described []tableColumn, sinkMapping map[string]string, m *RuleColumns) (*table, error) {
	t := &table{db: db, name: name, fields: &fieldNode{slot: -1}}
	cerr := &ConfigError{Table: t.String()}
	byName := make(map[string]tableColumn, len(described))
	for _, c := range described {
		byName[c.Name] = c
	}
	mapped := make(map[string]*RuleColumn, len(m.Columns))
	for i := range m.Columns {
		rc := &m.Columns[i]
		mapped[rc.Name] = rc
		c, ok := byName[rc.Name]
		p := m.prefix("columns." + rc.Name)
		switch {
		case !ok:
			cerr.Problems = append(cerr.Problems, p+"the table has no column "+rc.Name)
		case c.DefaultKind == "MATERIALIZED" || c.DefaultKind == "ALIAS":
			cerr.Problems = append(cerr.Problems, fmt.Sprintf("%scolumn %s is %s and cannot be written", p, rc.Name, c.DefaultKind))
		}
	}
	for _, c := range described {
		rc := mapped[c.Name]
		src := source{kind: srcSkip}
		switch {
		case rc != nil:
			src = source{kind: srcField, path: []string{c.Name}, text: rc.Expr}
		case sinkMapping[c.Name] != "":
			if s, err := parseSource(sinkMapping[c.Name]); err == nil && s.kind != srcField {
				src = s // a record property; the rule's body has no other fields
			}
		}
		if src.kind == srcSkip || c.DefaultKind == "MATERIALIZED" || c.DefaultKind == "ALIAS" {
			continue
		}
		typ, err := parseType(c.Type)
		if err != nil {
			if rc != nil {
				cerr.Problems = append(cerr.Problems, fmt.Sprintf("%scolumn %s: %v", m.prefix("columns."+c.Name), c.Name, err))
			} else {
				cerr.Problems = append(cerr.Problems, fmt.Sprintf("columns.%s: %v", c.Name, err))
			}
			continue
		}
		col := column{name: c.Name, typ: typ, src: src, slot: -1}
		switch {
		case rc != nil:
			if !kindFits(typ, rc.Kind) {
				cerr.Problems = append(cerr.Problems, fmt.Sprintf("%scolumn %s is %s and cannot hold %s (%s)",
					m.prefix("columns."+c.Name), c.Name, c.Type, rc.Expr, kindName(rc.Kind)))
				continue
			}
			col.slot = t.nslots
			t.nslots++
			t.fields.add(src.path, col.slot)
		case typ.kind == kArray || !typ.accepts(src.metaKind()):
			cerr.Problems = append(cerr.Problems, fmt.Sprintf("column %s: type %s cannot hold %s (%s)", c.Name, c.Type, src.text, metaKindName(src.metaKind())))
			continue
		}
		t.cols = append(t.cols, col)
	}
	if len(cerr.Problems) > 0 {
		return nil, cerr
	}
	if t.nslots == 0 {
		t.fields = nil
	}
	t.insert = insertStatement(db, name, t.cols)
	return t, nil
}

// Value kinds of RuleColumn.Kind (the rules package's).
const (
	kindString  = "string"
	kindTime    = "time"
	kindBytes   = "bytes"
	kindInteger = "integer"
	kindNumber  = "number"
	kindBool    = "bool"
	kindArray   = "array"
	kindObject  = "object"
)

// kindFits reports whether some value of kind k converts to a column of
// type t (see the conversions table in README.md). Values of an unknown
// kind may; null is decided per row.
func kindFits(t *colType, k string) bool {
	if k == "" {
		return true
	}
	switch t.kind {
	case kString:
		return true // strings, and anything else as its JSON text
	case kArray:
		return k == kindArray
	case kFixedString:
		return k == kindString || k == kindBytes || (k == kindTime && t.size >= 35)
	case kUUID:
		return k == kindString
	case kEnum8, kEnum16:
		return k == kindString || k == kindInteger || k == kindNumber
	case kDate, kDateTime, kDateTime64:
		return k == kindString || k == kindTime || k == kindInteger || k == kindNumber
	}
	// numbers and Bool
	return k == kindInteger || k == kindNumber || k == kindBool
}

// kindName names a kind in messages: "a string", "a time".
func kindName(k string) string {
	switch k {
	case "":
		return "a value of unknown type"
	case kindInteger, kindArray, kindObject:
		return "an " + k
	}
	return "a " + k
}

// ruleGroup is the records of one Write going to one plan.
type ruleGroup struct {
	topic string
	m     *RuleColumns
	idx   []int
}

// groupRecords splits batch by table and mapping: nil when every record
// goes to the same one (the usual case), which is then first's.
func groupRecords(batch []sinks.Record, rs *ruleSet) (first ruleGroup, groups []ruleGroup) {
	first = ruleGroup{topic: batch[0].Topic, m: rs.mapping(batch[0].Rule, batch[0].Topic)}
	same := true
	for i := 1; i < len(batch) && same; i++ {
		r := &batch[i]
		same = r.Topic == first.topic && (r.Rule == batch[0].Rule || rs.mapping(r.Rule, r.Topic) == first.m)
	}
	if same {
		return first, nil
	}
	type key struct {
		topic string
		m     *RuleColumns
	}
	at := map[key]int{}
	for i := range batch {
		r := &batch[i]
		k := key{r.Topic, rs.mapping(r.Rule, r.Topic)}
		j, ok := at[k]
		if !ok {
			j = len(groups)
			at[k] = j
			groups = append(groups, ruleGroup{topic: k.topic, m: k.m})
		}
		groups[j].idx = append(groups[j].idx, i)
	}
	return first, groups
}
