package rules

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/sluicehq/sluice/ingest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// goldenCase is a testdata/golden/*.yaml file: rules and messages; the
// outputs of every message are compared with the .golden file beside it.
type goldenCase struct {
	Rules    yaml.Node `yaml:"rules"`
	Messages []Sample  `yaml:"messages"`
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var c goldenCase
			if err := yaml.Unmarshal(data, &c); err != nil {
				t.Fatal(err)
			}
			// The file also holds messages: compile its rules alone.
			rulesYAML, err := yaml.Marshal(map[string]*yaml.Node{"rules": &c.Rules})
			if err != nil {
				t.Fatal(err)
			}
			e, errs := CompileBytes(file, rulesYAML, Options{Sinks: []string{"kafka", "clickhouse", "webhook"}})
			if errs != nil {
				t.Fatal(errs)
			}
			var b strings.Builder
			for i := range c.Messages {
				in, err := c.Messages[i].Input()
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&b, "# %d %s %s\n", i, in.Msg.Topic, in.Msg.Payload)
				var full strings.Builder
				for _, o := range e.Route(in, nil) {
					full.WriteString(formatOutput(o))
				}
				b.WriteString(full.String())
				// Decoding only the fields the rules read routes the same.
				if keys, all := e.PayloadKeys(); !all && in.DecodeErr == nil && len(in.Msg.Payload) > 0 {
					in.Payload, in.DecodeErr = DecodeJSONKeys(in.Msg.Payload, keys)
					var proj strings.Builder
					for _, o := range e.Route(in, nil) {
						proj.WriteString(formatOutput(o))
					}
					if proj.String() != full.String() {
						t.Errorf("message %d with payload keys %v:\n%s--- full decode:\n%s", i, keys, proj.String(), full.String())
					}
				}
			}
			got := b.String()
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("outputs differ from %s (run with -update to accept):\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

// formatOutput renders an output on one or two lines for golden files.
func formatOutput(o ingest.Output) string {
	var b strings.Builder
	fmt.Fprintf(&b, "- rule=%s sink=%s", o.Rule, o.Sink)
	if o.Topic != "" {
		fmt.Fprintf(&b, " topic=%s", o.Topic)
	}
	if o.Key != nil {
		fmt.Fprintf(&b, " key=%q", o.Key)
	}
	if o.QoS != 0 || o.Retain {
		fmt.Fprintf(&b, " qos=%d retain=%t", o.QoS, o.Retain)
	}
	if o.Mode != "" {
		fmt.Fprintf(&b, " mode=%s", o.Mode)
	}
	if o.Err != "" {
		fmt.Fprintf(&b, "\n  error: %s", o.Err)
	}
	if o.Value != nil {
		fmt.Fprintf(&b, "\n  value: %s", o.Value)
	}
	b.WriteString("\n")
	return b.String()
}
