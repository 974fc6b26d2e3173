package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Compile compiles the inline rules of cfg followed by the rules in
// cfg.Files. It reports every problem at once; the Engine is nil when there
// is any. Inline rules get file and line positions when opts.ConfigFile
// names the config file they were decoded from.
func Compile(cfg Config, opts Options) (*Engine, []error) {
	h := sha256.New()
	var (
		ins  []ruleInput
		errs []error
	)
	if len(cfg.Rules) > 0 {
		b, _ := json.Marshal(cfg.Rules)
		h.Write(b)
		pos := inlinePositions(opts.ConfigFile, len(cfg.Rules))
		for i, rc := range cfg.Rules {
			in := ruleInput{cfg: rc, src: source{path: fmt.Sprintf("rules[%d]", i)}}
			if pos != nil && pos[i].cfg.Name == rc.Name {
				in.src = pos[i].src
			}
			ins = append(ins, in)
		}
	}
	files, ferrs := expandFiles(cfg.Files, baseDir(opts.ConfigFile))
	errs = append(errs, ferrs...)
	fins, ferrs := readRuleFiles(files, h)
	ins = append(ins, fins...)
	errs = append(errs, ferrs...)
	return build(ins, errs, h, files, opts)
}

// LoadFiles compiles the rules in paths (files, directories or globs).
func LoadFiles(paths []string, opts Options) (*Engine, []error) {
	return Compile(Config{Files: paths}, opts)
}

// CompileBytes compiles a rules document (a list of rules, or a mapping
// with a `rules` list) read from a file called name, for errors.
func CompileBytes(name string, data []byte, opts Options) (*Engine, []error) {
	h := sha256.New()
	h.Write(data)
	ins, errs := parseRuleFile(name, data)
	return build(ins, errs, h, nil, opts)
}

// inlinePositions re-reads the main config file for the positions of its
// inline rules; nil when unknown or when the file no longer has n rules.
func inlinePositions(configFile string, n int) []ruleInput {
	if configFile == "" {
		return nil
	}
	data, err := os.ReadFile(configFile)
	if err != nil {
		return nil
	}
	node := rulesNodeOf(data)
	if node == nil {
		return nil
	}
	ins, _ := decodeRuleList(configFile, node)
	if len(ins) != n {
		return nil
	}
	return ins
}

// baseDir is where relative rule files are resolved.
func baseDir(configFile string) string {
	if configFile == "" {
		return "."
	}
	return filepath.Dir(configFile)
}

// expandFiles resolves files, directories and globs to a sorted,
// duplicate-free list of files. A glob may match nothing; a plain path
// must exist. Directories and globs skip test case files (*_test.yaml).
func expandFiles(patterns []string, base string) ([]string, []error) {
	var (
		out  []string
		errs []error
	)
	for _, p := range patterns {
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		if strings.ContainsAny(p, "*?[") {
			m, err := filepath.Glob(p)
			if err != nil {
				errs = append(errs, &Error{Path: "rules_files", Msg: fmt.Sprintf("%q: %v", p, err), Err: err})
			}
			slices.Sort(m)
			for _, f := range m {
				if !isCaseFile(f) {
					out = append(out, f)
				}
			}
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			errs = append(errs, &Error{Path: "rules_files", Msg: fmt.Sprintf("reading %s: %v", p, err), Err: err})
			continue
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			errs = append(errs, &Error{Path: "rules_files", Msg: fmt.Sprintf("reading %s: %v", p, err), Err: err})
			continue
		}
		for _, e := range ents {
			if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") && !isCaseFile(e.Name()) {
				out = append(out, filepath.Join(p, e.Name()))
			}
		}
	}
	seen := map[string]bool{}
	uniq := out[:0]
	for _, f := range out {
		if !seen[f] {
			seen[f] = true
			uniq = append(uniq, f)
		}
	}
	return uniq, errs
}

// isCaseFile reports whether name is a rule test case file (*_test.yaml,
// see `sluice rules test`), which directories and globs skip.
func isCaseFile(name string) bool {
	return strings.HasSuffix(name, "_test.yaml") || strings.HasSuffix(name, "_test.yml")
}

