package config

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Reference writes a YAML document holding every key of every section with
// its default value, each preceded by the doc comment of its Go field, so
// that the config reference is written once, in the structs.
type Reference struct {
	// Header is written first, as comment lines.
	Header string
	// Root is a struct (or pointer to one) whose fields, tagged with the
	// section names, document the sections themselves.
	Root any
	// SourceDir returns the directory holding a package's Go source.
	SourceDir func(pkgPath string) (string, error)

	docs map[string]map[string]map[string]string // dir, type, field: doc
}

// Write writes the reference for sections, using their current values
// as the defaults.
func (r *Reference) Write(w io.Writer, sections []Section) error {
	var b bytes.Buffer
	for _, line := range strings.Split(strings.TrimRight(r.Header, "\n"), "\n") {
		b.WriteString(strings.TrimRight("# "+line, " ") + "\n")
	}
	root := reflect.TypeOf(r.Root)
	for root != nil && root.Kind() == reflect.Pointer {
		root = root.Elem()
	}
	for _, s := range sections {
		b.WriteString("\n")
		if root != nil && root.Kind() == reflect.Struct {
			for i := range root.NumField() {
				f := root.Field(i)
				if tagName(f) == s.Name {
					if err := r.comment(&b, "", root, f); err != nil {
						return err
					}
				}
			}
		}
		if err := r.value(&b, "", s.Name, reflect.ValueOf(s.Value).Elem()); err != nil {
			return err
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// value writes "key: value" at indent, recursing into structs, lists and maps.
func (r *Reference) value(b *bytes.Buffer, indent, key string, v reflect.Value) error {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			fmt.Fprintf(b, "%s%s: null\n", indent, key)
			return nil
		}
		v = v.Elem()
	}
	switch {
	case v.Kind() == reflect.Struct && hasExportedField(v.Type()):
		fmt.Fprintf(b, "%s%s:\n", indent, key)
		return r.fields(b, indent+"  ", v)
	case v.Kind() == reflect.Slice || v.Kind() == reflect.Array:
		if v.Len() == 0 {
			fmt.Fprintf(b, "%s%s: []\n", indent, key)
			return r.example(b, indent, "- ", v.Type().Elem())
		}
		fmt.Fprintf(b, "%s%s:\n", indent, key)
		for i := range v.Len() {
			if err := r.item(b, indent+"  ", "- ", v.Index(i)); err != nil {
				return err
			}
		}
		return nil
	case v.Kind() == reflect.Map:
		if v.Len() == 0 {
			fmt.Fprintf(b, "%s%s: {}\n", indent, key)
			return r.example(b, indent, "<name>: ", v.Type().Elem())
		}
		fmt.Fprintf(b, "%s%s:\n", indent, key)
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		for _, k := range keys {
			if err := r.value(b, indent+"  ", scalar(k.String()), v.MapIndex(k)); err != nil {
				return err
			}
		}
		return nil
	}
	fmt.Fprintf(b, "%s%s: %s\n", indent, key, format(key, v))
	return nil
}

// item writes one list element after marker ("- ").
func (r *Reference) item(b *bytes.Buffer, indent, marker string, v reflect.Value) error {
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct || !hasExportedField(v.Type()) {
		fmt.Fprintf(b, "%s%s%s\n", indent, marker, format("", v))
		return nil
	}
	var inner bytes.Buffer
	if err := r.fields(&inner, "", v); err != nil {
		return err
	}
	// The marker goes on the first key line, after any comment lines.
	pad := strings.Repeat(" ", len(marker))
	placed := false
	for _, line := range strings.SplitAfter(inner.String(), "\n") {
		if line == "" {
			continue
		}
		switch {
		case placed:
			b.WriteString(indent + pad + line)
		case strings.HasPrefix(line, "#"):
			b.WriteString(indent + line)
		default:
			b.WriteString(indent + marker + line)
			placed = true
		}
	}
	return nil
}

// example documents the element type of an empty list or map with a
// commented-out element holding zero values.
func (r *Reference) example(b *bytes.Buffer, indent, marker string, elem reflect.Type) error {
	for elem.Kind() == reflect.Pointer {
		elem = elem.Elem()
	}
	if elem.Kind() != reflect.Struct || !hasExportedField(elem) {
		return nil
	}
	var inner bytes.Buffer
	fmt.Fprintf(&inner, "Each element:\n")
	if err := r.item(&inner, "  ", marker, reflect.New(elem).Elem()); err != nil {
		return err
	}
	for _, line := range strings.SplitAfter(inner.String(), "\n") {
		if line != "" {
			b.WriteString(indent + "# " + line)
		}
	}
	return nil
}

// fields writes a struct's fields, each after its doc comment.
func (r *Reference) fields(b *bytes.Buffer, indent string, v reflect.Value) error {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || tagName(f) == "-" {
			continue
		}
		if _, opts, _ := strings.Cut(f.Tag.Get("koanf"), ","); strings.Contains(opts, "squash") {
			if err := r.fields(b, indent, v.Field(i)); err != nil {
				return err
			}
			continue
		}
		if err := r.comment(b, indent, t, f); err != nil {
			return err
		}
		if err := r.value(b, indent, tagName(f), v.Field(i)); err != nil {
			return err
		}
	}
	return nil
}

