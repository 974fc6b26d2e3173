package clickhouse

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/config"
)

var update = flag.Bool("update", false, "rewrite the config reference in README.md")

// TestReadmeReference checks that README.md's config reference is
// generated from the current defaults and doc comments
// (go test ./sinks/clickhouse -run TestReadmeReference -update).
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
	cfg := DefaultConfig()
	var b bytes.Buffer
	if err := r.Write(&b, []config.Section{{Name: "clickhouse", Value: &cfg}}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	out := string(data)
	begin, end := "<!-- BEGIN clickhouse reference -->\n", "<!-- END clickhouse reference -->"
	i, j := strings.Index(out, begin), strings.Index(out, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no %q ... %q block", begin, end)
	}
	out = out[:i+len(begin)] + "```yaml\n" + b.String() + "```\n" + out[j:]
	if *update {
		if err := os.WriteFile("README.md", []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if out != string(data) {
		t.Fatal("README.md is stale: run go test ./sinks/clickhouse -run TestReadmeReference -update")
	}
}
