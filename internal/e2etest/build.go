package e2etest

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// SluicePkg is the import path of the sluice command.
const SluicePkg = "github.com/sluicehq/sluice/cmd/sluice"

// builds caches the binaries built by this test binary.
var builds struct {
	mu   sync.Mutex
	dir  string
	bins map[string]*build // by import path
}

type build struct {
	once sync.Once
	path string
	err  error
}

// Main runs the tests and then removes the binaries Binary built. Call it
// from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	builds.mu.Lock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
	}
	builds.mu.Unlock()
	os.Exit(code)
}

// BuildSluice builds cmd/sluice once per test binary and returns its path.
// It skips the test in -short mode.
func BuildSluice(t testing.TB) string {
	t.Helper()
	return Binary(t, SluicePkg)
}

// Binary builds the command with import path pkg (of this module) once per
// test binary and returns its path. It skips the test in -short mode.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the sluice binary")
	}
	builds.mu.Lock()
	if builds.bins == nil {
		builds.bins = map[string]*build{}
	}
	b := builds.bins[pkg]
	if b == nil {
		b = &build{}
		builds.bins[pkg] = b
	}
	builds.mu.Unlock()
	b.once.Do(func() { b.path, b.err = goBuild(pkg) })
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// goBuild builds pkg into the shared temporary directory.
func goBuild(pkg string) (string, error) {
	builds.mu.Lock()
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "sluice-e2e-")
		if err != nil {
			builds.mu.Unlock()
			return "", fmt.Errorf("creating build dir: %w", err)
		}
		builds.dir = dir
	}
	dir := builds.dir
	builds.mu.Unlock()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(dir, path.Base(pkg))
	if b, err := exec.Command(goBin, "build", "-o", out, pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return out, nil
}
