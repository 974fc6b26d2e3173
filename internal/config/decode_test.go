package config

import (
	"reflect"
	"testing"
	"time"
)

func TestToInteger(t *testing.T) {
	tests := []struct {
		name    string
		in      any
		typ     reflect.Type
		want    any
		wantErr string
	}{
		{"int64 min", "-9223372036854775808", reflect.TypeFor[int64](), int64(-1 << 63), ""},
		{"int64 overflow", "9223372036854775808", reflect.TypeFor[int64](), nil, "9223372036854775808 is out of range for int64"},
		{"binary size", "16MiB", reflect.TypeFor[int](), 16 << 20, ""},
		{"decimal size with space", "64 KB", reflect.TypeFor[uint32](), uint32(64000), ""},
		{"size overflows field", "2GiB", reflect.TypeFor[int32](), nil, "2147483648 is out of range for int32"},
		{"hex and separators", "0x1_0", reflect.TypeFor[uint16](), uint16(16), ""},
		{"plus sign", "+5", reflect.TypeFor[int8](), int8(5), ""},
		{"negative zero into uint", "-0", reflect.TypeFor[uint](), uint(0), ""},
		{"negative into uint", -1, reflect.TypeFor[uint8](), nil, "-1 is out of range for uint8"},
		{"int8 min", -128, reflect.TypeFor[int8](), int8(-128), ""},
		{"int8 below min", -129, reflect.TypeFor[int8](), nil, "-129 is out of range for int8"},
		{"uint64 max", uint64(1<<64 - 1), reflect.TypeFor[uint64](), uint64(1<<64 - 1), ""},
		{"whole float", 3.0, reflect.TypeFor[int](), 3, ""},
		{"fraction", 3.5, reflect.TypeFor[int](), nil, "cannot use 3.5 as int: not an integer"},
		{"unknown unit", "5XB", reflect.TypeFor[int](), nil, `cannot parse "5XB" as int`},
		{"bool", true, reflect.TypeFor[int](), nil, "cannot use boolean true as int"},
		{"named type passes through", time.Duration(5), reflect.TypeFor[time.Duration](), time.Duration(5), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := toInteger(tt.in, tt.typ)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestNormalizePath(t *testing.T) {
	tests := map[string]string{
		"broker.listeners[0].name": "broker.listeners[0].name",
		"sinks[kafka].brokers[2]":  "sinks.kafka.brokers[2]",
		"broker":                   "broker",
	}
	for in, want := range tests {
		t.Run(in, func(t *testing.T) {
			if got := normalizePath(in); got != want {
				t.Errorf("normalizePath(%q) = %q, want %q", in, got, want)
			}
		})
	}
}
