package rules

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/parser"

	"github.com/sluicehq/sluice/broker/topic"
	"github.com/sluicehq/sluice/ingest"
)

var (
	ruleNameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
	letNameRe  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// letProg is one compiled let: its program and the env slot it fills.
type letProg struct {
	name string
	slot int
	prog *program
}

// target is one compiled destination.
type target struct {
	field  string // "to[i]", for errors
	sink   string
	topic  *tmpl // nil = sink default
	key    *program
	qos    byte
	retain bool
	enc    Encoder // nil = the body as it is
	// columns, when set, makes the body (see columns.go).
	columns *columnsTarget
}

// rule is one compiled rule. It is immutable after compilation.
type rule struct {
	cfg       RuleConfig
	src       source
	lets      []letProg
	when      *program
	transform *program
	object    *objectTransform // transform as a literal object, when it is one
	targets   []target
	mode      ingest.Mode
	skip      bool       // on_error: skip
	mask      varMask    // variables the rule's expressions read
	payload   payloadUse // what of the payload they read
	m         ruleMetrics
}

// ruleCompiler compiles one rule, collecting every error.
type ruleCompiler struct {
	in       *ruleInput
	sinks    map[string]bool // nil = not checked
	encoders Encoders        // nil = not checked
	letTypes map[string]reflect.Type
	letSlot  map[string]int
	mask     varMask
	payload  payloadUse
	errs     []error
}

// compileRule compiles in; the rule is nil when there were errors.
func compileRule(in *ruleInput, sinks map[string]bool, encoders Encoders) (*rule, []error) {
	rc := &ruleCompiler{in: in, sinks: sinks, encoders: encoders, letTypes: map[string]reflect.Type{}, letSlot: map[string]int{}}
	c := &in.cfg
	r := &rule{cfg: *c, src: in.src}

	switch {
	case c.Name == "":
		rc.fail("name", "required")
	case !ruleNameRe.MatchString(c.Name):
		rc.fail("name", "%q: use letters, digits, '-', '_' and '.'", c.Name)
	}
	if len(c.Topics) == 0 {
		rc.fail("topics", "at least one topic filter is required")
	}
	for i, f := range c.Topics {
		field := "topics[" + strconv.Itoa(i) + "]"
		switch {
		case len(f) >= len(topic.SharePrefix) && f[:len(topic.SharePrefix)] == topic.SharePrefix:
			rc.fail(field, "%q: shared subscriptions are not rule filters", f)
		case !topic.ValidFilter([]byte(f)):
			rc.fail(field, "%q is not a valid MQTT topic filter", f)
		}
	}
	mode, ok := modes[c.Durability]
	if !ok {
		rc.fail("durability", "%q: want spool, sinks or none", c.Durability)
	}
	r.mode = mode
	switch c.OnError {
	case "", OnErrorDeadLetter:
	case OnErrorSkip:
		r.skip = true
	default:
		rc.fail("on_error", "%q: want dead_letter or skip", c.OnError)
	}

	r.lets = rc.compileLets()
	if c.When != "" {
		r.when = rc.expr("when", c.When, reflect.Bool)
	}
	if c.Transform != "" {
		var tree *parser.Tree
		var run *conf.Config
		r.transform, _, tree, run = rc.exprFull("transform", c.Transform, reflect.Invalid, 0)
		if r.transform != nil {
			r.object = objectOf(tree, run)
		}
	}
	if len(c.To) == 0 {
		rc.fail("to", "at least one target is required")
	}
	for i := range c.To {
		r.targets = append(r.targets, rc.target(i, &c.To[i]))
	}
	r.mask = rc.mask
	r.payload = rc.payload
	if len(rc.errs) > 0 {
		return nil, rc.errs
	}
	return r, nil
}

func (rc *ruleCompiler) fail(field, format string, args ...any) {
	rc.errs = append(rc.errs, rc.in.src.errorf(rc.in.cfg.Name, field, format, args...))
}

// failExpr records an expr error with its position inside the expression,
// shifted by col0 columns (for expressions embedded in templates).
func (rc *ruleCompiler) failExpr(field string, err error, col0 int) {
	e := rc.in.src.errorf(rc.in.cfg.Name, field, "")
	e.Msg, e.ExprLine, e.ExprColumn = exprMessage(err)
	if e.ExprLine == 1 {
		e.ExprColumn += col0
	}
	e.Err = err
	rc.errs = append(rc.errs, e)
}

// target compiles one destination.
func (rc *ruleCompiler) target(i int, tc *TargetConfig) target {
	p := "to[" + strconv.Itoa(i) + "]"
	t := target{field: p, sink: tc.Sink, enc: rc.encoder(p, tc), columns: rc.columns(p, tc)}
	switch {
	case tc.Republish != nil && tc.Sink != "":
		rc.fail(p, "set either sink or republish, not both")
	case tc.Republish != nil:
		t.sink = RepublishSink
		rp := tc.Republish
		if tc.Topic != "" || tc.Key != "" {
			rc.fail(p, "republish takes its topic inside republish: and has no key")
		}
		if rp.QoS < 0 || rp.QoS > 2 {
			rc.fail(p+".republish.qos", "%d: want 0, 1 or 2", rp.QoS)
		}
		t.qos, t.retain = byte(rp.QoS), rp.Retain
		if rp.Topic == "" {
			rc.fail(p+".republish.topic", "required")
			return t
		}
		t.topic = rc.template(p+".republish.topic", rp.Topic)
		if t.topic != nil && t.topic.isConst() && !topic.ValidName([]byte(t.topic.lit)) {
			rc.fail(p+".republish.topic", "%q is not a valid MQTT topic name", t.topic.lit)
		}
		return t
	case tc.Sink == "":
		rc.fail(p, "sink or republish is required")
	case rc.sinks != nil && !rc.sinks[tc.Sink]:
		rc.fail(p+".sink", "unknown sink %q", tc.Sink)
	}
	if tc.Topic != "" {
		t.topic = rc.template(p+".topic", tc.Topic)
	}
	if tc.Key != "" {
		t.key = rc.expr(p+".key", tc.Key, reflect.Invalid)
	}
	return t
}

// compileLets compiles the lets in dependency order (source order among
// independent ones), so each sees the types of those it uses.
func (rc *ruleCompiler) compileLets() []letProg {
	lets := rc.in.cfg.Let
	if len(lets) == 0 {
		return nil
	}
	names := rc.in.src.lets
	if len(names) != len(lets) {
		names = names[:0:0]
		for n := range lets {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	if len(names) > maxLets {
		rc.fail("let", "%d lets: at most %d are allowed", len(names), maxLets)
		return nil
	}
	deps := map[string][]string{}
	for _, n := range names {
		f := "let." + n
		switch {
		case !letNameRe.MatchString(n):
			rc.fail(f, "%q is not a valid name", n)
		case reservedName(n):
			rc.fail(f, "%q is reserved (a variable or function)", n)
		}
		if tree, err := parser.Parse(lets[n]); err == nil {
			deps[n] = identifiers(tree.Node, func(id string) bool { _, ok := lets[id]; return ok && id != n })
		}
	}
	order, cycle := topoSort(names, deps)
	if cycle != nil {
		rc.fail("let."+cycle[0], "lets depend on each other: %v", cycle)
		return nil
	}
	out := make([]letProg, 0, len(order))
	for slot, n := range order {
		rc.letSlot[n] = slot
		prog, typ := rc.exprTyped("let."+n, lets[n], reflect.Invalid, 0)
		rc.letTypes[n] = typ
		if prog != nil {
			out = append(out, letProg{name: n, slot: slot, prog: prog})
		}
	}
	return out
}

// topoSort orders names so that each follows its deps; cycle lists a
// dependency cycle when there is one.
func topoSort(names []string, deps map[string][]string) (order, cycle []string) {
	state := map[string]int{} // 1 visiting, 2 done
	var stack []string
	var visit func(n string) bool
	visit = func(n string) bool {
		switch state[n] {
		case 1:
			i := slices.Index(stack, n)
			cycle = append(append([]string{}, stack[i:]...), n)
			return false
		case 2:
			return true
		}
		state[n] = 1
		stack = append(stack, n)
		for _, d := range deps[n] {
			if !visit(d) {
				return false
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = 2
		order = append(order, n)
		return true
	}
	for _, n := range names {
		if !visit(n) {
			return nil, cycle
		}
	}
	return order, nil
}

// identifiers returns the distinct identifiers in node accepted by keep.
func identifiers(node ast.Node, keep func(string) bool) []string {
	v := &identVisitor{keep: keep}
	ast.Walk(&node, v)
	return v.out
}

type identVisitor struct {
	keep func(string) bool
	out  []string
}

func (v *identVisitor) Visit(n *ast.Node) {
	if id, ok := (*n).(*ast.IdentifierNode); ok && v.keep(id.Value) && !slices.Contains(v.out, id.Value) {
		v.out = append(v.out, id.Value)
	}
}

// expr compiles one expression of the rule; nil after an error.
func (rc *ruleCompiler) expr(field, src string, expect reflect.Kind) *program {
	p, _ := rc.exprTyped(field, src, expect, 0)
	return p
}

// exprTyped compiles src and returns its checked type.
func (rc *ruleCompiler) exprTyped(field, src string, expect reflect.Kind, col0 int) (*program, reflect.Type) {
	p, t, _, _ := rc.exprFull(field, src, expect, col0)
	return p, t
}

// exprFull compiles src: parse, rewrite level(n), type-check against the
// typed environment, optimize, rename lets to their slots, then compile
// against env (see the env doc for why checking and compiling use two
// environments). col0 shifts error columns. It also returns the final tree
// and compile configuration.
func (rc *ruleCompiler) exprFull(field, src string, expect reflect.Kind, col0 int) (*program, reflect.Type, *parser.Tree, *conf.Config) {
	check := conf.CreateNew()
	check.WithEnv(checkEnv(rc.letTypes))
	for name, f := range functions {
		check.Functions[name] = f
	}
	if expect != reflect.Invalid {
		check.Expect, check.ExpectAny = expect, true
	}
	tree, err := parser.ParseWithConfig(src, check)
	if err != nil {
		rc.failExpr(field, err, col0)
		return nil, nil, nil, nil
	}
	rc.payload.add(tree.Node) // before level() rewrites, on the source's own tree
	pre := &preVisitor{lets: rc.letSlot, minLevels: rc.minLevels()}
	ast.Walk(&tree.Node, pre)
	if pre.err != "" {
		rc.fail(field, "%s", pre.err)
		return nil, nil, nil, nil
	}
	typ, err := checker.Check(tree, check)
	if err != nil {
		rc.failExpr(field, err, col0)
		return nil, nil, nil, nil
	}
	if err := optimizer.Optimize(&tree.Node, check); err != nil {
		rc.failExpr(field, err, col0)
		return nil, nil, nil, nil
	}
	rc.mask |= pre.mask
	callees := &calleeVisitor{}
	ast.Walk(&tree.Node, callees)
	ast.Walk(&tree.Node, &postVisitor{lets: rc.letSlot, callees: callees.set})

	run := conf.CreateNew()
	run.WithEnv(env{}) // a value: expr indexes struct fields only for struct (not pointer) natures
	for name, f := range check.Functions {
		if name != levelFunc { // run from the env's LevelF instead
			run.Functions[name] = f
		}
	}
	run.Strict = false
	prog, err := compiler.Compile(tree, run)
	if err != nil {
		rc.fail(field, "compiling: %v", err)
		return nil, nil, nil, nil
	}
	return newProgram(prog), typ, tree, run
}

// minLevels returns how many levels every topic matching one of the
// rule's filters has: a filter's levels, not counting a final '#'.
func (rc *ruleCompiler) minLevels() int {
	n := -1
	for _, f := range rc.in.cfg.Topics {
		k := strings.Count(f, "/") + 1
		if strings.HasSuffix(f, "#") {
			k--
		}
		if n < 0 || k < n {
			n = k
		}
	}
	return max(n, 0)
}

// preVisitor rewrites level(n) to __level(levels, n), records the
// variables used and refuses expression-local lets that shadow a variable.
type preVisitor struct {
	lets      map[string]int
	minLevels int // levels every topic matching the rule has
	mask      varMask
	err       string
}

func (v *preVisitor) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.IdentifierNode:
		if i, ok := varIndex[x.Value]; ok {
			v.mask |= 1 << i
		}
	case *ast.CallNode:
		id, ok := x.Callee.(*ast.IdentifierNode)
		if ok && id.Value == "match" && len(x.Arguments) == 2 {
			if f, ok := x.Arguments[0].(*ast.StringNode); ok && !topic.ValidFilter([]byte(f.Value)) {
				v.err = fmt.Sprintf("match: %q is not a valid MQTT topic filter", f.Value)
			}
		}
		if !ok || id.Value != "level" {
			return
		}
		if len(x.Arguments) != 1 {
			v.err = fmt.Sprintf("level takes one argument (the 0-based level index), got %d", len(x.Arguments))
			return
		}
		if c, ok := x.Arguments[0].(*ast.IntegerNode); ok && c.Value >= 0 && c.Value < min(v.minLevels, levelVars) {
			// The level surely exists: read it from its pre-split slot.
			id := &ast.IdentifierNode{Value: vars[levelVar0+c.Value].name}
			id.SetLocation(x.Location())
			ast.Patch(n, id)
			v.mask |= 1 << (levelVar0 + c.Value)
			return
		}
		levels := &ast.IdentifierNode{Value: "levels"}
		levels.SetLocation(id.Location())
		x.Callee = &ast.IdentifierNode{Value: levelFunc}
		x.Callee.SetLocation(id.Location())
		x.Arguments = append([]ast.Node{levels}, x.Arguments...)
		v.mask |= 1 << varIndex["levels"]
	case *ast.VariableDeclaratorNode:
		if _, ok := v.lets[x.Name]; ok || reservedName(x.Name) {
			v.err = fmt.Sprintf("let %s shadows a variable of the same name", x.Name)
		}
	}
}

// calleeVisitor collects the member nodes that are called (x.f()), which
// postVisitor must leave alone.
type calleeVisitor struct{ set map[ast.Node]bool }

func (v *calleeVisitor) Visit(n *ast.Node) {
	if c, ok := (*n).(*ast.CallNode); ok {
		if m, ok := c.Callee.(*ast.MemberNode); ok {
			if v.set == nil {
				v.set = map[ast.Node]bool{}
			}
			v.set[m] = true
		}
	}
}

// postVisitor runs on the checked tree: it renames let identifiers to
// their env slot field, and turns member reads on dynamic values
// (payload.temp, where expr would use reflection and allocate) into
// __get(payload, "temp"), keeping the node's checked type.
type postVisitor struct {
	lets    map[string]int
	callees map[ast.Node]bool
}

var (
	getFuncType = reflect.TypeOf(func(any, any) any { return nil })
	stringType  = reflect.TypeOf("")
	anyMapType  = reflect.TypeOf(map[string]any(nil))
)

func (v *postVisitor) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.IdentifierNode:
		if slot, ok := v.lets[x.Value]; ok {
			x.Value = "L" + strconv.Itoa(slot)
		}
	case *ast.CallNode:
		if id, ok := x.Callee.(*ast.IdentifierNode); ok && id.Value == levelFunc {
			id.SetType(getFuncType)
		}
	case *ast.MemberNode:
		prop, ok := x.Property.(*ast.StringNode)
		if !ok || x.Optional || v.callees[x] {
			return
		}
		if bt := x.Node.Type(); bt != nil && bt.Kind() != reflect.Interface && bt != anyMapType {
			return
		}
		callee := &ast.IdentifierNode{Value: getFunc}
		callee.SetType(getFuncType)
		key := &ast.StringNode{Value: prop.Value}
		key.SetType(stringType)
		call := &ast.CallNode{Callee: callee, Arguments: []ast.Node{x.Node, key}}
		call.SetNature(*x.Nature())
		call.SetLocation(x.Location())
		ast.Patch(n, call)
	}
}
