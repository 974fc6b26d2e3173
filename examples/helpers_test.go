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

// packages names the Debian package of each peer program.
var packages = map[string]string{
	"mosquitto_sub":     "mosquitto-clients",
	"mosquitto_pub":     "mosquitto-clients",
	"clickhouse-client": "clickhouse-client",
}

// requireProgram returns the path of a peer program, skipping the test
// when it is missing, or failing it under CI=true.
func requireProgram(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (CI=true requires it): apt-get install -y %s", name, packages[name])
	}
	t.Skipf("skipping: %s is not installed (apt-get install -y %s)", name, packages[name])
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

// rewrite replaces every occurrence of each old string of pairs (old,
// new, old, new, ...) in text, failing when one does not occur: a config
// changed under the test fails it instead of silently running something
// else.
func rewrite(t *testing.T, name, text string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(text, pairs[i]) {
			t.Fatalf("%s: %q does not occur", name, pairs[i])
		}
		text = strings.ReplaceAll(text, pairs[i], pairs[i+1])
	}
	return text
}

// shellWords splits a README command line into words: blanks separate
// words, single and double quotes group (without escapes: the READMEs
// use none).
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune // the open quote, 0 outside quotes
	for _, r := range line {
		switch {
		case quote == 0 && (r == '\'' || r == '"'):
			quote, inWord = r, true
		case r == quote:
			quote = 0
		case (r == ' ' || r == '\t') && quote == 0:
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
// arguments the test runs (see readmeCommand), with the MQTT port 1883
// replaced by mqttAddr's.
func localCommand(t *testing.T, line, sluiceBin, mqttAddr string) (string, []string) {
	t.Helper()
	_, port, _ := strings.Cut(mqttAddr, ":")
	env, bin, args := readmeCommand(t, line, sluiceBin, map[string]string{"1883": port})
	if len(env) > 0 {
		t.Fatalf("%q sets environment variables: use readmeCommand", line)
	}
	return bin, args
}

// readmeCommand turns a README command line into what the test runs:
// leading NAME=value words become environment settings, "go run ./cmd/sluice"
// becomes sluiceBin and "go run ./PATH" the command PATH of this module
// (built once), and each README port of ports (a word "1883", or
// "127.0.0.1:8090" inside a word) becomes the test's. `sluice sim` gets
// -port last, which overrides its default.
func readmeCommand(t *testing.T, line, sluiceBin string, ports map[string]string) (env []string, bin string, args []string) {
	t.Helper()
	words := shellWords(line)
	for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
		env = append(env, words[0])
		words = words[1:]
	}
	for i, w := range words {
		for from, to := range ports {
			if w == from {
				w = to
			}
			w = strings.ReplaceAll(w, "127.0.0.1:"+from, "127.0.0.1:"+to)
		}
		words[i] = w
	}
	if len(words) < 3 || words[0] != "go" || words[1] != "run" {
		return env, words[0], words[1:]
	}
	pkg, args := words[2], words[3:]
	if pkg != "./cmd/sluice" {
		return env, e2etest.Binary(t, "github.com/sluicehq/sluice/"+strings.TrimPrefix(pkg, "./")), args
	}
	if len(args) > 0 && args[0] == "sim" {
		args = append(args, "-port", ports["1883"])
	}
	return env, sluiceBin, args
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