// readRuleFiles parses files in order, hashing their contents into h.
func readRuleFiles(files []string, h hash.Hash) ([]ruleInput, []error) {
	var (
		ins  []ruleInput
		errs []error
	)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			errs = append(errs, &Error{File: f, Msg: fmt.Sprintf("reading: %v", err), Err: err})
			continue
		}
		io.WriteString(h, f)
		h.Write([]byte{0})
		h.Write(data)
		in, es := parseRuleFile(f, data)
		ins = append(ins, in...)
		errs = append(errs, es...)
	}
	return ins, errs
}

// build compiles parsed rules into an Engine.
func build(ins []ruleInput, errs []error, h hash.Hash, files []string, opts Options) (*Engine, []error) {
	var sinks map[string]bool
	if opts.Sinks != nil {
		sinks = map[string]bool{RepublishSink: true}
		for _, s := range opts.Sinks {
			sinks[s] = true
		}
	}
	seen := map[string]*source{}
	var rules []*rule
	for i := range ins {
		in := &ins[i]
		if prev, dup := seen[in.cfg.Name]; dup && in.cfg.Name != "" {
			e := in.src.errorf(in.cfg.Name, "name", "duplicate rule name (first defined at %s)", prev.where())
			e.Line = in.src.lineOf("name")
			errs = append(errs, e)
		} else {
			seen[in.cfg.Name] = &in.src
		}
		r, es := compileRule(in, sinks, opts.Encoders)
		errs = append(errs, es...)
		if r != nil {
			rules = append(rules, r)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	m := opts.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	e := &Engine{rules: rules, metrics: m}
	for i, r := range rules {
		r.m = m.bind(r.cfg.Name)
		for _, f := range r.cfg.Topics {
			e.index.add(f, int32(i))
		}
		e.maxLets = max(e.maxLets, len(r.lets))
		e.payload.merge(r.payload)
	}
	e.version = Version{Hash: hex.EncodeToString(h.Sum(nil)), LoadedAt: time.Now(), Rules: len(rules), Files: files}
	logger(opts.Logger).Debug("rules compiled", "rules", len(rules), "version", e.version.Hash[:12])
	return e, nil
}

// where describes a rule's location for messages.
func (s *source) where() string {
	if s.file != "" {
		return fmt.Sprintf("%s:%d", s.file, s.lineOf("name"))
	}
	return s.path
}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// LoadConfigFile compiles the rules of a main config file read on its
// own: its `rules` and `rules_files` keys (other sections are ignored), for
// tools that run without the full config loader. Errors carry positions.
func LoadConfigFile(path string, opts Options) (*Engine, []error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, []error{&Error{File: path, Msg: fmt.Sprintf("reading: %v", err), Err: err}}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, []error{&Error{File: path, Msg: fmt.Sprintf("parsing YAML: %v", err), Err: err}}
	}
	h := sha256.New()
	h.Write(data)
	var (
		ins      []ruleInput
		errs     []error
		patterns []string
	)
	if len(doc.Content) > 0 && doc.Content[0].Kind == yaml.MappingNode {
		root := doc.Content[0]
		for i := 0; i+1 < len(root.Content); i += 2 {
			k, v := root.Content[i], root.Content[i+1]
			switch k.Value {
			case "rules":
				in, es := decodeRuleList(path, v)
				ins, errs = append(ins, in...), append(errs, es...)
			case "rules_files":
				if err := v.Decode(&patterns); err != nil {
					errs = append(errs, &Error{File: path, Line: v.Line, Field: "rules_files", Msg: "want a list of paths"})
				}
			}
		}
	}
	files, ferrs := expandFiles(patterns, baseDir(path))
	errs = append(errs, ferrs...)
	fins, ferrs := readRuleFiles(files, h)
	ins, errs = append(ins, fins...), append(errs, ferrs...)
	return build(ins, errs, h, files, opts)
}
