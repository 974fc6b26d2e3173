package auth

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// PasswdMain is the `sluice passwd` command: it reads a password (one
// line) from stdin, prompting on stderr when stdin is a terminal, and
// prints its hash, or "user:hash" with -u, ready for the users file or
// the users[].password_hash setting. It returns the exit code.
func PasswdMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sluice passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	algo := fs.String("algo", AlgoArgon2id, "hash `algorithm`: argon2id or bcrypt")
	user := fs.String("u", "", "print a users file line `user`:hash instead of the bare hash")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sluice passwd [-algo argon2id|bcrypt] [-u USER] < password\n\n"+
			"Reads one line (the password) from stdin and prints its hash.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sluice passwd: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if strings.Contains(*user, ":") {
		fmt.Fprintln(stderr, "sluice passwd: a users file user name cannot contain ':'")
		return 2
	}
	if *algo != AlgoArgon2id && *algo != AlgoBcrypt {
		fmt.Fprintf(stderr, "sluice passwd: unknown algorithm %q (want %s or %s)\n", *algo, AlgoArgon2id, AlgoBcrypt)
		return 2
	}
	if isTerminal(stdin) {
		fmt.Fprint(stderr, "Password (shown as typed): ")
	}
	password, err := readLine(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "sluice passwd: reading password: %v\n", err)
		return 1
	}
	if password == "" {
		fmt.Fprintln(stderr, "sluice passwd: empty password")
		return 1
	}
	h, err := Hash(password, *algo)
	if err != nil {
		fmt.Fprintf(stderr, "sluice passwd: %v\n", err)
		return 1
	}
	if *user != "" {
		h = *user + ":" + h
	}
	fmt.Fprintln(stdout, h)
	return 0
}

// readLine returns the first line of r without its line ending.
func readLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		if errors.Is(err, io.EOF) {
			return "", nil
		}
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// isTerminal reports whether r is a character device such as a terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
