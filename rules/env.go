package rules

import (
	"math/bits"
	"reflect"
	"strings"
	"time"
	"unsafe"

	"github.com/expr-lang/expr/types"

	"github.com/sluicehq/sluice/ingest"
)

// maxLets bounds the lets of one rule: each has a slot in env.
const maxLets = 32

// env is what compiled programs run against. Expressions are type-checked
// against the typed view described by vars (topic is a string, qos an
// int...), but compiled against this struct whose fields are all `any`:
// reading an interface field through reflection does not allocate, while
// reading a string field would, on every access. Each field holds exactly
// the dynamic type the checker was promised (see fill). Fields are filled
// lazily, once per message, for the variables a rule uses; let results
// live in L0..L31 (let names are renamed to their slot after checking).
type env struct {
	Topic           any `expr:"topic"`
	Levels          any `expr:"levels"`
	Payload         any `expr:"payload"`
	Raw             any `expr:"raw"`
	ClientID        any `expr:"clientid"`
	Username        any `expr:"username"`
	QoS             any `expr:"qos"`
	Retain          any `expr:"retain"`
	Props           any `expr:"props"`
	ContentType     any `expr:"content_type"`
	ResponseTopic   any `expr:"response_topic"`
	CorrelationData any `expr:"correlation_data"`
	ReceivedAt      any `expr:"received_at"`
	ReceivedMs      any `expr:"received_ms"`
	DecodeError     any `expr:"decode_error"`

	// Lv0..Lv15 hold topic levels 0..15 for level(n) with a constant n
	// that every filter of the rule guarantees (see preVisitor).
	Lv0  any `expr:"__lv0"`
	Lv1  any `expr:"__lv1"`
	Lv2  any `expr:"__lv2"`
	Lv3  any `expr:"__lv3"`
	Lv4  any `expr:"__lv4"`
	Lv5  any `expr:"__lv5"`
	Lv6  any `expr:"__lv6"`
	Lv7  any `expr:"__lv7"`
	Lv8  any `expr:"__lv8"`
	Lv9  any `expr:"__lv9"`
	Lv10 any `expr:"__lv10"`
	Lv11 any `expr:"__lv11"`
	Lv12 any `expr:"__lv12"`
	Lv13 any `expr:"__lv13"`
	Lv14 any `expr:"__lv14"`
	Lv15 any `expr:"__lv15"`

	// GetF and LevelF are the fast forms of member reads on dynamic values
	// and of level(n): expr calls a func(any, any) any held in the env
	// directly (OpCallTyped), without the argument slice that a registered
	// function costs per run. They are set once, never cleared.
	GetF   any `expr:"__get"`
	LevelF any `expr:"__level"`

	L0, L1, L2, L3, L4, L5, L6, L7, L8, L9, L10, L11, L12, L13, L14, L15 any
	L16, L17, L18, L19, L20, L21, L22, L23, L24, L25, L26, L27, L28, L29 any
	L30, L31                                                             any

	in       *ingest.Input
	have     varMask  // variables filled for the current message
	vars     [32]*any // the variable fields, in vars order
	levelBuf []string
	split    bool // levelBuf holds the current topic's levels
	// levelVals holds this message's levels as handed to expressions:
	// a fresh copy per message (boxed values may outlive it), so that
	// level(n) boxes into it without an allocation each.
	levelVals []string
	slots     [maxLets]*any
}

// varMask is a set of variable indexes (bit i = vars[i]).
type varMask uint32

// variable is one name of the expression environment.
type variable struct {
	name string
	typ  types.Type
	fill func(e *env)
}

