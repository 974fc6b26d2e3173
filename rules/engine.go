// Package rules is Sluice's rules engine: it decides, for every message
// the broker accepts, which sinks receive it, under which topic and key,
// and with what body. Rules are YAML (see README.md), compiled once at
// load into expr programs, found through a trie of their topic filters,
// and swapped atomically on reload (Holder).
package rules

import (
	"errors"
	"sync"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/sluicehq/sluice/ingest"
)

// Engine is a compiled, immutable rule set. It implements ingest.Router
// and is safe for concurrent use.
type Engine struct {
	rules   []*rule
	index   index
	maxLets int
	payload payloadUse // what the rules read of payloads
	version Version
	metrics *Metrics
	pool    sync.Pool // *state
}

var _ ingest.Router = (*Engine)(nil)

// Version identifies a loaded rule set.
type Version struct {
	// Hash is the hex SHA-256 of the rule sources (inline rules and files).
	Hash string
	// LoadedAt is when the rule set was compiled.
	LoadedAt time.Time
	// Rules is the number of rules.
	Rules int
	// Files are the rule files read, in load order.
	Files []string
}

// Version returns the rule set's version.
func (e *Engine) Version() Version { return e.version }

// Rules returns the rule names in evaluation order.
func (e *Engine) Rules() []string {
	out := make([]string, len(e.rules))
	for i, r := range e.rules {
		out[i] = r.cfg.Name
	}
	return out
}

// state is the per-call scratch space: the environment, a VM and buffers.
// It is pooled so Route allocates nothing of its own in the steady state.
type state struct {
	env *env
	vm  vm.VM
	idx []int32
	buf []byte
	n   uint32 // evaluations, for sampling eval time
}

func (e *Engine) getState() *state {
	if s, ok := e.pool.Get().(*state); ok {
		return s
	}
	return &state{env: newEnv(), idx: make([]int32, 0, 16), buf: make([]byte, 0, 128)}
}

// Route appends the outputs of every rule matching in to dst. Rules run in
// load order; each rule's outputs are in target order. Runtime errors
// follow the rule's on_error and are counted; Route never panics.
func (e *Engine) Route(in *ingest.Input, dst []ingest.Output) []ingest.Output {
	if len(e.rules) == 0 || in == nil || in.Msg == nil {
		return dst
	}
	s := e.getState()
	s.idx = e.index.match(in.Msg.Topic, s.idx[:0])
	if len(s.idx) == 0 {
		e.metrics.unmatched.Inc()
	} else {
		s.env.reset(in)
		for _, i := range s.idx {
			dst = e.rules[i].eval(s, dst, nil)
		}
		s.env.release(e.maxLets)
	}
	e.pool.Put(s)
	return dst
}

// Trace is what one rule did with one message (see Explain).
type Trace struct {
	// Rule is the rule's name.
	Rule string
	// Filters are the rule's topic filters.
	Filters []string
	// Filter is the first of the rule's filters matching the topic; ""
	// when none did (the rule was not evaluated).
	Filter string
	// Lets are the let values, in evaluation order.
	Lets []LetValue
	// When is the condition's value ("" when the rule has none or it was
	// not reached).
	When string
	// Passed reports whether the rule produced outputs.
	Passed bool
	// Err is the runtime error, if any.
	Err string
	// Outputs are the rule's outputs (including dead-letter ones).
	Outputs []ingest.Output
}

// LetValue is one evaluated let.
type LetValue struct {
	Name  string
	Value any
}

// Explain evaluates every rule against in, whether or not its filters
// match, and says what each did. It is for tools, not the hot path, and
// does not count metrics.
func (e *Engine) Explain(in *ingest.Input) []Trace {
	out := make([]Trace, 0, len(e.rules))
	s := e.getState()
	s.env.reset(in)
	for _, r := range e.rules {
		tr := Trace{Rule: r.cfg.Name, Filters: r.cfg.Topics}
		for _, f := range r.cfg.Topics {
			var one index
			one.add(f, 0)
			if len(one.match(in.Msg.Topic, nil)) > 0 {
				tr.Filter = f
				break
			}
		}
		if tr.Filter != "" {
			tr.Outputs = r.eval(s, nil, &tr)
		}
		out = append(out, tr)
	}
	s.env.release(e.maxLets)
	e.pool.Put(s)
	return out
}

