package config

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment variable Load reads.
const EnvPrefix = "SLUICE_"

// EnvSeparator separates key path elements in an environment variable name.
const EnvSeparator = "__"

// envVar is one SLUICE_* variable split into key path elements.
type envVar struct {
	name  string   // SLUICE_BROKER__LISTENERS__0__ADDRESS
	segs  []string // broker listeners 0 address
	value string
}

// parseEnviron picks the SLUICE_* variables out of environ ("NAME=value"
// entries, as from os.Environ) and sorts them so that list elements are
// appended in index order whatever the order of environ.
func parseEnviron(environ []string, known map[string]bool) ([]envVar, []*Error) {
	var (
		vars []envVar
		errs []*Error
	)
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		rest, ok := strings.CutPrefix(name, EnvPrefix)
		if !ok {
			continue
		}
		segs := strings.Split(strings.ToLower(rest), EnvSeparator)
		if slices.Contains(segs, "") {
			errs = append(errs, &Error{
				Msg:    "malformed name: want SLUICE_<SECTION>__<KEY>, with __ between nested keys and list indexes",
				Source: "env " + name,
			})
			continue
		}
		if !known[segs[0]] {
			msg := "unknown section"
			for _, s := range slices.Sorted(maps.Keys(known)) {
				if strings.HasPrefix(segs[0], s+"_") {
					msg += fmt.Sprintf(" (separate keys with __, e.g. %s%s__%s)",
						EnvPrefix, strings.ToUpper(s), strings.ToUpper(segs[0][len(s)+1:]))
					break
				}
			}
			errs = append(errs, &Error{Path: segs[0], Msg: msg, Source: "env " + name})
			continue
		}
		vars = append(vars, envVar{name: name, segs: segs, value: value})
	}
	slices.SortFunc(vars, func(a, b envVar) int { return compareSegs(a.segs, b.segs) })
	return vars, errs
}

// compareSegs orders key paths element by element, indexes numerically.
func compareSegs(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if isIndex(a[i]) && isIndex(b[i]) {
			x, _ := strconv.Atoi(a[i])
			y, _ := strconv.Atoi(b[i])
			if c := x - y; c != 0 {
				return c
			}
			continue
		}
		if c := strings.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// setIn returns cur with val stored at the key path segs, and the key
// path it set (in error form, starting from path). A numeric element
// indexes a list: it may name an existing element or the one just past the
// end (which appends). Missing mappings and lists are created, and their
// paths added to created. A string standing where a mapping or list must
// be (set by an earlier variable) is read as YAML.
func setIn(cur any, segs []string, val any, path string, created *[]string) (any, string, *Error) {
	if len(segs) == 0 {
		return val, path, nil
	}
	seg := segs[0]
	if s, ok := cur.(string); ok {
		var v any
		if err := yaml.Unmarshal([]byte(s), &v); err == nil {
			switch v.(type) {
			case map[string]any, []any:
				cur = v
			}
		}
	}
	if cur == nil {
		if isIndex(seg) {
			cur = []any{}
		} else {
			cur = map[string]any{}
		}
	}
	switch c := cur.(type) {
	case map[string]any:
		if _, ok := c[seg]; !ok {
			*created = append(*created, joinPath(path, seg))
		}
		v, p, err := setIn(c[seg], segs[1:], val, joinPath(path, seg), created)
		if err != nil {
			return nil, "", err
		}
		c[seg] = v
		return c, p, nil
	case []any:
		if !isIndex(seg) {
			return nil, "", &Error{Path: path, Msg: fmt.Sprintf("is a list: address an element by index (…__0__%s)", strings.ToUpper(seg))}
		}
		i, _ := strconv.Atoi(seg)
		if i > len(c) {
			return nil, "", &Error{
				Path: path + "[" + seg + "]",
				Msg:  fmt.Sprintf("index out of range: the list has %d elements (index %d appends)", len(c), len(c)),
			}
		}
		if i == len(c) {
			c = append(c, nil)
			*created = append(*created, path+"["+seg+"]")
		}
		v, p, err := setIn(c[i], segs[1:], val, path+"["+seg+"]", created)
		if err != nil {
			return nil, "", err
		}
		c[i] = v
		return c, p, nil
	}
	return nil, "", &Error{Path: path, Msg: fmt.Sprintf("is %s, not a mapping or list: cannot set %q inside it", describe(cur), seg)}
}
