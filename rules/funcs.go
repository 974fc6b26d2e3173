package rules

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/vm/runtime"

	"github.com/sluicehq/sluice/broker/topic"
)

// levelFunc is what `level(n)` is rewritten to: `__level(levels, n)`;
// getFunc is what member reads on dynamic values are rewritten to.
const (
	levelFunc = "__level"
	getFunc   = "__get"
)

// functions are the functions available to expressions besides expr's
// builtins. Keep in sync with README.md.
var functions = map[string]*builtin.Function{
	// level is checked as this typed function, then run as fastLevel.
	levelFunc: fn(levelFunc, func(a []any) (any, error) { return fastLevel(a[0], a[1]), nil },
		new(func([]string, int) string)),
	"match": fn("match", func(a []any) (any, error) {
		return topic.Match(a[0].(string), a[1].(string)), nil
	}, new(func(string, string) bool)),
	"sha256": fn("sha256", func(a []any) (any, error) {
		sum := sha256.Sum256([]byte(a[0].(string)))
		return hex.EncodeToString(sum[:]), nil
	}, new(func(string) string)),
	"fnv32": fn("fnv32", func(a []any) (any, error) {
		h := fnv.New32a()
		h.Write([]byte(a[0].(string)))
		return int(h.Sum32()), nil
	}, new(func(string) int)),
	"fnv64": fn("fnv64", func(a []any) (any, error) {
		h := fnv.New64a()
		h.Write([]byte(a[0].(string)))
		return int(h.Sum64()), nil
	}, new(func(string) int)),
	"hex": fn("hex", func(a []any) (any, error) {
		return hex.EncodeToString([]byte(a[0].(string))), nil
	}, new(func(string) string)),
	"base64_encode": fn("base64_encode", func(a []any) (any, error) {
		return base64.StdEncoding.EncodeToString([]byte(a[0].(string))), nil
	}, new(func(string) string)),
	"base64_decode": fn("base64_decode", func(a []any) (any, error) {
		b, err := base64.StdEncoding.DecodeString(a[0].(string))
		if err != nil {
			return nil, fmt.Errorf("base64_decode: %w", err)
		}
		return string(b), nil
	}, new(func(string) string)),
	"json_encode": fn("json_encode", func(a []any) (any, error) {
		b, err := appendJSON(nil, a[0])
		if err != nil {
			return nil, fmt.Errorf("json_encode: %w", err)
		}
		return string(b), nil
	}, new(func(any) string)),
	"json_decode": fn("json_decode", func(a []any) (any, error) {
		var v any
		if err := json.Unmarshal([]byte(a[0].(string)), &v); err != nil {
			return nil, fmt.Errorf("json_decode: %w", err)
		}
		return v, nil
	}, new(func(string) any)),
	"format_time": fn("format_time", func(a []any) (any, error) {
		return formatTime(a[0].(time.Time), a[1].(string)), nil
	}, new(func(time.Time, string) string)),
	"unix_ms": fn("unix_ms", func(a []any) (any, error) {
		return int(a[0].(time.Time).UnixMilli()), nil
	}, new(func(time.Time) int)),
	"round_to": fn("round_to", func(a []any) (any, error) {
		x, err := number("round_to", a[0])
		if err != nil {
			return nil, err
		}
		p := math.Pow(10, float64(a[1].(int)))
		return math.Round(x*p) / p, nil
	}, new(func(any, int) float64)),
	"clamp": fn("clamp", func(a []any) (any, error) {
		var f [3]float64
		for i := range f {
			x, err := number("clamp", a[i])
			if err != nil {
				return nil, err
			}
			f[i] = x
		}
		return math.Min(math.Max(f[0], f[1]), f[2]), nil
	}, new(func(any, any, any) float64)),
	"pow": fn("pow", func(a []any) (any, error) {
		x, err := number("pow", a[0])
		if err != nil {
			return nil, err
		}
		y, err := number("pow", a[1])
		if err != nil {
			return nil, err
		}
		return math.Pow(x, y), nil
	}, new(func(any, any) float64)),
	"sqrt": fn("sqrt", func(a []any) (any, error) {
		x, err := number("sqrt", a[0])
		if err != nil {
			return nil, err
		}
		return math.Sqrt(x), nil
	}, new(func(any) float64)),
}

// fastGet reads m.k for a member expression on a dynamic value; expr
// recovers its panics into runtime errors.
func fastGet(m, k any) any {
	switch x := m.(type) {
	case map[string]any:
		return x[k.(string)]
	case nil:
		panic(fmt.Sprintf("cannot fetch %s from <nil>", k))
	}
	return runtime.Fetch(m, k)
}

// fastLevel is level(n) for levels that may not exist; negative n counts
// from the end.
func fastLevel(levels, n any) any {
	ls, i := levels.([]string), n.(int)
	if i < 0 {
		i += len(ls)
	}
	if i < 0 || i >= len(ls) {
		panic(fmt.Sprintf("level(%d): topic has %d levels", n, len(ls)))
	}
	return ls[i]
}

// fn builds an expr function with a checked signature.
func fn(name string, f func([]any) (any, error), sig any) *builtin.Function {
	return &builtin.Function{
		Name:  name,
		Func:  func(args ...any) (any, error) { return f(args) },
		Types: []reflect.Type{reflect.TypeOf(sig).Elem()},
	}
}

// number converts a numeric argument to float64.
func number(fname string, v any) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case float32:
		return float64(x), nil
	}
	return 0, fmt.Errorf("%s: want a number, got %T", fname, v)
}

// formatTime formats t with a Go layout or one of the names rfc3339,
// rfc3339nano, date, datetime (all in UTC).
func formatTime(t time.Time, layout string) string {
	switch strings.ToLower(layout) {
	case "rfc3339":
		layout = time.RFC3339
	case "rfc3339nano":
		layout = time.RFC3339Nano
	case "date":
		layout = time.DateOnly
	case "datetime":
		layout = time.DateTime
	}
	return t.UTC().Format(layout)
}

// reserved are names a let may not take: the variables, the functions and
// expr's builtins (checked separately).
func reservedName(name string) bool {
	if _, ok := varIndex[name]; ok {
		return true
	}
	if _, ok := functions[name]; ok {
		return true
	}
	if name == "level" || strings.HasPrefix(name, "__") || name == "$env" {
		return true
	}
	for _, b := range builtin.Builtins {
		if b.Name == name {
			return true
		}
	}
	return isSlotName(name)
}

// isSlotName reports whether name looks like a let slot field (L0..L31).
func isSlotName(name string) bool {
	if len(name) < 2 || len(name) > 3 || name[0] != 'L' {
		return false
	}
	for _, c := range name[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
