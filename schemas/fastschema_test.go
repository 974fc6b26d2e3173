package schemas

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/rules"
)

// fastSchemas are schemas the fast path implements. Their bounds sit on
// the numbers where float64 and jsonschema's decimal arithmetic part.
var fastSchemas = []string{
	`{"type":"object","properties":{"a":{"type":"integer","minimum":0.1,"exclusiveMaximum":100},
	  "b":{"enum":["x","y",null,true]},"c":{"type":"array","items":{"type":"string","minLength":2,"maxLength":3},"minItems":1,"maxItems":2},
	  "d":{"const":"k"}},"additionalProperties":{"type":["number","boolean"]},"minProperties":1,"maxProperties":4,"title":"t"}`,
	`{"anyOf":[{"type":"string"},{"type":"number","maximum":1152921504606846976}],"not":{"const":"no"}}`,
	`{"oneOf":[{"type":"number","minimum":0},{"type":"integer","maximum":10}]}`,
	`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","required":["x"],
	  "properties":{"x":{"type":"number","exclusiveMinimum":-0.3,"maximum":1e21}},"additionalProperties":false}`,
	`{"$schema":"https://json-schema.org/draft/2019-09/schema","maximum":0.1,"minimum":-9007199254740993,"enum":["s"],"const":"s"}`,
	`true`,
	`false`,
	`{"allOf":[{"required":["a"]},{"properties":{"a":{"type":"null"}}}],"$defs":{"unused":{"type":"string"}}}`,
	`{"type":"string","format":"date-time","description":"an annotation in 2020-12"}`,
	`{"type":["integer","string"],"maxLength":1,"maximum":0.30000000000000004,"minimum":0.3}`,
}

// slowSchemas use keywords the fast path leaves to jsonschema.
var slowSchemas = []string{
	`{"$ref":"#/$defs/x","$defs":{"x":{}}}`,
	`{"type":"string","pattern":"^a"}`,
	`{"$schema":"http://json-schema.org/draft-04/schema#","maximum":1,"exclusiveMaximum":true}`,
	`{"$schema":"http://json-schema.org/draft-07/schema#","type":"string","format":"date-time"}`,
	`{"$schema":"https://json-schema.org/draft/2019-09/schema","items":[{"type":"string"}]}`,
	`{"enum":[1,2]}`,
	`{"multipleOf":2}`,
	`{"properties":{"a":{"$id":"inner","type":"string"}}}`,
	`{"unevaluatedProperties":false}`,
}

// fastInstances are JSON payloads checked against every schema.
var fastInstances = []string{
	`{"a":1}`, `{"a":0.1}`, `{"a":0}`, `{"a":100}`, `{"a":99.99999999999999}`, `{"a":1.0}`, `{"a":1.5}`,
	`{"b":"x"}`, `{"b":1}`, `{"b":null}`, `{"b":true}`, `{"b":false}`, `{"c":["ab"]}`, `{"c":["é€x"]}`, `{"c":["abcd"]}`,
	`{"c":[]}`, `{"c":["ab","cd","ef"]}`, `{"d":"k"}`, `{"d":"K"}`, `{"e":true}`, `{"e":"s"}`, `{"e":1,"f":2,"g":3,"h":4}`, `{}`,
	`"no"`, `"yes"`, `"s"`, `""`, `"ab"`, `1152921504606846976`, `1152921504606846977`, `1152921504606847000`, `1e21`, `-0.3`,
	`-0.29999999999999993`, `-0.30000000000000004`, `{"x":-0.3}`, `{"x":-0.29999999999999993}`, `{"x":1e21}`,
	`{"x":1.0000000000000001e21}`, `{"x":1,"y":2}`, `{"y":2}`, `null`, `true`, `[1,2]`, `5`, `-1`, `11`, `10`, `5.5`, `0`,
	`0.1`, `0.10000000000000002`, `0.09999999999999999`, `-9007199254740993`, `-9007199254740992`, `0.3`,
	`0.30000000000000004`, `0.30000000000000007`, `{"a":null}`, `{"a":"x"}`, `"2024-01-01T00:00:00Z"`, `"not a date"`,
}

