// Package rulescli implements `sluice rules ...`: testing rules against
// example messages and explaining what one message does.
package rulescli

import (
	"fmt"
	"io"
)

const usage = `usage:
  sluice rules test DIR
      Load the rules in DIR (*.yaml, *.yml; not *_test.yaml) and run the
      cases in DIR/*_test.yaml. Exit status 1 when a case fails.
  sluice rules eval -c CONFIG --topic TOPIC [--payload P] [flags]
      Show what one message does, rule by rule. Run with -h for flags.
`

// Main runs `sluice rules` with args (what follows "rules" on the command
// line) and returns the exit status: 0 success, 1 failing cases, 2 usage
// or load errors.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "test":
		return runTest(args[1:], stdout, stderr)
	case "eval":
		return runEval(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "sluice rules: unknown command %q\n%s", args[0], usage)
	return 2
}

// printErrors prints load errors, one per line.
func printErrors(w io.Writer, errs []error) {
	for _, err := range errs {
		fmt.Fprintln(w, err)
	}
	fmt.Fprintf(w, "%d error(s)\n", len(errs))
}
