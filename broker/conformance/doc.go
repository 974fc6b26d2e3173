// Package conformance is the MQTT 3.1.1 / 5.0 conformance suite for
// Sluice's broker. It holds only tests: each test is named after the
// normative statement(s) it checks ("MQTT-3.1.0-2 second CONNECT closes
// the connection"), and COVERAGE.md maps statements to tests.
//
// The suite runs against Sluice's in-process broker and, when the binary
// is installed, against mosquitto as a reference. Choose the targets with
// -broker=sluice, -broker=mosquitto or -broker=sluice,mosquitto (or the
// SLUICE_CONFORMANCE_BROKER environment variable). With no choice it runs
// Sluice and, when installed (always under CI=true), mosquitto.
package conformance
