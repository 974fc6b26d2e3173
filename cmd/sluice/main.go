// Command sluice is the Sluice binary: an embedded MQTT broker feeding a
// pipeline that acknowledges a QoS 1/2 PUBLISH only once it is durable.
//
// Usage:
//
//	sluice [run] [-c FILE]     run the broker (the default command)
//	sluice validate [-c FILE]  check a config file and print every problem
//	sluice version             print version, commit and Go version
//	sluice bench MODE ...      generate MQTT load against a broker
//	sluice dlq list|show|replay  inspect and re-drive dead letters
package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sluicehq/sluice/internal/bench"
	"github.com/sluicehq/sluice/internal/sim"
	"github.com/sluicehq/sluice/rules/rulescli"
)

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr, os.Environ()))
}

const usageText = `Usage: sluice <command> [flags]

Commands:
  run [-c FILE]       run the broker (the default when no command is given)
  validate [-c FILE]  check the configuration and print every problem
  version             print version, commit and Go version
  bench MODE [flags]  generate MQTT load against a broker ('sluice bench -h')
  rules test|eval      test rule sets against cases, explain one message
  sim [flags]          simulate a plant publishing telemetry ('sluice sim -h')
  passwd [-algo A]     hash a password (from stdin) for the users list or file
  dlq list|show|replay  inspect and re-drive dead letters of a running Sluice

Without -c, the built-in sluice.default.yaml is used. SLUICE_* environment
variables override the file: SLUICE_<SECTION>__<KEY>[__<KEY>...], e.g.
SLUICE_BROKER__LISTENERS__0__ADDRESS=0.0.0.0:1883.
`

// run is the whole program: it dispatches args (as os.Args, program name
// first) to a command and returns the exit code.
func run(args []string, stdout, stderr io.Writer, environ []string) int {
	cmd, rest := "run", args[1:]
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		cmd, rest = rest[0], rest[1:]
	} else if len(rest) > 0 && (rest[0] == "-h" || rest[0] == "-help" || rest[0] == "--help") {
		cmd = "help"
	}
	switch cmd {
	case "run":
		return cmdRun(rest, stderr, environ)
	case "validate":
		return cmdValidate(rest, stdout, stderr, environ)
	case "version":
		return cmdVersion(rest, stdout, stderr)
	case "passwd":
		return cmdPasswd(rest, stdout, stderr)
	case "sim":
		return sim.Main(rest, stdout, stderr)
	case "rules":
		return rulescli.Main(rest, stdout, stderr)
	case "dlq":
		return cmdDLQ(rest, stdout, stderr, environ)
	case "bench":
		return bench.Main(rest, stdout, stderr)
	case "help":
		fmt.Fprint(stdout, usageText)
		return 0
	}
	fmt.Fprintf(stderr, "sluice: unknown command %q\n\n%s", cmd, usageText)
	return 2
}
