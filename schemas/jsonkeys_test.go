package schemas

import (
	"errors"
	"reflect"
	"testing"
)

// TestJSONBindingKeys: a JSON binding without a schema builds only the
// members the rules read, as the default path does; with a schema it
// decodes everything (the schema reads it all); invalid JSON is refused
// either way.
func TestJSONBindingKeys(t *testing.T) {
	d, err := New(Config{Bindings: []BindingConfig{
		{Topic: "plain/#"},
		{Topic: "checked/#", Schema: "testdata/telemetry.schema.json"},
	}}, Options{PayloadKeys: func() ([]string, bool) { return []string{"device"}, false }})
	if err != nil {
		t.Fatal(err)
	}
	const doc = `{"device":"d","temp":21.5,"tags":["a"]}`
	tests := []struct {
		topic, payload string
		want           any
		invalid        bool
	}{
		{"plain/1", doc, map[string]any{"device": "d"}, false},
		{"checked/1", doc, map[string]any{"device": "d", "temp": 21.5, "tags": []any{"a"}}, false},
		{"other/1", doc, map[string]any{"device": "d"}, false},
		{"plain/1", `{"device":"d","temp":}`, nil, true},
		{"plain/1", `[1,2]`, []any{1.0, 2.0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.topic+" "+tt.payload, func(t *testing.T) {
			v, err := d.Decode(tt.topic, []byte(tt.payload))
			var inv *InvalidError
			if tt.invalid != errors.As(err, &inv) {
				t.Fatalf("error %v, want invalid %v", err, tt.invalid)
			}
			if !tt.invalid && (err != nil || !reflect.DeepEqual(v, tt.want)) {
				t.Errorf("Decode = %#v, %v, want %#v", v, err, tt.want)
			}
		})
	}
}
