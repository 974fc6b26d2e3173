package admin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// serve runs s on loopback until the test ends.
func serve(t *testing.T, s *Server) string {
	t.Helper()
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s.BaseURL()
}

func TestServer(t *testing.T) {
	s := New(Config{Address: "127.0.0.1:0", Token: "tok"}, nil, prometheus.NewRegistry())
	var broken atomic.Pointer[error]
	s.AddCheck("thing", func() error {
		if e := broken.Load(); e != nil {
			return *e
		}
		return nil
	})
	s.Handle("GET /api/v1/stream", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		rc := http.NewResponseController(w)
		if err := rc.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Errorf("SetWriteDeadline through the API writer: %v", err)
		}
		_, _ = io.WriteString(w, "data: one\n\n")
		if err := rc.Flush(); err != nil {
			t.Errorf("Flush through the API writer: %v", err)
		}
		<-r.Context().Done() // the client reads the event before the handler returns
	}))
	s.Mount("/api/v1/sub/", http.NotFoundHandler()) // a sub-handler's plain 404
	base := serve(t, s)

	for _, tc := range []struct {
		name, method, path, auth string
		status                   int
		contentType, body        string
	}{
		{"unknown API route is JSON", "GET", "/api/v1/nothing", "tok", 404, "application/json", `"error":"no such route"`},
		{"wrong method is JSON", "DELETE", "/api/openapi.json", "tok", 405, "application/json", "method not allowed"},
		{"sub-handler 404 is JSON", "GET", "/api/v1/sub/x", "tok", 404, "application/json", `"error"`},
		{"openapi needs the token", "GET", "/api/openapi.json", "", 401, "application/json", "bearer token"},
		{"openapi", "GET", "/api/openapi.json", "tok", 200, "application/json", `"openapi"`},
		{"outside /api/ untouched", "GET", "/nothing", "", 404, "text/plain; charset=utf-8", "404 page not found"},
		{"metrics open", "GET", "/metrics", "", 200, "", ""},
		{"healthz", "GET", "/healthz", "", 200, "application/json", `"ok"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, base+tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", "Bearer "+tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || (tc.contentType != "" && resp.Header.Get("Content-Type") != tc.contentType) ||
				!strings.Contains(string(body), tc.body) {
				t.Errorf("%d %q %s, want %d %q containing %q", resp.StatusCode, resp.Header.Get("Content-Type"), body,
					tc.status, tc.contentType, tc.body)
			}
			if strings.HasPrefix(tc.path, "/api/") && resp.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
		})
	}

	t.Run("streaming", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/api/v1/stream", nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		if err != nil || line != "data: one\n" {
			t.Errorf("first line %q, %v: the event was not flushed", line, err)
		}
	})

	t.Run("readyz", func(t *testing.T) {
		for _, tc := range []struct {
			err    error
			status int
			check  string
		}{
			{nil, 200, "ok"},
			{errors.New("thing is down"), 503, "thing is down"},
		} {
			broken.Store(&tc.err)
			resp, err := http.Get(base + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			var body struct {
				Ready  bool
				Checks map[string]string
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || body.Ready != (tc.status == 200) || body.Checks["thing"] != tc.check {
				t.Errorf("err %v: %d %+v", tc.err, resp.StatusCode, body)
			}
		}
	})

	if got := strings.Join(s.Routes(), ","); got != "/api/v1/sub/,GET /api/openapi.json,GET /api/v1/stream" {
		t.Errorf("Routes() = %s", got)
	}
}

func TestValidRequestID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"abc-123", true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{"with space", false},
		{"new\nline", false},
		{"ünicode", false},
	} {
		t.Run(tc.id, func(t *testing.T) {
			if validRequestID(tc.id) != tc.ok {
				t.Errorf("validRequestID(%q) = %v", tc.id, !tc.ok)
			}
		})
	}
}
