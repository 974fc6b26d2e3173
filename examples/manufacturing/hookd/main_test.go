package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func sign(secret, ts, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + body))
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	old := strconv.FormatInt(now.Add(-10*time.Minute).Unix(), 10)
	body := `[{"payload":{}}]`
	for _, tc := range []struct{ name, header, want string }{
		{"good", sign("k", ts, body), ""},
		{"unknown part ignored", sign("k", ts, body) + ",v2=abc", ""},
		{"wrong secret", sign("other", ts, body), "does not match"},
		{"other body", sign("k", ts, body+" "), "does not match"},
		{"too old", sign("k", old, body), "away"},
		{"missing", "", "missing"},
		{"bad timestamp", "t=x,v1=00", "signature timestamp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verify([]byte("k"), tc.header, []byte(body), now)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("verify = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	var out bytes.Buffer
	h := &handler{secret: []byte("k"), out: &out}
	body := `[{"rule":"alarms","topic":"plant/a/alarm","payload":{"code":"X"}}]`
	for _, tc := range []struct {
		name, sig string
		code      int
		line      string
	}{
		{"signed", sign("k", strconv.FormatInt(time.Now().Unix(), 10), body), http.StatusNoContent, `alarm plant/a/alarm {"code":"X"} (signature ok)`},
		{"unsigned", "", http.StatusUnauthorized, "rejected /alarms: missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out.Reset()
			req := httptest.NewRequest(http.MethodPost, "/alarms", strings.NewReader(body))
			req.Header.Set("X-Sluice-Signature", tc.sig)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.code || !strings.HasPrefix(out.String(), tc.line) {
				t.Fatalf("status %d, printed %q; want %d and %q", rec.Code, out.String(), tc.code, tc.line)
			}
		})
	}
}
