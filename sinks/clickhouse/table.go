package clickhouse

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/sinks"
)

// tableColumn is one column as DESCRIBE TABLE reports it.
type tableColumn struct {
	Name, Type, DefaultKind string
}

// ConfigError reports a column mapping that does not fit the table: a
// mapped column the table lacks, a type the sink cannot write, a record
// property the column cannot hold. Retrying cannot fix it; Connect
// returns it so start-up can refuse the config.
type ConfigError struct {
	// Table is database.table.
	Table string
	// Problems each name the column (and key path) and the types.
	Problems []string
}

// Error lists the problems after the table's name.
func (e *ConfigError) Error() string {
	return fmt.Sprintf("table %s: %s", e.Table, strings.Join(e.Problems, "; "))
}

// column is one written column: where its value comes from and how it is
// built.
type column struct {
	name string
	typ  *colType
	src  source
	slot int // srcField: the scanner's slot
}

// table is the plan for inserting into one table: the columns written, in
// order, and the JSON fields they read.
type table struct {
	db, name string
	key      string // in Sink.tables: db.name, and the rule mapping's signature
	cols     []column
	fields   *fieldNode // nil when no column reads a JSON field
	nslots   int
	insert   string // INSERT INTO db.table (`a`, `b`, ...)

	mu   sync.Mutex
	free []*encoder // idle encoders, at most maxIdleEncoders
}

// maxIdleEncoders bounds the idle encoders a table keeps. A free list,
// not a sync.Pool: a pool is emptied by every GC cycle, and an encoder's
// column buffers are worth keeping across the cycles a busy sink causes.
const maxIdleEncoders = 4

func (t *table) String() string { return t.db + "." + t.name }

