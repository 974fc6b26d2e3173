package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
)

// newFlags returns a flag set for a command that writes its usage to
// stderr and reports errors instead of exiting.
func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sluice "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args into fs; done reports that the command should
// return code at once (help was asked for, or the flags were wrong).
func parseFlags(fs *flag.FlagSet, args []string) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return 2, true
	}
	return 0, false
}

// cmdRun runs the broker until SIGINT or SIGTERM, then shuts it down
// gracefully. A second signal kills the process at once.
func cmdRun(args []string, stderr io.Writer, environ []string) int {
	fs := newFlags("run", stderr)
	path := fs.String("c", "", "config `file` (default: the built-in sluice.default.yaml)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	cfg, err := loadConfig(*path, environ)
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	log := newLogger(cfg.Log, stderr)
	cfg.Runtime.apply(environ)
	source := *path
	if source == "" {
		source = defaultFileName + " (built in)"
	}
	log.Info("starting", "version", versionString(), "config", source)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Once the first signal arrives, restore the default handling so that
	// a second one terminates the process even if shutdown hangs.
	hooked := make(chan struct{})
	unhook := context.AfterFunc(ctx, func() {
		defer close(hooked)
		stop()
		log.Info("shutting down; signal again to force exit")
	})
	defer func() {
		if !unhook() {
			<-hooked // let the shutdown line come before the last one
		}
	}()

	a, err := newApp(cfg, *path, environ, log)
	if err != nil {
		log.Error("starting", "err", err)
		return 1
	}
	if err := a.run(ctx); err != nil {
		log.Error("running", "err", err)
		return 1
	}
	if !unhook() {
		<-hooked
	}
	log.Info("stopped")
	return 0
}

// cmdValidate loads the configuration as run would and prints every
// problem (exit 1) or "config OK".
func cmdValidate(args []string, stdout, stderr io.Writer, environ []string) int {
	fs := newFlags("validate", stderr)
	path := fs.String("c", "", "config `file` (default: the built-in sluice.default.yaml)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if _, err := loadConfig(*path, environ); err != nil {
		printConfigError(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, "config OK")
	return 0
}

// Set at link time to override what the build info says:
//
//	go build -ldflags "-X main.version=v1.2.0 -X main.commit=abc1234" ./cmd/sluice
var (
	version = ""
	commit  = ""
)

// cmdVersion prints version, commit and Go version.
func cmdVersion(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", stderr)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	fmt.Fprintln(stdout, versionString())
	return 0
}

// versionString describes this build from the link-time overrides, else
// from the module and VCS information the go command stamps in.
func versionString() string {
	v, c, goVersion := version, commit, runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if v == "" && bi.Main.Version != "" {
			v = bi.Main.Version
		}
		if c == "" {
			var rev, modified string
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					modified = s.Value
				}
			}
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if rev != "" && modified == "true" {
				rev += "-dirty"
			}
			c = rev
		}
	}
	if v == "" {
		v = "(devel)"
	}
	if c == "" {
		c = "unknown"
	}
	return fmt.Sprintf("sluice %s commit %s %s %s/%s", v, c, goVersion, runtime.GOOS, runtime.GOARCH)
}
