package auth

import (
	"bytes"
	"strings"
	"testing"
)

func TestPasswdMain(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		stdin    string
		code     int
		password string // verifies against the printed hash when code is 0
		user     string // expected "user:" prefix
		stderr   string
	}{
		{"default argon2id", nil, "s3cret\n", 0, "s3cret", "", ""},
		{"bcrypt", []string{"-algo", "bcrypt"}, "s3cret\n", 0, "s3cret", "", ""},
		{"CRLF and no more lines read", []string{"-algo", "argon2id"}, "s3cret\r\nsecond line\n", 0, "s3cret", "", ""},
		{"spaces kept, no newline", nil, " pass word ", 0, " pass word ", "", ""},
		{"users file line", []string{"-u", "alice"}, "s3cret\n", 0, "s3cret", "alice", ""},
		{"empty password", nil, "\n", 1, "", "", "empty password"},
		{"no input", nil, "", 1, "", "", "empty password"},
		{"unknown algorithm", []string{"-algo", "md5"}, "x\n", 2, "", "", "unknown algorithm"},
		{"colon in user", []string{"-u", "a:b"}, "x\n", 2, "", "", "cannot contain ':'"},
		{"extra argument", []string{"extra"}, "x\n", 2, "", "", "unexpected argument"},
		{"bad flag", []string{"-nope"}, "x\n", 2, "", "", "flag provided but not defined"},
		{"help", []string{"-h"}, "", 0, "", "", "Usage: sluice passwd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := PasswdMain(tt.args, strings.NewReader(tt.stdin), &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit code %d, want %d (stderr %q)", code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tt.stderr)
			}
			if code != 0 || tt.password == "" {
				if code != 0 && stdout.Len() > 0 {
					t.Errorf("stdout %q on failure", stdout.String())
				}
				return
			}
			out := stdout.String()
			if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
				t.Fatalf("stdout %q is not one line", out)
			}
			line := strings.TrimSuffix(out, "\n")
			if tt.user != "" {
				users, _, err := parseUsers(strings.NewReader(out), "stdout")
				if err != nil || users[tt.user] == nil {
					t.Fatalf("output %q is not a users file line for %q: %v", out, tt.user, err)
				}
				line = strings.TrimPrefix(line, tt.user+":")
			}
			if raceEnabled && strings.HasPrefix(line, "$2") {
				// bcrypt at full cost takes seconds under the race detector.
				if _, err := parseHash(line); err != nil {
					t.Fatal(err)
				}
				return
			}
			h, err := parseHash(line)
			if err != nil {
				t.Fatalf("printed hash %q: %v", line, err)
			}
			if !h.verify([]byte(tt.password)) || h.verify([]byte(tt.password+"x")) {
				t.Fatalf("printed hash %q does not verify %q (or verifies a wrong one)", line, tt.password)
			}
		})
	}
}