// comment writes field f's doc comment, its Go name replaced by its key.
func (r *Reference) comment(b *bytes.Buffer, indent string, t reflect.Type, f reflect.StructField) error {
	doc, err := r.doc(t, f.Name)
	if err != nil {
		return err
	}
	if rest, ok := strings.CutPrefix(doc, f.Name+" "); ok {
		doc = tagName(f) + " " + rest
	}
	for _, line := range strings.Split(strings.TrimSpace(doc), "\n") {
		if line != "" {
			b.WriteString(strings.TrimRight(indent+"# "+line, " ") + "\n")
		}
	}
	return nil
}

// doc returns the doc comment of field in struct type t, parsing t's
// package source on first use.
func (r *Reference) doc(t reflect.Type, field string) (string, error) {
	if t.PkgPath() == "" || r.SourceDir == nil {
		return "", nil
	}
	dir, err := r.SourceDir(t.PkgPath())
	if err != nil {
		return "", fmt.Errorf("locating source of %s: %w", t.PkgPath(), err)
	}
	if r.docs == nil {
		r.docs = map[string]map[string]map[string]string{}
	}
	types, ok := r.docs[dir]
	if !ok {
		if types, err = parseDocs(dir); err != nil {
			return "", err
		}
		r.docs[dir] = types
	}
	return types[t.Name()][field], nil
}

// parseDocs reads the field doc comments of every struct type in dir.
// Types declared in test files count only when no other file declares them.
func parseDocs(dir string) (map[string]map[string]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	slices.SortStableFunc(files, func(a, b string) int {
		return compareBool(strings.HasSuffix(a, "_test.go"), strings.HasSuffix(b, "_test.go"))
	})
	out := map[string]map[string]string{}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", name, err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return false
			}
			fields := map[string]string{}
			for _, fl := range st.Fields.List {
				doc := fl.Doc.Text()
				if doc == "" {
					doc = fl.Comment.Text()
				}
				for _, id := range fl.Names {
					fields[id.Name] = doc
				}
			}
			if _, dup := out[ts.Name.Name]; !dup {
				out[ts.Name.Name] = fields
			}
			return false
		})
	}
	return out, nil
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// tagName is the key a struct field is read from.
func tagName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("koanf"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

// format writes a scalar so that Load reads it back unchanged. Integer
// keys named like sizes are written with a binary unit when exact.
func format(key string, v reflect.Value) string {
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	switch v.Kind() {
	case reflect.String:
		return scalar(v.String())
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n := v.Int(); n > 0 {
			return size(key, uint64(n))
		}
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return size(key, v.Uint())
	case reflect.Float32, reflect.Float64:
		s := strconv.FormatFloat(v.Float(), 'g', -1, v.Type().Bits())
		if !strings.ContainsAny(s, ".eEn") {
			s += ".0"
		}
		return s
	}
	return scalar(fmt.Sprint(v.Interface()))
}

func size(key string, n uint64) string {
	if strings.HasSuffix(key, "_bytes") || strings.HasSuffix(key, "_size") {
		for _, u := range []struct {
			name string
			n    uint64
		}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
			if n >= u.n && n%u.n == 0 {
				return strconv.FormatUint(n/u.n, 10) + u.name
			}
		}
	}
	return strconv.FormatUint(n, 10)
}

// scalar writes s as a YAML string, quoted only when needed.
func scalar(s string) string {
	out, err := yaml.Marshal(s)
	if err != nil || strings.ContainsAny(s, "\n\r") {
		return strconv.Quote(s)
	}
	return strings.TrimSuffix(string(out), "\n")
}
