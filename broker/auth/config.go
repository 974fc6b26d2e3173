package auth

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Permission values of ACLRule.Permission.
const (
	PermissionAllow = "allow"
	PermissionDeny  = "deny"
)

// Action values of ACLRule.Action.
const (
	ActionPublish   = "publish"
	ActionSubscribe = "subscribe"
	ActionAll       = "all"
)

// Config configures authentication and authorisation. It is the `auth`
// part of the broker configuration.
type Config struct {
	// Users are accounts defined inline. Default: none.
	Users []UserConfig `koanf:"users"`
	// UsersFile is a file of "username:hash" lines (blank lines and lines
	// starting with '#' are ignored). It is re-read when its modification
	// time, size or identity changes. Inline users take precedence over
	// file users of the same name. Default: "" (no file).
	UsersFile string `koanf:"users_file"`
	// UsersFilePoll is how often the users file is checked for changes.
	// Default: 5s.
	UsersFilePoll time.Duration `koanf:"users_file_poll"`
	// ACL is the list of access rules, evaluated in order; the first rule
	// that matches decides. With no rules every identity may publish and
	// subscribe to everything; with at least one rule, whatever no rule
	// allows is denied. Default: none.
	ACL []ACLRule `koanf:"acl"`
	// MaxFailures is how many failed logins a source address may make in
	// a burst before further password attempts from it are refused
	// without checking the password. 0 disables the limit. Default: 10.
	MaxFailures int `koanf:"max_failures"`
	// FailureWindow is the time over which MaxFailures attempts are
	// restored: one attempt is given back every FailureWindow/MaxFailures.
	// Default: 1m.
	FailureWindow time.Duration `koanf:"failure_window"`
	// MaxTrackedAddresses bounds the number of source addresses whose
	// failures are remembered; beyond it the least recently failing
	// address is forgotten (and counted). Default: 10000.
	MaxTrackedAddresses int `koanf:"max_tracked_addresses"`
	// MaxConcurrentChecks bounds how many password hashes are verified at
	// once (each argon2id check holds its memory cost, e.g. 19 MiB); other
	// logins wait for a slot. 0 means GOMAXPROCS. Default: 0.
	MaxConcurrentChecks int `koanf:"max_concurrent_checks"`
}

// UserConfig is one inline account.
type UserConfig struct {
	// Username is the MQTT user name. Required.
	Username string `koanf:"username"`
	// PasswordHash is the password's bcrypt ("$2a$", "$2b$", "$2y$") or
	// argon2id ("$argon2id$", PHC format) hash, as printed by
	// `sluice passwd`. Required.
	PasswordHash string `koanf:"password_hash"`
}

// ACLRule is one access rule.
type ACLRule struct {
	// Permission is "allow" or "deny". Required.
	Permission string `koanf:"permission"`
	// Action is "publish", "subscribe" or "all". Default: "all".
	Action string `koanf:"action"`
	// Topic is an MQTT topic filter ('+' and '#' wildcards). "%u" stands
	// for the username and "%c" for the client id; write "%%" for a
	// literal '%'. A rule whose name it needs is empty or contains '+',
	// '#', '/' or U+0000 does not apply if it allows, and matches every
	// topic if it denies, so a crafted name can never widen access.
	// Required.
	Topic string `koanf:"topic"`
	// Users limits the rule to these usernames. Default: none (any).
	Users []string `koanf:"users"`
	// Clients limits the rule to these client ids. Default: none (any).
	Clients []string `koanf:"clients"`
}

// DefaultConfig returns the defaults: no users, no ACL (everything
// allowed), 10 failures per minute per address.
func DefaultConfig() Config {
	return Config{
		UsersFilePoll:       5 * time.Second,
		MaxFailures:         10,
		FailureWindow:       time.Minute,
		MaxTrackedAddresses: 10000,
	}
}

// Validate reports every problem in c, each prefixed with its key path
// relative to the auth section (e.g. "acl[2].topic: ...").
func (c Config) Validate() []error {
	var errs []error
	add := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	seen := make(map[string]int, len(c.Users))
	for i, u := range c.Users {
		p := fmt.Sprintf("users[%d]", i)
		switch prev, dup := seen[u.Username]; {
		case u.Username == "":
			add(p+".username", "must not be empty")
		case dup:
			add(p+".username", "%q is already defined by users[%d]", u.Username, prev)
		default:
			seen[u.Username] = i
		}
		if _, err := parseHash(u.PasswordHash); err != nil {
			add(p+".password_hash", "%v", err)
		}
	}
	if c.UsersFile != "" && c.UsersFilePoll <= 0 {
		add("users_file_poll", "must be positive, got %s", c.UsersFilePoll)
	}
	for i, r := range c.ACL {
		if _, err := compileRule(r); err != nil {
			if re, ok := errors.AsType[*ruleError](err); ok {
				add(fmt.Sprintf("acl[%d].%s", i, re.field), "%s", re.msg)
			} else {
				add(fmt.Sprintf("acl[%d]", i), "%v", err)
			}
		}
	}
	if c.MaxFailures < 0 {
		add("max_failures", "must not be negative, got %d", c.MaxFailures)
	}
	if c.MaxFailures > 0 && c.FailureWindow <= 0 {
		add("failure_window", "must be positive when max_failures is set, got %s", c.FailureWindow)
	}
	if c.MaxFailures > 0 && c.MaxTrackedAddresses <= 0 {
		add("max_tracked_addresses", "must be positive when max_failures is set, got %d", c.MaxTrackedAddresses)
	}
	if c.MaxConcurrentChecks < 0 {
		add("max_concurrent_checks", "must not be negative, got %d", c.MaxConcurrentChecks)
	}
	return errs
}

// ruleError is a problem with one field of an ACL rule.
type ruleError struct {
	field string // koanf key of the field, e.g. "topic" or "users[1]"
	msg   string
}

func (e *ruleError) Error() string { return e.field + ": " + e.msg }

// normalise lowercases the enumerations of r, so that "Allow" and
// "PUBLISH" are accepted.
func (r ACLRule) normalise() ACLRule {
	r.Permission = strings.ToLower(strings.TrimSpace(r.Permission))
	r.Action = strings.ToLower(strings.TrimSpace(r.Action))
	if r.Action == "" {
		r.Action = ActionAll
	}
	return r
}
