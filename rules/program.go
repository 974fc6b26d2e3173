package rules

import (
	"github.com/expr-lang/expr/vm"
	"github.com/expr-lang/expr/vm/runtime"
)

// program is a compiled expression. Expressions that only read a variable
// or a let (`clientid`, `{{ site }}`, a let `level(1)`) skip the VM and
// read the env field directly: they are most of a rule's templates and
// keys.
type program struct {
	p      *vm.Program
	direct byte // directNone, directVar or directLet
	idx    int  // vars index or let slot
}

const (
	directNone = iota
	directVar
	directLet
)

// newProgram wraps p, detecting single-field reads.
func newProgram(p *vm.Program) *program {
	pr := &program{p: p}
	if len(p.Bytecode) != 1 || p.Bytecode[0] != vm.OpLoadField {
		return pr
	}
	f, ok := p.Constants[p.Arguments[0]].(*runtime.Field)
	if !ok || len(f.Path) != 1 {
		return pr
	}
	name := f.Path[0]
	if i, ok := varIndex[name]; ok {
		pr.direct, pr.idx = directVar, i
	} else if isSlotName(name) {
		pr.direct, pr.idx = directLet, atoi(name[1:])
	}
	return pr
}

// run evaluates the program against the state's env.
func (p *program) run(s *state) (any, error) {
	switch p.direct {
	case directVar:
		return *s.env.vars[p.idx], nil
	case directLet:
		return *s.env.slots[p.idx], nil
	}
	return s.vm.Run(p.p, s.env)
}

// atoi parses a small decimal number known to be valid.
func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
