package e2e

import (
	"testing"

	"github.com/sluicehq/sluice/internal/e2etest"
)

// TestMain removes the built binary after the run.
func TestMain(m *testing.M) { e2etest.Main(m) }

// proc is one sluice process started with `sluice run -c FILE`; the
// accounting helpers of admin_test.go hang off it.
type proc struct {
	*e2etest.Proc
}

// startSluice runs the sluice binary with config file cfg and waits until
// both listeners are up. The process is killed when the test ends if it
// still runs.
func startSluice(t testing.TB, cfg string) *proc {
	t.Helper()
	return &proc{e2etest.StartFile(t, e2etest.BuildSluice(t), cfg)}
}
