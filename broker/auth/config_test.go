package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/config"
)

func TestDefaultConfigValid(t *testing.T) {
	if errs := DefaultConfig().Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	if _, err := New(DefaultConfig(), Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	good := cheapHash(t, "pw", AlgoArgon2id)
	cfg := Config{
		Users: []UserConfig{
			{Username: "a", PasswordHash: good},
			{Username: "", PasswordHash: good},
			{Username: "a", PasswordHash: "plain"},
		},
		UsersFile:           "users.txt",
		UsersFilePoll:       0,
		MaxFailures:         3,
		FailureWindow:       0,
		MaxTrackedAddresses: 0,
		MaxConcurrentChecks: -1,
		ACL: []ACLRule{
			{Permission: "allow", Topic: "ok/%u"},
			{Permission: "allow", Action: "write", Topic: "x"},
			{Permission: "deny", Topic: "a/#/b"},
			{Permission: "allow", Topic: "a", Users: []string{""}},
		},
	}
	want := []string{
		"users[1].username: must not be empty",
		`users[2].username: "a" is already defined by users[0]`,
		"users[2].password_hash: not a bcrypt",
		"users_file_poll: must be positive",
		"acl[1].action: must be",
		"acl[2].topic: \"a/#/b\" is not a valid topic filter",
		"acl[3].users[0]: must not be empty",
		"failure_window: must be positive",
		"max_tracked_addresses: must be positive",
		"max_concurrent_checks: must not be negative",
	}
	errs := cfg.Validate()
	got := errors.Join(errs...).Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
	if len(errs) != len(want) {
		t.Errorf("%d errors, want %d:\n%s", len(errs), len(want), got)
	}
	if _, err := New(cfg, Options{}); err == nil {
		t.Error("New accepted an invalid config")
	}
}

// TestLoadFromYAML loads the section the way cmd does, to check the koanf
// tags and that errors carry their line.
func TestLoadFromYAML(t *testing.T) {
	hash := cheapHash(t, "pw", AlgoBcrypt)
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{"full", `auth:
  users:
    - username: alice
      password_hash: "` + hash + `"
  users_file: /etc/sluice/users
  users_file_poll: 2s
  max_failures: 5
  failure_window: 30s
  max_tracked_addresses: 100
  max_concurrent_checks: 2
  acl:
    - permission: allow
      action: publish
      topic: devices/%u/#
      users: [alice]
      clients: [c1]
    - {permission: deny, topic: "#"}
`, "", func(t *testing.T, c Config) {
			if len(c.Users) != 1 || c.Users[0].PasswordHash != hash || c.UsersFile != "/etc/sluice/users" ||
				c.UsersFilePoll != 2*time.Second || c.MaxFailures != 5 || c.FailureWindow != 30*time.Second ||
				c.MaxTrackedAddresses != 100 || c.MaxConcurrentChecks != 2 || len(c.ACL) != 2 ||
				c.ACL[0].Clients[0] != "c1" || c.ACL[1].Action != "" {
				t.Errorf("decoded %+v", c)
			}
		}},
		{"defaults kept", "auth: {}\n", "", func(t *testing.T, c Config) {
			if c.MaxFailures != 10 || c.FailureWindow != time.Minute || c.UsersFilePoll != 5*time.Second {
				t.Errorf("defaults lost: %+v", c)
			}
		}},
		{"unknown key", "auth:\n  acl:\n    - permission: allow\n      topic: a\n      topics: [b]\n", "auth.acl[0]", nil},
		{"invalid rule with line", "auth:\n  acl:\n    - permission: allow\n      topic: a/#/b\n", "auth.acl[0].topic", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			err := config.Load([]config.Section{{Name: "auth", Value: &c}}, config.Sources{FileName: "sluice.yaml", File: []byte(tt.yaml)})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "sluice.yaml:") {
					t.Fatalf("Load = %v, want an error about %s with its line", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}
