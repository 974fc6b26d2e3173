package rulescli

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/sluicehq/sluice/ingest"
	"github.com/sluicehq/sluice/rules"
)

// caseFile is a DIR/*_test.yaml file.
type caseFile struct {
	Cases []testCase `yaml:"cases"`
}

// testCase is one message and the outputs it must produce, in order.
type testCase struct {
	Name    string       `yaml:"name"`
	Message rules.Sample `yaml:"message"`
	Expect  []expected   `yaml:"expect"`
	line    int
}

// expected is one expected output. Rule and Sink are always compared;
// the other fields only when given. Error matches a dead-letter output
// whose error contains it.
type expected struct {
	Rule   string  `yaml:"rule"`
	Sink   string  `yaml:"sink"`
	Topic  *string `yaml:"topic"`
	Key    *string `yaml:"key"`
	Value  any     `yaml:"value"`
	QoS    *int    `yaml:"qos"`
	Retain *bool   `yaml:"retain"`
	Mode   *string `yaml:"mode"`
	Error  *string `yaml:"error"`
}

func isTestFile(name string) bool {
	return strings.HasSuffix(name, "_test.yaml") || strings.HasSuffix(name, "_test.yml")
}

func runTest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice rules test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	dir := fs.Arg(0)
	ents, err := os.ReadDir(dir)
	if err != nil {
		fmt.Fprintf(stderr, "sluice rules test: %v\n", err)
		return 2
	}
	var ruleFiles, caseFiles []string
	for _, e := range ents {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if isTestFile(e.Name()) {
			caseFiles = append(caseFiles, p)
		} else {
			ruleFiles = append(ruleFiles, p)
		}
	}
	if len(caseFiles) == 0 {
		fmt.Fprintf(stderr, "sluice rules test: no *_test.yaml files in %s\n", dir)
		return 2
	}
	eng, errs := rules.LoadFiles(ruleFiles, rules.Options{})
	if errs != nil {
		printErrors(stderr, errs)
		return 2
	}
	passed, failed := 0, 0
	for _, cf := range caseFiles {
		cases, err := readCases(cf)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", cf, err)
			return 2
		}
		for _, c := range cases {
			where := fmt.Sprintf("%s:%d", cf, c.line)
			in, err := c.Message.Input()
			if err != nil {
				fmt.Fprintf(stdout, "FAIL %s: %s\n  %v\n", where, c.Name, err)
				failed++
				continue
			}
			want, got := render(c.Expect, eng.Route(in, nil), in.Msg.Payload)
			if slices.Equal(want, got) {
				fmt.Fprintf(stdout, "ok   %s: %s\n", where, c.Name)
				passed++
				continue
			}
			failed++
			fmt.Fprintf(stdout, "FAIL %s: %s\n  outputs differ (- want, + got):\n", where, c.Name)
			for _, l := range strings.Split(strings.TrimSuffix(diff(want, got), "\n"), "\n") {
				fmt.Fprintf(stdout, "    %s\n", l)
			}
			fmt.Fprintln(stdout)
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		return 1
	}
	return 0
}

// readCases decodes a case file, noting each case's line.
func readCases(path string) ([]testCase, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	var cf caseFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cf); err != nil {
		return nil, fmt.Errorf("decoding cases: %w", err)
	}
	if len(doc.Content) > 0 {
		for i := 0; i+1 < len(doc.Content[0].Content); i += 2 {
			if doc.Content[0].Content[i].Value == "cases" {
				for j, n := range doc.Content[0].Content[i+1].Content {
					if j < len(cf.Cases) {
						cf.Cases[j].line = n.Line
					}
				}
			}
		}
	}
	for i := range cf.Cases {
		if cf.Cases[i].Name == "" {
			cf.Cases[i].Name = "case " + strconv.Itoa(i+1)
		}
	}
	return cf.Cases, nil
}

