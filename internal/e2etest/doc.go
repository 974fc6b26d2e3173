// Package e2etest is the harness the end-to-end tests share: it builds
// the sluice binary (and other commands of the module) once per test
// binary, runs child processes with their output kept for failure
// reports, starts `sluice run` with a config and reads its listener
// addresses from the JSON log, reads the admin API's ingest accounting,
// publishes with paho QoS 1 clients that record acknowledgements, and
// drives `sluice bench pub`.
//
// It imports testing and is meant for _test.go files only.
package e2etest