// vars is the expression environment, in bit order. Keep in sync with
// README.md.
var vars = []variable{
	{"topic", types.String, func(e *env) { e.Topic = e.in.Msg.Topic }},
	{"levels", types.TypeOf([]string(nil)), func(e *env) { e.Levels = e.splitLevels() }},
	{"payload", types.Any, func(e *env) { e.Payload = e.in.Payload }},
	{"raw", types.String, func(e *env) { e.Raw = bytesView(e.in.Msg.Payload) }},
	{"clientid", types.String, func(e *env) { e.ClientID = e.in.Msg.ClientID }},
	{"username", types.String, func(e *env) { e.Username = e.in.Msg.Username }},
	{"qos", types.Int, func(e *env) { e.QoS = int(e.in.Msg.QoS) }},
	{"retain", types.Bool, func(e *env) { e.Retain = e.in.Msg.Retain }},
	{"props", types.TypeOf(map[string]string(nil)), func(e *env) { e.Props = e.props() }},
	{"content_type", types.String, func(e *env) { e.ContentType = e.in.Msg.ContentType }},
	{"response_topic", types.String, func(e *env) { e.ResponseTopic = e.in.Msg.ResponseTopic }},
	{"correlation_data", types.String, func(e *env) { e.CorrelationData = bytesView(e.in.Msg.CorrelationData) }},
	{"received_at", types.TypeOf(time.Time{}), func(e *env) { e.ReceivedAt = e.in.Msg.ReceivedAt }},
	{"received_ms", types.Int, func(e *env) { e.ReceivedMs = int(e.in.Msg.ReceivedAt.UnixMilli()) }},
	{"decode_error", types.String, func(e *env) { e.DecodeError = decodeErrorText(e.in) }},
	{"__lv0", types.String, func(e *env) { e.Lv0 = e.levelAt(0) }},
	{"__lv1", types.String, func(e *env) { e.Lv1 = e.levelAt(1) }},
	{"__lv2", types.String, func(e *env) { e.Lv2 = e.levelAt(2) }},
	{"__lv3", types.String, func(e *env) { e.Lv3 = e.levelAt(3) }},
	{"__lv4", types.String, func(e *env) { e.Lv4 = e.levelAt(4) }},
	{"__lv5", types.String, func(e *env) { e.Lv5 = e.levelAt(5) }},
	{"__lv6", types.String, func(e *env) { e.Lv6 = e.levelAt(6) }},
	{"__lv7", types.String, func(e *env) { e.Lv7 = e.levelAt(7) }},
	{"__lv8", types.String, func(e *env) { e.Lv8 = e.levelAt(8) }},
	{"__lv9", types.String, func(e *env) { e.Lv9 = e.levelAt(9) }},
	{"__lv10", types.String, func(e *env) { e.Lv10 = e.levelAt(10) }},
	{"__lv11", types.String, func(e *env) { e.Lv11 = e.levelAt(11) }},
	{"__lv12", types.String, func(e *env) { e.Lv12 = e.levelAt(12) }},
	{"__lv13", types.String, func(e *env) { e.Lv13 = e.levelAt(13) }},
	{"__lv14", types.String, func(e *env) { e.Lv14 = e.levelAt(14) }},
	{"__lv15", types.String, func(e *env) { e.Lv15 = e.levelAt(15) }},
}

// levelVar0 is the index in vars of __lv0; levelVars of them follow.
const (
	levelVar0 = 15
	levelVars = 16
)

// varIndex maps a variable name to its index in vars.
var varIndex = func() map[string]int {
	m := make(map[string]int, len(vars))
	for i, v := range vars {
		m[v.name] = i
	}
	return m
}()

const payloadVar = 2 // index of "payload" in vars

func newEnv() *env {
	e := &env{GetF: fastGet, LevelF: fastLevel}
	e.slots = [maxLets]*any{&e.L0, &e.L1, &e.L2, &e.L3, &e.L4, &e.L5, &e.L6, &e.L7,
		&e.L8, &e.L9, &e.L10, &e.L11, &e.L12, &e.L13, &e.L14, &e.L15,
		&e.L16, &e.L17, &e.L18, &e.L19, &e.L20, &e.L21, &e.L22, &e.L23,
		&e.L24, &e.L25, &e.L26, &e.L27, &e.L28, &e.L29, &e.L30, &e.L31}
	e.vars = [32]*any{&e.Topic, &e.Levels, &e.Payload, &e.Raw, &e.ClientID, &e.Username, &e.QoS, &e.Retain,
		&e.Props, &e.ContentType, &e.ResponseTopic, &e.CorrelationData, &e.ReceivedAt, &e.ReceivedMs, &e.DecodeError,
		&e.Lv0, &e.Lv1, &e.Lv2, &e.Lv3, &e.Lv4, &e.Lv5, &e.Lv6, &e.Lv7,
		&e.Lv8, &e.Lv9, &e.Lv10, &e.Lv11, &e.Lv12, &e.Lv13, &e.Lv14, &e.Lv15}
	return e
}

