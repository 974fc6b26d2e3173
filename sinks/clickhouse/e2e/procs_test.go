// Package e2e runs the real sluice binary against a real ClickHouse server
// (internal/chtest: the machine's clickhouse-server in its own directory
// on free ports), publishing with real MQTT clients and reading the table
// back over ClickHouse's HTTP interface. The harness (building and
// starting sluice, MQTT publishers, the ingest accounting) is
// internal/e2etest.
//
// The throughput run (TestBenchEndToEnd) runs only with SLUICE_BENCH=1.
package e2e

import (
	"testing"

	"github.com/sluicehq/sluice/internal/e2etest"
)

func TestMain(m *testing.M) { e2etest.Main(m) }
