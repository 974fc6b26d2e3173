// Package e2e tests the ingest pipeline through the real sluice binary:
// it builds cmd/sluice, runs it as a subprocess on free ports with a
// webhook sink served by the test, and checks what the pipeline promises
// from the outside — every acknowledged message reaches the sink across a
// kill -9, a sink outage loses nothing and keeps each client's order,
// dead letters can be listed, shown and replayed with `sluice dlq`, a
// full spool pushes back on publishers, and the accounting balances.
//
// The package has no non-test code. The benchmarks of the ingest issue
// (spool versus none throughput, added ack latency, memory while a sink is
// down) live here too, behind SLUICE_BENCH=1; see ingest/DESIGN.md,
// "Ingest benchmarks".
package e2e
