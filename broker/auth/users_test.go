package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseUsers(t *testing.T) {
	a, b := cheapHash(t, "a", AlgoArgon2id), cheapHash(t, "b", AlgoBcrypt)
	tests := []struct {
		name    string
		text    string
		users   []string
		wantErr []string
	}{
		{"users, comments, blanks, CRLF", "# users\n\nalice:" + a + "\r\n  bob:" + b + "  \n", []string{"alice", "bob"}, nil},
		{"colon in user name", "dept:alice:" + a + "\n", []string{"dept:alice"}, nil},
		{"no final newline", "alice:" + a, []string{"alice"}, nil},
		{"every problem with its line", "alice:" + a + "\nnocolon\n:" + a + "\nalice:" + b + "\ncarol:plain\n",
			nil, []string{"f:2: want username:hash", "f:3: want username:hash", `f:4: user "alice" already defined on line 1`, `f:5: user "carol": not a bcrypt`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			users, first, err := parseUsers(strings.NewReader(tt.text), "f")
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("no error")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(users) != len(tt.users) || first == nil {
				t.Fatalf("got %d users (first %v), want %v", len(users), first, tt.users)
			}
			for _, u := range tt.users {
				if users[u] == nil {
					t.Errorf("user %q missing", u)
				}
			}
		})
	}
}

// writeUsers replaces the users file and gives it a distinct mtime (file
// systems with coarse timestamps would otherwise hide quick changes).
func writeUsers(t *testing.T, path, content string, mtime time.Time) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestUsersFileReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users")
	mtime := time.Now().Add(-time.Hour)
	writeUsers(t, path, "alice:"+cheapHash(t, "alice-pw", AlgoArgon2id)+"\n", mtime)

	cfg := DefaultConfig()
	cfg.UsersFile, cfg.UsersFilePoll = path, 5*time.Millisecond
	cfg.MaxFailures = 0
	cfg.Users = []UserConfig{{Username: "inline", PasswordHash: cheapHash(t, "inline-pw", AlgoBcrypt)}}
	a, reg, _ := newTestAuth(t, cfg)
	login := func(user, pw string) error {
		_, err := a.Authenticate(context.Background(), Credentials{Username: user, Password: []byte(pw), RemoteAddr: "127.0.0.1:1"})
		return err
	}
	if err := login("alice", "alice-pw"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("before LoadUsersFile: %v, want bad credentials (file users unknown until loaded)", err)
	}
	if err := a.LoadUsersFile(); err != nil {
		t.Fatal(err)
	}
	if err := login("alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v", err)
		}
	}()
	// eventually waits for the poller to make login(user, pw) answer want.
	eventually := func(what, user, pw string, want error) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := login(user, pw)
			if errors.Is(err, want) && (err == nil) == (want == nil) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: login(%s) = %v, want %v", what, user, err, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	mtime = mtime.Add(time.Second)
	writeUsers(t, path, "bob:"+cheapHash(t, "bob-pw", AlgoBcrypt)+"\n", mtime)
	eventually("user added", "bob", "bob-pw", nil)
	eventually("user removed", "alice", "alice-pw", ErrBadCredentials)
	if err := login("inline", "inline-pw"); err != nil {
		t.Fatalf("inline user: %v", err)
	}

	errorsBefore := counter(t, reg, "sluice_auth_users_file_loads_total", "error")
	mtime = mtime.Add(time.Second)
	writeUsers(t, path, "bob:not-a-hash\n", mtime)
	deadline := time.Now().Add(5 * time.Second)
	for counter(t, reg, "sluice_auth_users_file_loads_total", "error") == errorsBefore {
		if time.Now().After(deadline) {
			t.Fatal("a broken users file was not noticed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := login("bob", "bob-pw"); err != nil {
		t.Fatalf("a broken file must keep the previous users: %v", err)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	eventually("file removed", "bob", "bob-pw", ErrBadCredentials)

	mtime = mtime.Add(time.Second)
	writeUsers(t, path, "carol:"+cheapHash(t, "carol-pw", AlgoArgon2id)+"\n", mtime)
	eventually("file back", "carol", "carol-pw", nil)

	// Same size and mtime, other content: a rename is still noticed.
	writeUsers(t, path, "carl:"+cheapHash(t, "carol-pw", AlgoArgon2id)+"\n", mtime)
	eventually("file replaced", "carl", "carol-pw", nil)
}

func TestLoadUsersFileErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, want string
	}{
		{"missing", "", "no such file"},
		{"broken", "x:y\n", `users:1: user "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "users")
			_ = os.Remove(path)
			if tt.content != "" {
				writeUsers(t, path, tt.content, time.Now())
			}
			cfg := DefaultConfig()
			cfg.UsersFile = path
			a, _, _ := newTestAuth(t, cfg)
			if err := a.LoadUsersFile(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadUsersFile = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestReloadChangesUsersFile(t *testing.T) {
	dir := t.TempDir()
	one, two := filepath.Join(dir, "one"), filepath.Join(dir, "two")
	writeUsers(t, one, "alice:"+cheapHash(t, "pw", AlgoArgon2id)+"\n", time.Now())
	writeUsers(t, two, "bob:"+cheapHash(t, "pw", AlgoArgon2id)+"\n", time.Now())
	cfg := DefaultConfig()
	cfg.UsersFile = one
	a, _, _ := newTestAuth(t, cfg)
	if err := a.LoadUsersFile(); err != nil {
		t.Fatal(err)
	}
	cfg.UsersFile = filepath.Join(dir, "missing")
	if err := a.Reload(cfg); err == nil {
		t.Fatal("Reload to a missing users file succeeded")
	}
	cfg.UsersFile = two
	if err := a.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	for user, want := range map[string]error{"alice": ErrBadCredentials, "bob": nil} {
		_, err := a.Authenticate(context.Background(), Credentials{Username: user, Password: []byte("pw")})
		if !errors.Is(err, want) || (err == nil) != (want == nil) {
			t.Errorf("login(%s) = %v, want %v", user, err, want)
		}
	}
}