// eval runs one rule whose filter matched and appends its outputs. tr,
// when not nil, records what happened (and disables metrics).
func (r *rule) eval(s *state, dst []ingest.Output, tr *Trace) []ingest.Output {
	var start time.Time
	if tr == nil {
		r.m.matched.Inc()
		if s.n++; s.n&15 == 0 {
			start = time.Now()
		}
	}
	env := s.env
	env.need(r.mask)
	defer env.clearLets(len(r.lets))

	for _, l := range r.lets {
		v, err := l.prog.run(s)
		if err != nil {
			return r.fail(s, dst, tr, "let."+l.name, "", err)
		}
		*env.slots[l.slot] = v
		if tr != nil {
			tr.Lets = append(tr.Lets, LetValue{l.name, v})
		}
	}
	if r.when != nil {
		v, err := r.when.run(s)
		if err != nil {
			return r.fail(s, dst, tr, "when", "", err)
		}
		ok, isBool := v.(bool)
		if tr != nil {
			tr.When = textOf(v)
		}
		if !isBool {
			return r.fail(s, dst, tr, "when", "", errors.New("want a boolean, got "+typeName(v)))
		}
		if !ok {
			r.observe(start)
			return dst
		}
	}
	if tr == nil {
		r.m.passed.Inc()
	} else {
		tr.Passed = true
	}
	var value []byte
	if r.object != nil {
		var err error
		if value, err = r.object.encode(s); err != nil {
			return r.fail(s, dst, tr, "transform", "", err)
		}
	} else if r.transform != nil {
		v, err := r.transform.run(s)
		if err == nil {
			value, err = encodeValue(v)
		}
		if err != nil {
			return r.fail(s, dst, tr, "transform", "", err)
		}
	}
	for i := range r.targets {
		t := &r.targets[i]
		out := ingest.Output{Rule: r.cfg.Name, Sink: t.sink, Value: value, QoS: t.qos, Retain: t.retain, Mode: r.mode}
		if t.topic != nil {
			topicName, err := t.topic.render(s)
			if err == nil && t.sink == RepublishSink {
				err = checkTopicName(topicName)
			}
			if err != nil {
				dst = r.fail(s, dst, tr, t.field+".topic", t.sink, err)
				continue
			}
			out.Topic = topicName
		}
		if t.key != nil {
			v, err := t.key.run(s)
			if err == nil {
				out.Key, err = encodeKey(v)
			}
			if err != nil {
				dst = r.fail(s, dst, tr, t.field+".key", t.sink, err)
				continue
			}
		}
		body := value
		if t.columns != nil {
			b, col, err := t.columns.encode(s)
			if err != nil {
				dst = r.fail(s, dst, tr, t.field+".columns."+col, t.sink, err)
				continue
			}
			body, out.Value = b, b
		}
		if t.enc != nil {
			var err error
			if out.Value, err = encodeBody(t.enc, body, s.env); err != nil {
				dst = r.fail(s, dst, tr, t.field+".encoding", t.sink, err)
				continue
			}
		}
		dst = append(dst, out)
	}
	r.observe(start)
	return dst
}

// observe records a sampled evaluation time.
func (r *rule) observe(start time.Time) {
	if !start.IsZero() {
		r.m.eval.Observe(time.Since(start).Seconds())
	}
}

// fail handles a runtime error: count it, then dead-letter (an output
// with Err set, naming the target's sink when one target failed) or skip.
func (r *rule) fail(s *state, dst []ingest.Output, tr *Trace, field, sink string, err error) []ingest.Output {
	msg := runtimeMessage(r.cfg.Name, field, err, s.env)
	if tr != nil {
		tr.Err = msg
	} else {
		r.m.errors.Inc()
	}
	if r.skip {
		return dst
	}
	return append(dst, ingest.Output{Rule: r.cfg.Name, Sink: sink, Mode: r.mode, Err: msg})
}
