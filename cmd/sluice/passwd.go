package main

import (
	"io"
	"os"

	"github.com/sluicehq/sluice/broker/auth"
)

// cmdPasswd prints the hash of a password read from stdin, for the users
// file or the broker's auth users (`sluice passwd -h`).
func cmdPasswd(args []string, stdout, stderr io.Writer) int {
	return auth.PasswdMain(args, os.Stdin, stdout, stderr)
}
