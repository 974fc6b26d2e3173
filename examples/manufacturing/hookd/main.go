// Command hookd is the manufacturing example's webhook receiver: it
// accepts Sluice's webhook requests, checks their HMAC signature (see
// sinks/README.md) and prints each alarm on one line.
//
//	ALARM_HOOK_SECRET=s3cret go run ./examples/manufacturing/hookd -addr 127.0.0.1:8090
package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "hookd: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hookd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	secretEnv := fs.String("secret-env", "ALARM_HOOK_SECRET", "environment variable holding the signing secret")
	if err := fs.Parse(args); err != nil {
		return err
	}
	secret := os.Getenv(*secretEnv)
	if secret == "" {
		return fmt.Errorf("%s is not set: the receiver checks signatures", *secretEnv)
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	fmt.Fprintf(stdout, "hookd listening on %s\n", l.Addr())
	h := &handler{secret: []byte(secret), out: stdout}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

// handler verifies and prints webhook requests.
type handler struct {
	secret []byte
	mu     sync.Mutex // serialises output lines
	out    io.Writer
}

// record is the part of a webhook record hookd prints.
type record struct {
	Rule    string          `json:"rule"`
	Topic   string          `json:"topic"`
	Payload json.RawMessage `json:"payload"`
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(w, "reading body", http.StatusBadRequest)
		return
	}
	if err := verify(h.secret, r.Header.Get("X-Sluice-Signature"), body, time.Now()); err != nil {
		h.printf("rejected %s: %v\n", r.URL.Path, err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var recs []record
	if err := json.Unmarshal(body, &recs); err != nil {
		h.printf("rejected %s: body is not a JSON array: %v\n", r.URL.Path, err)
		http.Error(w, "want a JSON array (webhook body: array)", http.StatusBadRequest)
		return
	}
	for _, rec := range recs {
		h.printf("alarm %s %s (signature ok)\n", rec.Topic, rec.Payload)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) printf(format string, a ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fmt.Fprintf(h.out, format, a...)
}

// verify checks "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t.body)>"
// within five minutes of now, as sinks/README.md describes.
func verify(secret []byte, header string, body []byte, now time.Time) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	if ts == "" || sig == "" {
		return errors.New("missing or malformed X-Sluice-Signature")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("signature timestamp %q: %w", ts, err)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("signature timestamp %s is %v away", ts, d.Round(time.Second))
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return errors.New("signature does not match")
	}
	return nil
}
