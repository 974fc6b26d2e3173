package sinkconfig

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/config"
	"github.com/sluicehq/sluice/sinks/kafka"
	"github.com/sluicehq/sluice/sinks/republish"
	"github.com/sluicehq/sluice/sinks/webhook"
)

var update = flag.Bool("update", false, "rewrite the config references in sinks/README.md")

const readme = "../README.md"

// TestReadmeReference checks that the config reference blocks of
// sinks/README.md are generated from the current defaults and doc
// comments (go test ./sinks/sinkconfig -run TestReadmeReference -update).
func TestReadmeReference(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	const module = "github.com/sluicehq/sluice"
	r := &config.Reference{
		Header: "Defaults; generated from the Config struct comments.",
		SourceDir: func(pkg string) (string, error) {
			rel, ok := strings.CutPrefix(pkg, module)
			if !ok {
				return "", errors.New("not in module " + module)
			}
			return filepath.Join(root, filepath.FromSlash(rel)), nil
		},
	}
	k, w, rp := kafka.DefaultConfig(), webhook.DefaultConfig(), republish.DefaultConfig()
	data, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	out := string(data)
	for _, s := range []config.Section{{Name: "kafka", Value: &k}, {Name: "webhook", Value: &w}, {Name: "republish", Value: &rp}} {
		var b bytes.Buffer
		if err := r.Write(&b, []config.Section{s}); err != nil {
			t.Fatal(err)
		}
		begin, end := "<!-- BEGIN "+s.Name+" reference -->\n", "<!-- END "+s.Name+" reference -->"
		i, j := strings.Index(out, begin), strings.Index(out, end)
		if i < 0 || j < i {
			t.Fatalf("%s has no %q ... %q block", readme, begin, end)
		}
		out = out[:i+len(begin)] + "```yaml\n" + b.String() + "```\n" + out[j:]
	}
	if *update {
		if err := os.WriteFile(readme, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if out != string(data) {
		t.Fatalf("%s is stale: run go test ./sinks/sinkconfig -run TestReadmeReference -update", readme)
	}
}
