package config

import (
	"reflect"
	"strings"
)

// toMap converts a section's defaults struct into the nested map koanf
// layers, keyed by koanf tags the way the decoder will read them back.
// Nil pointers, maps and slices are left out, so they stay unset.
func toMap(v reflect.Value) any {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Struct:
		if !hasExportedField(v.Type()) {
			return v.Interface() // an opaque value such as time.Time
		}
		m := map[string]any{}
		structToMap(v, m)
		return m
	case reflect.Slice:
		if v.IsNil() {
			return nil
		}
		fallthrough
	case reflect.Array:
		list := make([]any, v.Len())
		for i := range list {
			list[i] = toMap(v.Index(i))
		}
		return list
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		m := make(map[string]any, v.Len())
		it := v.MapRange()
		for it.Next() {
			if val := toMap(it.Value()); val != nil {
				m[it.Key().String()] = val
			}
		}
		return m
	}
	return v.Interface()
}

// structToMap adds v's exported fields to m; ",squash" embeds flatten.
func structToMap(v reflect.Value, m map[string]any) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("koanf")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "squash") && f.Type.Kind() == reflect.Struct {
			structToMap(v.Field(i), m)
			continue
		}
		if name == "" {
			name = f.Name
		}
		if val := toMap(v.Field(i)); val != nil {
			m[name] = val
		}
	}
}

func hasExportedField(t reflect.Type) bool {
	for i := range t.NumField() {
		if t.Field(i).IsExported() {
			return true
		}
	}
	return false
}
