package e2e

import (
	"testing"

	"github.com/sluicehq/sluice/internal/e2etest"
)

// TestMain removes the binaries the benchmarks built (e2etest.Main).
func TestMain(m *testing.M) { e2etest.Main(m) }
