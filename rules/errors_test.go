package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rule wraps one rule body (indented fields) with a name and the given
// extra lines; line 1 is "rules:", line 2 "- name: r".
func oneRule(body string) string {
	return "rules:\n- name: r\n" + body
}

func TestCompileErrors(t *testing.T) {
	opts := Options{Sinks: []string{"kafka"}}
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"unknown name in when", oneRule("  topics: [a]\n  when: payload.temp > 80 && tmp == 1\n  to: [{sink: kafka}]\n"),
			[]string{`rules.yaml:4: rule "r" when: unknown name tmp (1:22)`}},
		{"when not boolean", oneRule("  topics: [a]\n  when: topic + \"x\"\n  to: [{sink: kafka}]\n"),
			[]string{`rules.yaml:4: rule "r" when: expected bool, but got string`}},
		{"let typed", oneRule("  topics: [a/b]\n  let: {site: level(1)}\n  when: site * 2 > 1\n  to: [{sink: kafka}]\n"),
			[]string{`rules.yaml:5: rule "r" when: invalid operation: * (mismatched types string and int) (1:6)`}},
		{"let uses let", oneRule("  topics: [a/b]\n  let: {b: a + 1, a: len(topic)}\n  when: b > \"x\"\n  to: [{sink: kafka}]\n"),
			[]string{`rules.yaml:5: rule "r" when: invalid operation: > (mismatched types int and string) (1:3)`}},
		{"let cycle", oneRule("  topics: [a]\n  let: {a: b, b: a}\n  to: [{sink: kafka}]\n"),
			[]string{`rules.yaml:4: rule "r" let.a: lets depend on each other: [a b a]`}},
		{"let reserved", oneRule("  topics: [a]\n  let: {topic: level(0), len: 1}\n  to: [{sink: kafka}]\n"),
			[]string{`rules.yaml:4: rule "r" let.topic: "topic" is reserved (a variable or function)`,
				`rules.yaml:4: rule "r" let.len: "len" is reserved (a variable or function)`}},
		{"expression let shadows", oneRule("  topics: [a]\n  when: let topic = 1; topic > 0\n  to: [{sink: kafka}]\n"),
			[]string{`rules.yaml:4: rule "r" when: let topic shadows a variable of the same name`}},
		{"syntax error", oneRule("  topics: [a]\n  transform: '{\"a\": }'\n  to: [{sink: kafka}]\n"),
			[]string{`rules.yaml:4: rule "r" transform: unexpected token Bracket("}") (1:7)`}},
		{"unknown sink", oneRule("  topics: [a]\n  to:\n  - sink: kafka\n  - sink: kafak\n"),
			[]string{`rules.yaml:6: rule "r" to[1].sink: unknown sink "kafak"`}},
		{"bad filters", oneRule("  topics: [a/#/b, \"$share/g/a\", \"\"]\n  to: [{sink: kafka}]\n"),
			[]string{`rules.yaml:3: rule "r" topics[0]: "a/#/b" is not a valid MQTT topic filter`,
				`rules.yaml:3: rule "r" topics[1]: "$share/g/a": shared subscriptions are not rule filters`,
				`rules.yaml:3: rule "r" topics[2]: "" is not a valid MQTT topic filter`}},
		{"missing topics and targets", oneRule("  when: true\n"),
			[]string{`rules.yaml:2: rule "r" topics: at least one topic filter is required`,
				`rules.yaml:2: rule "r" to: at least one target is required`}},
		{"enums", oneRule("  topics: [a]\n  durability: disk\n  on_error: retry\n  to: [{sink: kafka}]\n"),
			[]string{`rules.yaml:4: rule "r" durability: "disk": want spool, sinks or none`,
				`rules.yaml:5: rule "r" on_error: "retry": want dead_letter or skip`}},
		{"unknown keys", oneRule("  topics: [a]\n  wehn: true\n  to: [{sink: kafka, qos: 1}]\n"),
			[]string{`rules.yaml:4: rule "r" wehn: unknown key (want name, description, topics, when, let, transform, durability, on_error, to)`,
				`rules.yaml:5: rule "r" to[0].qos: unknown key (want sink, topic, key, republish, encoding, message or columns)`}},
		{"template unclosed", oneRule("  topics: [a]\n  to: [{sink: kafka, topic: 'x.{{ topic'}]\n"),
			[]string{`rules.yaml:4: rule "r" to[0].topic: unclosed {{ at column 3`}},
		{"template expression", oneRule("  topics: [a]\n  to: [{sink: kafka, topic: 'x.{{ topc }}'}]\n"),
			[]string{`rules.yaml:4: rule "r" to[0].topic: unknown name topc (1:6)`}},
		{"republish", oneRule("  topics: [a]\n  to:\n  - republish: {topic: 'a/+', qos: 3}\n  - {sink: kafka, republish: {topic: x}}\n  - republish: {qos: 1}\n"),
			[]string{`rules.yaml:5: rule "r" to[0].republish.qos: 3: want 0, 1 or 2`,
				`rules.yaml:5: rule "r" to[0].republish.topic: "a/+" is not a valid MQTT topic name`,
				`rules.yaml:6: rule "r" to[1]: set either sink or republish, not both`,
				`rules.yaml:7: rule "r" to[2].republish.topic: required`}},
		{"level arity", oneRule("  topics: [a]\n  when: level(1, 2) == \"x\"\n  to: [{sink: kafka}]\n"),
			[]string{`rules.yaml:4: rule "r" when: level takes one argument (the 0-based level index), got 2`}},
		{"match filter", oneRule("  topics: [a]\n  when: match(\"a/#/b\", topic)\n  to: [{sink: kafka}]\n"),
			[]string{`rules.yaml:4: rule "r" when: match: "a/#/b" is not a valid MQTT topic filter`}},
		{"names", "rules:\n- topics: [a]\n  to: [{sink: kafka}]\n- name: 'a b'\n  topics: [a]\n  to: [{sink: kafka}]\n- name: x\n  topics: [a]\n  to: [{sink: kafka}]\n- name: x\n  topics: [a]\n  to: [{sink: kafka}]\n",
			[]string{`rules.yaml:2: name: required`,
				`rules.yaml:4: rule "a b" name: "a b": use letters, digits, '-', '_' and '.'`,
				`rules.yaml:10: rule "x" name: duplicate rule name (first defined at rules.yaml:7)`}},
		{"not a list", "rules: {name: x}\n", []string{`rules.yaml:1: rules: want a list of rules`}},
		{"unknown top-level key", "rule:\n- name: x\n", []string{`rules.yaml:1: unknown key "rule" (want rules)`}},
		{"yaml syntax", "rules:\n- name: x\n  topics: [a\n", []string{`rules.yaml: parsing YAML: yaml: line 2: did not find expected ',' or ']'`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, errs := CompileBytes("rules.yaml", []byte(tt.src), opts)
			if e != nil {
				t.Fatal("compiled an invalid rule set")
			}
			var got []string
			for _, err := range errs {
				got = append(got, err.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestCompileErrorsInline(t *testing.T) {
	cfg := Config{Rules: []RuleConfig{
		{Name: "ok", Topics: []string{"a"}, To: []TargetConfig{{Sink: "kafka"}}},
		{Name: "bad", Topics: []string{"a"}, When: "tmp > 1", To: []TargetConfig{{Sink: "kafka"}}},
	}}
	t.Run("without config file", func(t *testing.T) {
		_, errs := Compile(cfg, Options{})
		want := `rules[1]: rule "bad" when: unknown name tmp (1:1)`
		if len(errs) != 1 || errs[0].Error() != want {
			t.Fatalf("got %v, want %s", errs, want)
		}
	})
	t.Run("with config file positions", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sluice.yaml")
		src := "broker:\n  listeners: []\nrules:\n  - name: ok\n    topics: [a]\n    to: [{sink: kafka}]\n  - name: bad\n    topics: [a]\n    when: tmp > 1\n    to: [{sink: kafka}]\n"
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		_, errs := Compile(cfg, Options{ConfigFile: path})
		want := path + `:9: rule "bad" when: unknown name tmp (1:1)`
		if len(errs) != 1 || errs[0].Error() != want {
			t.Fatalf("got %v, want %s", errs, want)
		}
	})
	t.Run("files from config", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "x.yaml"), []byte("- name: f\n  topics: [a]\n  when: nope\n  to: [{sink: kafka}]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, errs := Compile(Config{Files: []string{"missing.yaml", "*.yaml"}}, Options{ConfigFile: filepath.Join(dir, "sluice.yaml")})
		want := []string{
			`rules_files: reading ` + filepath.Join(dir, "missing.yaml") + `: stat ` + filepath.Join(dir, "missing.yaml") + `: no such file or directory`,
			filepath.Join(dir, "x.yaml") + `:3: rule "f" when: unknown name nope (1:1)`,
		}
		if len(errs) != 2 || errs[0].Error() != want[0] || errs[1].Error() != want[1] {
			t.Fatalf("got %v, want %v", errs, want)
		}
	})
}
