package rules

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// upperEncoder is an Encoder for tests: it prefixes the body with its
// message type, and fails on bodies containing "bad".
type upperEncoder struct{ message string }

func (u upperEncoder) Encode(body []byte) ([]byte, error) {
	if strings.Contains(string(body), "bad") {
		return nil, fmt.Errorf("encoding %s: unknown field \"bad\"", u.message)
	}
	return []byte(u.message + ":" + string(body)), nil
}

// testEncoders knows the message types acme.A and acme.B.
type testEncoders struct{}

func (testEncoders) Encoder(encoding, message string) (Encoder, error) {
	if encoding != EncodingProtobuf {
		return nil, fmt.Errorf("unknown encoding %q", encoding)
	}
	if message != "acme.A" && message != "acme.B" {
		return nil, errors.New("unknown Protobuf message type " + message)
	}
	return upperEncoder{message}, nil
}

func TestEncodingCompileErrors(t *testing.T) {
	tests := []struct {
		name     string
		to       string
		encoders Encoders
		want     []string
	}{
		{"unknown message type", "  to:\n  - {sink: k, encoding: protobuf, message: acme.A}\n  - {sink: k, encoding: protobuf, message: acme.Nope}\n", testEncoders{},
			[]string{`rules.yaml:6: rule "r" to[1].message: unknown Protobuf message type acme.Nope`}},
		{"message required", "  to: [{sink: k, encoding: protobuf}]\n", testEncoders{},
			[]string{`rules.yaml:4: rule "r" to[0].message: required with encoding protobuf`}},
		{"message without protobuf", "  to: [{sink: k, message: acme.A}]\n", testEncoders{},
			[]string{`rules.yaml:4: rule "r" to[0].message: set only with encoding protobuf`}},
		{"unknown encoding", "  to: [{sink: k, encoding: avro}]\n", testEncoders{},
			[]string{`rules.yaml:4: rule "r" to[0].encoding: "avro": want json or protobuf`}},
		{"unchecked without encoders", "  to: [{sink: k, encoding: protobuf, message: acme.Nope}]\n", nil, nil},
		{"json", "  to: [{sink: k, encoding: json}]\n", testEncoders{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := CompileBytes("rules.yaml", []byte(oneRule("  topics: [a]\n"+tt.to)), Options{Encoders: tt.encoders})
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestEncodingOutputs(t *testing.T) {
	tests := []struct {
		name      string
		rule      string
		payload   any
		encoders  Encoders
		want      []string // each output's Value, or "ERR " + a substring of Err
		wantCount int
	}{
		{"transform encoded per target", "  transform: '{\"v\": payload.v}'\n  to:\n  - {sink: k, encoding: protobuf, message: acme.A}\n  - {sink: k}\n  - {sink: k, encoding: protobuf, message: acme.B}\n",
			map[string]any{"v": 1}, testEncoders{}, []string{`acme.A:{"v":1}`, `{"v":1}`, `acme.B:{"v":1}`}, 3},
		{"raw payload encoded", "  to: [{sink: k, encoding: protobuf, message: acme.A}]\n",
			`{"raw":true}`, testEncoders{}, []string{`acme.A:{"raw":true}`}, 1},
		{"error dead-letters the target", "  transform: payload\n  to:\n  - {sink: k, encoding: protobuf, message: acme.A}\n  - {sink: k}\n",
			map[string]any{"bad": 1}, testEncoders{}, []string{`ERR rule "r" to[0].encoding: encoding acme.A: unknown field "bad"`, `{"bad":1}`}, 2},
		{"without encoders the body stays JSON", "  transform: payload\n  to: [{sink: k, encoding: protobuf, message: acme.A}]\n",
			map[string]any{"v": 2}, nil, []string{`{"v":2}`}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, errs := CompileBytes("r.yaml", []byte("- name: r\n  topics: [t]\n"+tt.rule), Options{Encoders: tt.encoders})
			if errs != nil {
				t.Fatal(errs)
			}
			in, err := (&Sample{Topic: "t", Payload: tt.payload}).Input()
			if err != nil {
				t.Fatal(err)
			}
			out := e.Route(in, nil)
			var got []string
			for _, o := range out {
				if o.Err != "" {
					got = append(got, "ERR "+o.Err)
					if o.Sink != "k" {
						t.Errorf("dead letter names sink %q, want k", o.Sink)
					}
					continue
				}
				got = append(got, string(o.Value))
			}
			if len(got) != tt.wantCount {
				t.Fatalf("outputs %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] && !(strings.HasPrefix(tt.want[i], "ERR ") && strings.Contains(got[i], tt.want[i][4:])) {
					t.Errorf("output %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestReloadKeepsEncoders reloads without Encoders in the options (as
// cmd's reload does): the holder's encoders still apply.
func TestReloadKeepsEncoders(t *testing.T) {
	cfg := func(msg string) Config {
		return Config{Rules: []RuleConfig{{Name: "r", Topics: []string{"t"}, Transform: "payload",
			To: []TargetConfig{{Sink: "k", Encoding: EncodingProtobuf, Message: "acme." + msg}}}}}
	}
	h, errs := NewHolder(cfg("A"), Options{Encoders: testEncoders{}})
	if errs != nil {
		t.Fatal(errs)
	}
	if err := h.Reload(cfg("Nope"), Options{}); err == nil || !strings.Contains(err.Error(), "unknown Protobuf message type acme.Nope") {
		t.Fatalf("reload to an unknown type: %v, want it refused", err)
	}
	if err := h.Reload(cfg("B"), Options{}); err != nil {
		t.Fatal(err)
	}
	in, _ := (&Sample{Topic: "t", Payload: map[string]any{"v": 1}}).Input()
	if out := h.Route(in, nil); len(out) != 1 || string(out[0].Value) != `acme.B:{"v":1}` {
		t.Fatalf("outputs after reload %+v", out)
	}
}