// compiledSchemas writes each schema to a file and compiles it.
func compiledSchemas(t testing.TB, docs []string) []*validator {
	dir := t.TempDir()
	out := make([]*validator, len(docs))
	for i, doc := range docs {
		file := filepath.Join(dir, strconv.Itoa(i)+".json")
		if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		v, err := compileSchema(file)
		if err != nil {
			t.Fatalf("schema %d: %v", i, err)
		}
		out[i] = v
	}
	return out
}

// agree fails unless the fast path, where it decides, says what
// jsonschema says.
func agree(t testing.TB, vds []*validator, v any, what string) {
	t.Helper()
	for i, vd := range vds {
		fast := vd.fast.check(v)
		if fast == unsure {
			continue
		}
		lib := vd.schema.Validate(v) == nil
		if (fast == valid) != lib {
			t.Errorf("schema %d, %s: fast path says %v, jsonschema valid=%v", i, what, fast == valid, lib)
		}
	}
}

func TestFastSchemaAgrees(t *testing.T) {
	vds := compiledSchemas(t, fastSchemas)
	for i, vd := range vds {
		if vd.fast == nil {
			t.Fatalf("schema %d has no fast path: %s", i, fastSchemas[i])
		}
	}
	decided := 0
	for _, in := range fastInstances {
		v, err := rules.DecodeJSON([]byte(in))
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		agree(t, vds, v, in)
		for _, vd := range vds {
			if vd.fast.check(v) != unsure {
				decided++
			}
		}
	}
	if want := len(vds) * len(fastInstances); decided != want {
		t.Errorf("fast path decided %d of %d JSON cases", decided, want)
	}
	t.Run("binary decoders' values", func(t *testing.T) {
		for _, v := range []any{int64(5), int64(-1), uint64(11), uint64(1 << 60), int64(-1 << 60),
			map[string]any{"a": int64(1), "x": uint64(3)}, map[string]any{"c": []any{"ab"}, "a": int64(100)}} {
			agree(t, vds, v, "Go value")
		}
		// Not JSON values: jsonschema decides (except the false schema).
		for _, v := range []any{[]byte("ab"), time.Unix(0, 0), math.NaN(), uint64(1 << 60), map[string]any{"e": []byte{1}}} {
			agree(t, vds, v, "Go value")
			if got := vds[0].fast.check(v); got != unsure {
				t.Errorf("schema 0 decided %v on %T (%v)", got, v, v)
			}
		}
	})
}

func TestFastSchemaRefuses(t *testing.T) {
	for i, vd := range compiledSchemas(t, slowSchemas) {
		if vd.fast != nil {
			t.Errorf("schema %s got a fast path; jsonschema alone must decide it", slowSchemas[i])
		}
	}
	if compileFast("testdata/telemetry.schema.json") == nil {
		t.Error("the telemetry schema has no fast path")
	}
}

// TestValidatorMessages checks that an invalid payload still gets
// jsonschema's messages with the fast path in front.
func TestValidatorMessages(t *testing.T) {
	vd, err := compileSchema("testdata/telemetry.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := rules.DecodeJSON([]byte(`{"device":"d","temp":900}`))
	path, reason, ok := vd.check(v)
	if ok || path != "/temp" || reason != "/temp: maximum: got 900, want 150" {
		t.Errorf("check = %q, %q, %v", path, reason, ok)
	}
}

// FuzzFastSchema checks the fast path against jsonschema on arbitrary
// JSON: wherever it decides, it must agree.
func FuzzFastSchema(f *testing.F) {
	for _, in := range fastInstances {
		f.Add([]byte(in))
	}
	vds := compiledSchemas(f, fastSchemas)
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := rules.DecodeJSON(b)
		if err != nil {
			return
		}
		agree(t, vds, v, string(b))
	})
}