// plan maps the table's columns to sources: by the columns config first,
// by name from the JSON object otherwise. Every problem is reported.
func plan(db, name string, described []tableColumn, mapping map[string]string) (*table, error) {
	t := &table{db: db, name: name, fields: &fieldNode{slot: -1}}
	cerr := &ConfigError{Table: t.String()}
	byName := make(map[string]tableColumn, len(described))
	for _, c := range described {
		byName[c.Name] = c
	}
	for _, col := range slices.Sorted(maps.Keys(mapping)) {
		c, ok := byName[col]
		switch {
		case !ok:
			cerr.Problems = append(cerr.Problems, fmt.Sprintf("columns.%s: the table has no column %s", col, col))
		case mapping[col] != "-" && (c.DefaultKind == "MATERIALIZED" || c.DefaultKind == "ALIAS"):
			cerr.Problems = append(cerr.Problems, fmt.Sprintf("columns.%s: column %s is %s and cannot be written", col, col, c.DefaultKind))
		}
	}
	for _, c := range described {
		src, mapped := source{kind: srcField, path: []string{c.Name}, text: c.Name}, false
		if m, ok := mapping[c.Name]; ok {
			var err error
			if src, err = parseSource(m); err != nil {
				cerr.Problems = append(cerr.Problems, fmt.Sprintf("columns.%s: %v", c.Name, err))
				continue
			}
			mapped = true
		}
		if src.kind == srcSkip || (!mapped && c.DefaultKind != "") {
			continue // ClickHouse fills it: DEFAULT, MATERIALIZED, ALIAS
		}
		typ, err := parseType(c.Type)
		if err != nil {
			cerr.Problems = append(cerr.Problems, fmt.Sprintf("column %s: %v (map it to - to leave it to ClickHouse)", c.Name, err))
			continue
		}
		col := column{name: c.Name, typ: typ, src: src, slot: -1}
		switch {
		case src.kind == srcField:
			col.slot = t.nslots
			t.nslots++
			t.fields.add(src.path, col.slot)
		case typ.kind == kArray || !typ.accepts(src.metaKind()):
			cerr.Problems = append(cerr.Problems, fmt.Sprintf("column %s: type %s cannot hold %s (%s)", c.Name, c.Type, src.text, metaKindName(src.metaKind())))
			continue
		}
		t.cols = append(t.cols, col)
	}
	if len(t.cols) == 0 && len(cerr.Problems) == 0 {
		cerr.Problems = append(cerr.Problems, "no column to write")
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

// insertStatement is the INSERT of cols into db.name.
func insertStatement(db, name string, cols []column) string {
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s.%s (", db, name)
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteIdent(c.name))
	}
	b.WriteString(")")
	return b.String()
}

func metaKindName(k valKind) string {
	switch k {
	case valTime:
		return "a time"
	case valInt:
		return "an integer"
	case valBool:
		return "a boolean"
	}
	return "a string"
}

// quoteIdent quotes a column name with backquotes.
func quoteIdent(s string) string {
	return "`" + strings.NewReplacer("\\", "\\\\", "`", "\\`").Replace(s) + "`"
}

// encoder converts records into column builders for one table. Encoders
// are kept per table; one serves one Write at a time.
type encoder struct {
	t        *table
	builders []builder
	steps    []step // one per column, in column order
	slots    []span
	scan     scanner
	val      value
	scratch  []byte
	arena    []byte
	chunks   [][]byte // the arena's memory, reused after release
	chunk    int      // the index in chunks of arena's memory
	rows     int
	good     []int     // the batch index of each row, kept to save allocations
	failed   []failure // the records that did not convert
	all      []int     // encoded.rows, kept to save allocations
}

func (t *table) encoder() *encoder {
	t.mu.Lock()
	if n := len(t.free); n > 0 {
		e := t.free[n-1]
		t.free[n-1] = nil
		t.free = t.free[:n-1]
		t.mu.Unlock()
		return e
	}
	t.mu.Unlock()
	e := &encoder{t: t, builders: make([]builder, len(t.cols)), slots: make([]span, t.nslots), chunk: -1}
	for i := range t.cols {
		e.builders[i] = newBuilder(t.cols[i].typ)
		e.steps = append(e.steps, step{b: e.builders[i], slot: int32(t.cols[i].slot)})
	}
	return e
}

// step is what add does for one column: the builder, and the slot of the
// JSON field it reads (-1: a record property).
type step struct {
	b    builder
	slot int32
}

// release resets e and returns it to its table's free list.
func (e *encoder) release() {
	for _, b := range e.builders {
		b.reset()
	}
	clear(e.slots)
	e.scan.data = nil
	e.val = value{}
	e.arena, e.chunk = nil, -1
	e.rows = 0
	e.good = e.good[:0]
	clear(e.failed)
	e.failed = e.failed[:0]
	t := e.t
	t.mu.Lock()
	if len(t.free) < maxIdleEncoders {
		t.free = append(t.free, e)
	}
	t.mu.Unlock()
}

// add converts r into one row. When a value does not fit its column the
// row is left out and the error names the column, its type and why.
func (e *encoder) add(r *sinks.Record) error {
	t := e.t
	if t.fields != nil {
		clear(e.slots)
		if err := e.scan.scan(r.Value, t.fields, e.slots); err != nil {
			return err
		}
	}
	v := r.Value
	for i := range e.steps {
		st := &e.steps[i]
		var err error
		if st.slot >= 0 {
			var tok []byte
			if sp := e.slots[st.slot]; sp.hi > 0 {
				tok = v[sp.lo:sp.hi]
			}
			err = st.b.addToken(tok, e)
		} else {
			t.cols[i].src.meta(r, &e.val)
			err = st.b.add(&e.val, e)
		}
		if err != nil {
			return e.fail(i, &t.cols[i], err)
		}
	}
	e.rows++
	return nil
}

// fail drops the partial row (columns before i hold its value) and
// describes the failure.
func (e *encoder) fail(i int, c *column, err error) error {
	for _, b := range e.builders[:i] {
		b.truncate(e.rows)
	}
	from := ""
	if c.src.text != c.name {
		from = ", from " + c.src.text
	}
	return fmt.Errorf("column %s (%s%s): %w", c.name, c.typ.name, from, err)
}