// reset binds e to a new message and forgets every filled variable.
func (e *env) reset(in *ingest.Input) {
	e.in = in
	// Only filled variables are set: clear just those.
	for m := e.have; m != 0; {
		i := bits.TrailingZeros32(uint32(m))
		*e.vars[i] = nil
		m &^= 1 << i
	}
	e.have = 0
	e.split = false
	e.levelVals = nil
}

// release drops references to the message so pooled envs retain nothing.
func (e *env) release(nlets int) {
	e.reset(nil)
	e.clearLets(nlets)
	clear(e.levelBuf)
	e.levelBuf = e.levelBuf[:0]
}

// need fills the variables in m not filled yet for this message.
func (e *env) need(m varMask) {
	missing := m &^ e.have
	if missing == 0 {
		return
	}
	e.have |= missing
	for missing != 0 {
		i := bits.TrailingZeros32(uint32(missing))
		vars[i].fill(e)
		missing &^= 1 << i
	}
}

// clearLets empties the first n let slots.
func (e *env) clearLets(n int) {
	for i := 0; i < n; i++ {
		*e.slots[i] = nil
	}
}

// splitLevels splits the topic into e.levelBuf once per message, reusing
// its storage; the levels are substrings of the topic, so only growing the
// slice allocates.
func (e *env) splitLevels() []string {
	if e.split {
		return e.levelBuf
	}
	e.split = true
	t := e.in.Msg.Topic
	ls := e.levelBuf[:0]
	for {
		i := strings.IndexByte(t, '/')
		if i < 0 {
			break
		}
		ls = append(ls, t[:i])
		t = t[i+1:]
	}
	ls = append(ls, t)
	e.levelBuf = ls
	return ls
}

// props builds the user properties map; with duplicate names the last
// value wins.
func (e *env) props() map[string]string {
	up := e.in.Msg.UserProperties
	m := make(map[string]string, len(up))
	for _, p := range up {
		m[p.Name] = p.Value
	}
	return m
}

// bytesView returns b as a string without copying. Message bytes are
// immutable once handed to the pipeline, so the view stays valid.
func bytesView(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func decodeErrorText(in *ingest.Input) string {
	if in.DecodeErr == nil {
		return ""
	}
	return in.DecodeErr.Error()
}

// checkEnv returns the typed environment a rule's expressions are checked
// against: the message variables plus the rule's lets compiled so far.
func checkEnv(lets map[string]reflect.Type) types.Map {
	m := make(types.Map, len(vars)+len(lets))
	for _, v := range vars {
		m[v.name] = v.typ
	}
	for name, t := range lets {
		m[name] = typeOf(t)
	}
	return m
}

// typeOf converts a checked result type to an expr type; interface and
// unknown types are `any`.
func typeOf(t reflect.Type) types.Type {
	if t == nil || t.Kind() == reflect.Interface {
		return types.Any
	}
	return types.TypeOf(reflect.Zero(t).Interface())
}

// levelAt returns topic level n, or nil when the topic is shorter (only
// possible when an expression names a __lv slot itself).
func (e *env) levelAt(n int) any {
	if ls := e.splitLevels(); n < len(ls) {
		if e.levelVals == nil {
			e.levelVals = append([]string(nil), ls...)
		}
		return boxStringAt(&e.levelVals[n])
	}
	return nil
}
