package sparkplug

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
)

// stateFile is the persisted form of an edge node's alias tables.
type stateFile struct {
	Group    string                      `json:"group"`
	EdgeNode string                      `json:"edge_node"`
	BdSeq    int64                       `json:"bd_seq"`
	Aliases  map[uint64]alias            `json:"aliases"`
	Devices  map[string]map[uint64]alias `json:"devices"`
}

func (d *Decoder) statePath(group, edge string) string {
	return filepath.Join(d.opts.StateDir, url.PathEscape(group)+"~"+url.PathEscape(edge)+".json")
}

// load reads a node's tables; a missing file is no error. Called with
// n.mu held.
func (d *Decoder) load(group, edge string, n *node) error {
	b, err := os.ReadFile(d.statePath(group, edge))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading state: %w", err)
	}
	var s stateFile
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("parsing state %s: %w", d.statePath(group, edge), err)
	}
	n.born, n.bdSeq, n.aliases = true, s.BdSeq, boxNames(s.Aliases)
	for name, t := range s.Devices {
		n.devices[name] = &device{aliases: boxNames(t), name: name}
	}
	return nil
}

// persist writes a node's tables after a birth (write to a temporary file,
// sync, rename). A failure is logged: the tables stay in memory. Called
// with n.mu held.
func (d *Decoder) persist(t Topic, n *node) {
	if d.opts.StateDir == "" {
		return
	}
	s := stateFile{Group: t.Group, EdgeNode: t.EdgeNode, BdSeq: n.bdSeq, Aliases: n.aliases,
		Devices: make(map[string]map[uint64]alias, len(n.devices))}
	for name, dv := range n.devices {
		s.Devices[name] = dv.aliases
	}
	if err := writeFile(d.statePath(t.Group, t.EdgeNode), s); err != nil {
		d.log.Error("persisting sparkplug alias tables", "group", t.Group, "edge_node", t.EdgeNode, "error", err)
	}
}

func writeFile(path string, s stateFile) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encoding state: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating state dir: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return fmt.Errorf("creating temporary state file: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing state %s: %w", path, err)
	}
	return nil
}

// boxNames fills the boxed names of a table read from a file.
func boxNames(t map[uint64]alias) map[uint64]alias {
	for k, a := range t {
		t[k] = newAlias(k, a.Name, a.Datatype)
	}
	return t
}