// render turns expected and actual outputs into comparable lines, both
// ordered by rule name (stable: a rule's targets keep their order), since
// the order of rules across files is not what a case is about. Each actual
// output shows the fields its expected counterpart (the next one with the
// same rule and sink) names; unmatched actual outputs show every field.
func render(want []expected, got []ingest.Output, raw []byte) (w, g []string) {
	want = slices.Clone(want)
	got = slices.Clone(got)
	slices.SortStableFunc(want, func(a, b expected) int { return strings.Compare(a.Rule, b.Rule) })
	slices.SortStableFunc(got, func(a, b ingest.Output) int { return strings.Compare(a.Rule, b.Rule) })
	for _, e := range want {
		w = append(w, e.lines()...)
	}
	used := make([]bool, len(want))
	for _, o := range got {
		var sel *expected
		for i := range want {
			if !used[i] && want[i].Rule == o.Rule && want[i].Sink == o.Sink {
				used[i], sel = true, &want[i]
				break
			}
		}
		if o.Value == nil && o.Err == "" {
			o.Value = raw // nil means the raw payload
		}
		g = append(g, outputLines(o, sel)...)
	}
	return w, g
}

func (e *expected) lines() []string {
	l := []string{"- rule: " + e.Rule, "  sink: " + e.Sink}
	if e.Topic != nil {
		l = append(l, "  topic: "+*e.Topic)
	}
	if e.Key != nil {
		l = append(l, "  key: "+*e.Key)
	}
	if e.QoS != nil {
		l = append(l, "  qos: "+strconv.Itoa(*e.QoS))
	}
	if e.Retain != nil {
		l = append(l, "  retain: "+strconv.FormatBool(*e.Retain))
	}
	if e.Mode != nil {
		l = append(l, "  mode: "+*e.Mode)
	}
	if e.Error != nil {
		l = append(l, "  error: ~"+*e.Error)
	}
	if e.Value != nil {
		l = append(l, "  value: "+canonicalExpected(e.Value))
	}
	return l
}

// outputLines renders o with the fields sel names (all when sel is nil).
func outputLines(o ingest.Output, sel *expected) []string {
	all := sel == nil
	l := []string{"- rule: " + o.Rule, "  sink: " + o.Sink}
	if all && o.Topic != "" || !all && sel.Topic != nil {
		l = append(l, "  topic: "+o.Topic)
	}
	if all && o.Key != nil || !all && sel.Key != nil {
		l = append(l, "  key: "+string(o.Key))
	}
	if all && (o.QoS != 0 || o.Retain) || !all && sel.QoS != nil {
		l = append(l, "  qos: "+strconv.Itoa(int(o.QoS)))
	}
	if all && (o.QoS != 0 || o.Retain) || !all && sel.Retain != nil {
		l = append(l, "  retain: "+strconv.FormatBool(o.Retain))
	}
	if all && o.Mode != "" || !all && sel.Mode != nil {
		l = append(l, "  mode: "+string(o.Mode))
	}
	if all && o.Err != "" || !all && sel.Error != nil {
		if !all && o.Err != "" && strings.Contains(o.Err, *sel.Error) {
			l = append(l, "  error: ~"+*sel.Error)
		} else {
			l = append(l, "  error: "+o.Err)
		}
	}
	if all && o.Value != nil || !all && sel.Value != nil {
		l = append(l, "  value: "+canonicalBytes(o.Value))
	}
	return l
}

// canonicalBytes renders a body: canonical JSON when it is JSON, else a
// quoted string.
func canonicalBytes(b []byte) string {
	var v any
	if json.Unmarshal(b, &v) == nil {
		if c, err := json.Marshal(v); err == nil {
			return string(c)
		}
	}
	return strconv.Quote(string(b))
}

// canonicalExpected renders an expected value like canonicalBytes: a
// string is the body itself, anything else its JSON encoding.
func canonicalExpected(v any) string {
	if s, ok := v.(string); ok {
		return canonicalBytes([]byte(s))
	}
	c, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return canonicalBytes(c)
}
