// Package config loads Sluice's configuration from three layers, each
// overriding the one before:
//
//  1. built-in defaults: the value each Section points to before Load;
//  2. a YAML file, whose top-level keys are the section names;
//  3. SLUICE_* environment variables.
//
// # Environment variables
//
// A variable names a key path: the prefix SLUICE_, the section, then each
// nested key, separated by a double underscore "__" (single underscores
// belong to key names). Names are case-insensitive; keys are lowercased.
// A numeric element indexes a list: it may name an existing element or the
// one just past the end, which appends an element.
//
//	SLUICE_LOG__LEVEL=debug                       log.level
//	SLUICE_BROKER__MAX_PACKET_SIZE=4MiB           broker.max_packet_size
//	SLUICE_BROKER__LISTENERS__0__ADDRESS=:1884    broker.listeners[0].address
//	SLUICE_BROKER__LISTENERS='[{name: a, address: "127.0.0.1:1883"}]'
//
// Values are strings converted to the field's type; a list, mapping or
// struct field takes its value as YAML (the last example replaces the
// whole list). Every SLUICE_* variable must name a known section.
//
// # Types and checking
//
// Unknown keys are errors, at every level. Durations are written with a
// unit ("10s", "1m30s"; the number 0 is also accepted). Integers must fit
// their field, and may be written with a byte-size unit: "16MiB", "64KB"
// (KB, MB, GB, TB are powers of 1000; KiB, MiB, GiB, TiB powers of 1024).
// Strings must be strings (quote a number meant as text).
//
// Load reports every problem at once, each with its key path and, when
// the value came from the file, file:line, or from the environment, the
// variable's name. It then runs each section's Validate method.
package config

import (
	"cmp"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
)

// Section is one top-level section of the configuration, such as
// "broker". Building the list of sections is the caller's job (cmd wires
// each package's config struct in explicitly).
type Section struct {
	// Name is the section's key in the file and the first element of its
	// environment variables (SLUICE_<NAME>__...). Lowercase.
	Name string
	// Value is a non-nil pointer to the section's struct (or list or map
	// of structs, for sections such as rules and sinks), holding the
	// defaults. When the section loads without errors, Load stores the
	// result in it. Fields are named by their `koanf` tags. If Value has
	// a method Validate() []error, Load calls it; each error should start
	// with a key path relative to the section ("listeners[0].address: ...").
	Value any
}

// validator is what a section's struct implements to check itself.
type validator interface {
	Validate() []error
}

// Sources are the layers Load puts over the defaults.
type Sources struct {
	// FileName names the file in error messages (its path as given).
	FileName string
	// File is the YAML document. Nil means no file.
	File []byte
	// Environ holds "NAME=value" entries, as from os.Environ. Only
	// SLUICE_* entries are read.
	Environ []string
}

// Load layers defaults, file and environment for each section, decodes
// them into the sections' values and validates them. A non-nil error of
// type Errors lists every problem found; any other error is a mistake in
// sections itself.
func Load(sections []Section, src Sources) error {
	known := make(map[string]bool, len(sections))
	k := koanf.New(".")
	for _, s := range sections {
		v := reflect.ValueOf(s.Value)
		if s.Name == "" || strings.ContainsAny(s.Name, ".[]") || s.Name != strings.ToLower(s.Name) {
			return fmt.Errorf("section name %q: must be lowercase, without . or []", s.Name)
		}
		if known[s.Name] {
			return fmt.Errorf("section %q: defined twice", s.Name)
		}
		if v.Kind() != reflect.Pointer || v.IsNil() || !slices.Contains([]reflect.Kind{reflect.Struct, reflect.Slice, reflect.Map}, v.Elem().Kind()) {
			return fmt.Errorf("section %q: value must be a non-nil pointer to a struct, slice or map, got %T", s.Name, s.Value)
		}
		known[s.Name] = true
		defaults := map[string]any{s.Name: toMap(v.Elem())}
		if err := k.Load(confmap.Provider(defaults, ""), nil); err != nil {
			return fmt.Errorf("loading defaults of section %q: %w", s.Name, err)
		}
	}

	var errs []*Error
	o := origins{}
	if src.File != nil {
		tree, ferrs := parseFile(src.FileName, src.File, o)
		errs = append(errs, ferrs...)
		for _, name := range slices.Sorted(maps.Keys(tree)) {
			if !known[name] {
				errs = append(errs, &Error{Path: name, Msg: "unknown section", Source: o.lookup(name)})
				delete(tree, name)
			}
		}
		if tree != nil {
			if err := k.Load(confmap.Provider(tree, ""), nil); err != nil {
				return fmt.Errorf("merging %s: %w", src.FileName, err)
			}
		}
	}

	vars, eerrs := parseEnviron(src.Environ, known)
	errs = append(errs, eerrs...)
	for _, ev := range vars {
		sec := ev.segs[0]
		var created []string
		v, path, err := setIn(k.Get(sec), ev.segs[1:], ev.value, sec, &created)
		if err != nil {
			err.Source = "env " + ev.name
			errs = append(errs, err)
			continue
		}
		if err := k.Set(sec, v); err != nil {
			return fmt.Errorf("setting %s: %w", ev.name, err)
		}
		for _, p := range append(created, path) {
			o.replace(p, "env "+ev.name)
		}
	}

	raw := k.Raw()
	for _, s := range sections {
		dst := reflect.ValueOf(s.Value).Elem()
		v, err := decodeSection(s.Name, dst.Type(), raw[s.Name])
		if err != nil {
			for _, e := range decodeErrors(err) {
				e.Source = o.lookup(e.Path)
				errs = append(errs, e)
			}
			continue // validating a half-decoded section only adds noise
		}
		dst.Set(v)
		if val, ok := s.Value.(validator); ok {
			for _, verr := range val.Validate() {
				rel, msg := splitValidateError(verr)
				path := joinPath(s.Name, rel)
				errs = append(errs, &Error{Path: path, Msg: msg, Source: o.lookup(path)})
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	sortErrors(errs, src.FileName)
	return Errors(errs)
}

// sortErrors puts the file's problems first, in line order, so they read
// top to bottom with the file; the rest keep the order they were found in.
func sortErrors(errs []*Error, fileName string) {
	line := func(e *Error) int {
		rest, ok := strings.CutPrefix(e.Source, fileName+":")
		if !ok || fileName == "" {
			return 1 << 30
		}
		n, err := strconv.Atoi(rest)
		if err != nil {
			return 1 << 30
		}
		return n
	}
	slices.SortStableFunc(errs, func(a, b *Error) int { return cmp.Compare(line(a), line(b)) })
}
