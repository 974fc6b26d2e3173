package examples

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2etest"
)

func TestMain(m *testing.M) { e2etest.Main(m) }

// requireProgram returns the path of a peer program, skipping the test
// when it is missing, or failing it under CI=true.
func requireProgram(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (CI=true requires it): apt-get install -y mosquitto-clients", name)
	}
	t.Skipf("skipping: %s is not installed (apt-get install -y mosquitto-clients)", name)
	return ""
}

// readFile reads a file of the examples tree (paths relative to it).
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// requireInREADME fails unless every snippet appears verbatim in the
// README at path: the tests run what the README says, and this keeps the
// two from drifting apart.
func requireInREADME(t *testing.T, path string, snippets ...string) {
	t.Helper()
	readme := readFile(t, path)
	for _, s := range snippets {
		if !strings.Contains(readme, s) {
			t.Errorf("%s no longer contains %q, which the test runs: update one or the other", path, s)
		}
	}
}

// rewrite replaces each old string of pairs (old, new, old, new, ...) in
// text, failing unless each occurs exactly once: a config changed under
// the test fails it instead of silently running something else.
func rewrite(t *testing.T, name, text string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if n := strings.Count(text, pairs[i]); n != 1 {
			t.Fatalf("%s: %q occurs %d times, want once", name, pairs[i], n)
		}
		text = strings.Replace(text, pairs[i], pairs[i+1], 1)
	}
	return text
}

// shellWords splits a README command line into words: blanks separate
// words, single quotes group (the only quoting the READMEs use).
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			quoted, inWord = !quoted, true
		case (r == ' ' || r == '\t') && !quoted:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// localCommand turns a README command line into the program and
// arguments the test runs: "go run ./cmd/sluice" becomes the built
// binary, and the default ports 1883 (MQTT) and 8088 (admin) become the
// test's.
func localCommand(t *testing.T, line, sluiceBin, mqttAddr string) (string, []string) {
	t.Helper()
	words := shellWords(line)
	_, port, _ := strings.Cut(mqttAddr, ":")
	for i, w := range words {
		if w == "1883" {
			words[i] = port
		}
	}
	if len(words) >= 3 && words[0] == "go" && words[1] == "run" && words[2] == "./cmd/sluice" {
		args := words[3:]
		if len(args) > 0 && args[0] == "sim" {
			args = append(args, "-port", port) // -port last: it overrides the default
		}
		return sluiceBin, args
	}
	return words[0], words[1:]
}

// output collects the lines a process prints and lets a test wait for
// them.
type output struct {
	mu    sync.Mutex
	lines []string
	added chan struct{} // signalled (without blocking) on every line
}

func newOutput() *output { return &output{added: make(chan struct{}, 1)} }

func (o *output) add(line string) {
	o.mu.Lock()
	o.lines = append(o.lines, line)
	o.mu.Unlock()
	select {
	case o.added <- struct{}{}:
	default:
	}
}

// mark is the number of lines so far; wait after a mark looks only at
// later lines.
func (o *output) mark() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.lines)
}

// since returns the lines from index from on.
func (o *output) since(from int) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.lines[min(from, len(o.lines)):]...)
}

// wait returns the first line at or after index from matching re,
// failing t after timeout.
func (o *output) wait(t *testing.T, from int, re *regexp.Regexp, timeout time.Duration) string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		for _, l := range o.since(from) {
			if re.MatchString(l) {
				return l
			}
		}
		select {
		case <-o.added:
		case <-deadline.C:
			t.Fatalf("no line matching %q within %v; got:\n%s", re, timeout, strings.Join(o.since(from), "\n"))
		}
	}
}

// startProgram starts a long-running README command (a subscriber, the
// simulator) and collects its output; it is killed when the test ends.
func startProgram(t *testing.T, name, bin string, args ...string) (*e2etest.Process, *output) {
	t.Helper()
	out := newOutput()
	p, err := e2etest.StartProcess(bin, args, out.add)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			p.Dump(t, name)
		}
	})
	return p, out
}

// runProgram runs a short README command to its end, in the repository
// root as the READMEs do, and returns its output, failing t on a non-zero
// exit or after a minute.
func runProgram(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = e2etest.CleanEnv()
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// waitSubscribed gives a just-started mosquitto_sub time to subscribe:
// it prints nothing when subscribed, so the test publishes a probe on
// probeTopic (which it must subscribe to) until the probe comes back.
func waitSubscribed(t *testing.T, out *output, pub, addr, probeTopic string) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		probe := "probe-" + strconv.Itoa(i)
		from := out.mark()
		// JSON, so that the pipeline counts no decode error for it.
		runProgram(t, pub, "-h", host, "-p", port, "-q", "1", "-t", probeTopic, "-m", `{"probe":"`+probe+`"}`)
		if waitFor(out, from, probe, 500*time.Millisecond) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto_sub did not receive probes on %s within 30s", probeTopic)
		}
	}
}

// waitFor reports whether a line containing s arrives at or after from
// within d.
func waitFor(out *output, from int, s string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, l := range out.since(from) {
			if strings.Contains(l, s) {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
