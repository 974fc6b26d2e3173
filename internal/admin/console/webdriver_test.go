package console

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/e2etest"
)

// A minimal W3C WebDriver client over net/http, enough to drive a
// headless Chromium through chromedriver: sessions, navigation, elements,
// script and screenshots.

// browserPeer finds a program the browser test needs. Under CI=true a
// missing one fails the test instead of skipping it.
func browserPeer(t *testing.T, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%v not found: install the Debian packages chromium and chromium-driver (.ci/test does)", names)
	}
	t.Skipf("%v not found: install the Debian packages chromium and chromium-driver to run the browser test", names)
	return ""
}

// webDriver is a running chromedriver with one session.
type webDriver struct {
	t       *testing.T
	base    string // http://127.0.0.1:port/session/id
	proc    *e2etest.Process
	session string
}

// startBrowser starts chromedriver on a free port and opens a session
// with headless Chromium; both end with the test.
func startBrowser(t *testing.T) *webDriver {
	t.Helper()
	chromium := browserPeer(t, "chromium", "chromium-browser", "google-chrome")
	driver := browserPeer(t, "chromedriver")
	port := e2etest.FreePort(t)
	proc, err := e2etest.StartProcess(driver, []string{"--port=" + strconv.Itoa(port)}, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	wd := &webDriver{t: t, proc: proc}
	root := fmt.Sprintf("http://127.0.0.1:%d", port)
	t.Cleanup(func() {
		if wd.session != "" {
			wd.call(http.MethodDelete, "", nil, nil) // closes Chromium
		}
		if !proc.Signal(syscall.SIGTERM, 10*time.Second) {
			proc.Kill()
		}
		if t.Failed() {
			proc.Dump(t, "chromedriver")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(root + "/status")
		if err == nil {
			var st struct {
				Value struct{ Ready bool } `json:"value"`
			}
			_ = json.NewDecoder(res.Body).Decode(&st)
			res.Body.Close()
			if st.Value.Ready {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromedriver not ready within 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": chromium,
			"args": []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
				"--window-size=1280,1400", "--user-data-dir=" + t.TempDir(), "--no-first-run", "--no-default-browser-check"},
		},
	}}}
	var created struct {
		SessionID string `json:"sessionId"`
	}
	wd.base = root + "/session"
	wd.call(http.MethodPost, "", caps, &created)
	if created.SessionID == "" {
		t.Fatal("chromedriver created no session")
	}
	wd.session = created.SessionID
	wd.base = root + "/session/" + created.SessionID
	return wd
}

// call sends one WebDriver command and decodes its value into out.
func (wd *webDriver) call(method, path string, body, out any) {
	wd.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			wd.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, wd.base+path, rd)
	if err != nil {
		wd.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		wd.t.Fatalf("webdriver %s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		wd.t.Fatalf("webdriver %s %s: %d %.300s", method, path, res.StatusCode, raw)
	}
	if res.StatusCode != http.StatusOK {
		wd.t.Fatalf("webdriver %s %s: %d %.500s", method, path, res.StatusCode, env.Value)
	}
	if out != nil {
		if err := json.Unmarshal(env.Value, out); err != nil {
			wd.t.Fatalf("webdriver %s %s: decoding %.300s: %v", method, path, env.Value, err)
		}
	}
}

// open navigates to url.
func (wd *webDriver) open(url string) {
	wd.t.Helper()
	wd.call(http.MethodPost, "/url", map[string]string{"url": url}, nil)
}

// find returns the element matching the CSS selector.
func (wd *webDriver) find(css string) string {
	wd.t.Helper()
	var el map[string]string
	wd.call(http.MethodPost, "/element", map[string]string{"using": "css selector", "value": css}, &el)
	for _, id := range el { // the key is the W3C element identifier
		return id
	}
	wd.t.Fatalf("no element %s", css)
	return ""
}

// click clicks the element matching css.
func (wd *webDriver) click(css string) {
	wd.t.Helper()
	wd.call(http.MethodPost, "/element/"+wd.find(css)+"/click", map[string]any{}, nil)
}

// typeInto clears the input matching css and types text into it.
func (wd *webDriver) typeInto(css, text string) {
	wd.t.Helper()
	id := wd.find(css)
	wd.call(http.MethodPost, "/element/"+id+"/clear", map[string]any{}, nil)
	wd.call(http.MethodPost, "/element/"+id+"/value", map[string]string{"text": text}, nil)
}

// eval runs script in the page and decodes its result into out.
func (wd *webDriver) eval(script string, out any, args ...any) {
	wd.t.Helper()
	if args == nil {
		args = []any{}
	}
	wd.call(http.MethodPost, "/execute/sync", map[string]any{"script": script, "args": args}, out)
}

// waitFor evaluates script (a function body returning a string) until it
// returns want, failing with a screenshot after timeout.
func (wd *webDriver) waitFor(what, script, want string, timeout time.Duration) {
	wd.t.Helper()
	deadline := time.Now().Add(timeout)
	var got string
	for {
		wd.eval(script, &got)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			path := wd.screenshot("failure")
			var text string
			wd.eval("return document.body.innerText", &text)
			wd.t.Fatalf("waiting for %s: got %q, want %q (screenshot %s)\npage text:\n%.3000s", what, got, want, path, text)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// screenshot saves a PNG of the page into $SLUICE_ARTIFACTS (or the
// test's temporary directory) and returns its path.
func (wd *webDriver) screenshot(name string) string {
	wd.t.Helper()
	var b64 string
	wd.call(http.MethodGet, "/screenshot", nil, &b64)
	png, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		wd.t.Fatalf("decoding screenshot: %v", err)
	}
	dir := os.Getenv("SLUICE_ARTIFACTS")
	if dir == "" {
		dir = wd.t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		wd.t.Fatal(err)
	}
	path := fmt.Sprintf("%s/console-%s.png", dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		wd.t.Fatal(err)
	}
	return path
}
