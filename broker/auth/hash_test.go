package auth

import (
	"strings"
	"testing"
)

// cheapCost makes hashes that are quick to check, for tests.
var cheapCost = hashCost{argon: argonParams{memory: 64, time: 1, threads: 1}, bcrypt: 4}

// cheapHash returns a quick hash of password, parsed.
func cheapHash(t testing.TB, password, algo string) string {
	t.Helper()
	s, err := hashWith(password, algo, cheapCost)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestHashDefaults checks the parameters Hash writes and, without the race
// detector (which makes this take a minute), that its hashes verify.
func TestHashDefaults(t *testing.T) {
	for algo, prefix := range map[string]string{
		AlgoArgon2id: "$argon2id$v=19$m=19456,t=2,p=1$",
		"":           "$argon2id$v=19$m=19456,t=2,p=1$",
		AlgoBcrypt:   "$2a$10$",
	} {
		t.Run("algo="+algo, func(t *testing.T) {
			s, err := Hash("correct horse", algo)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(s, prefix) {
				t.Fatalf("hash %q does not start with %q", s, prefix)
			}
			h, err := parseHash(s)
			if err != nil {
				t.Fatalf("parsing our own hash %q: %v", s, err)
			}
			if raceEnabled {
				return
			}
			if !h.verify([]byte("correct horse")) || h.verify([]byte("correct hors")) {
				t.Fatal("the right password does not verify or a wrong one does")
			}
		})
	}
}

func TestHashVerifies(t *testing.T) {
	for _, algo := range []string{AlgoArgon2id, AlgoBcrypt} {
		t.Run(algo, func(t *testing.T) {
			s := cheapHash(t, "correct horse", algo)
			h, err := parseHash(s)
			if err != nil {
				t.Fatalf("parsing our own hash %q: %v", s, err)
			}
			for _, tt := range []struct {
				password string
				want     bool
			}{
				{"correct horse", true},
				{"correct horse ", false},
				{"Correct horse", false},
				{"correct hors", false},
				{"", false},
			} {
				if got := h.verify([]byte(tt.password)); got != tt.want {
					t.Errorf("verify(%q) = %v, want %v", tt.password, got, tt.want)
				}
			}
			if again := cheapHash(t, "correct horse", algo); again == s {
				t.Errorf("two hashes of the same password are equal (no random salt): %q", s)
			}
		})
	}
}

// TestReferenceVectors checks hashes made by other implementations, so
// that files written with other tools (and ours read by them) agree.
func TestReferenceVectors(t *testing.T) {
	tests := []struct {
		name, hash, password string
	}{
		// P-H-C/phc-winner-argon2 src/test.c, password "password", salt "somesalt".
		{"argon2id reference m=256", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "password"},
		// libxcrypt via perl: crypt("correct-horse", '$2b$04$abcdefghijklmnopqrstuu').
		{"bcrypt 2b libxcrypt", "$2b$04$abcdefghijklmnopqrstuuPoaPXzWjiVz4HaNq2LJXksWbO79E.S6", "correct-horse"},
		// $2y$ (PHP, htpasswd) is the same algorithm under another name.
		{"bcrypt 2y", "$2y$04$abcdefghijklmnopqrstuuPoaPXzWjiVz4HaNq2LJXksWbO79E.S6", "correct-horse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := parseHash(tt.hash)
			if err != nil {
				t.Fatal(err)
			}
			if !h.verify([]byte(tt.password)) {
				t.Errorf("%q does not verify", tt.password)
			}
			if h.verify([]byte(tt.password + "x")) {
				t.Errorf("a wrong password verifies")
			}
		})
	}
}

func TestParseHashRejects(t *testing.T) {
	tests := []struct{ name, hash, want string }{
		{"empty", "", "empty password hash"},
		{"plain text", "secret", "not a bcrypt"},
		{"argon2i", "$argon2i$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "only argon2id"},
		{"old version", "$argon2id$v=16$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "version"},
		{"no version", "$argon2id$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "want $argon2id$"},
		{"missing p", "$argon2id$v=19$m=256,t=2$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "want m, t and p"},
		{"unknown param", "$argon2id$v=19$m=256,t=2,p=1,x=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "unknown parameter"},
		{"huge memory", "$argon2id$v=19$m=99999999,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "outside"},
		{"zero time", "$argon2id$v=19$m=256,t=0,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "t=0"},
		{"zero lanes", "$argon2id$v=19$m=256,t=2,p=0$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "p=0"},
		{"bad salt", "$argon2id$v=19$m=256,t=2,p=1$c29t!ZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4", "salt"},
		{"short key", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgL", "hash: want"},
		{"padded key", "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4=", "hash: want"},
		{"bcrypt truncated", "$2b$10$abcdefghijklmnopqrstuuf4yQswfQRuOxajohDXdzREFVDuc.Vd", "60"},
		{"bcrypt cost", "$2b$99$abcdefghijklmnopqrstuuf4yQswfQRuOxajohDXdzREFVDuc.Vdy", "cost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseHash(tt.hash)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("parseHash(%q) = %v, want an error containing %q", tt.hash, err, tt.want)
			}
		})
	}
}

func TestHashRejectsUnknownAlgo(t *testing.T) {
	if _, err := Hash("x", "md5"); err == nil || !strings.Contains(err.Error(), "unknown hash algorithm") {
		t.Fatalf("Hash(md5) = %v, want unknown algorithm", err)
	}
}

// TestBcryptLongPassword: bcrypt reads only 72 bytes, so a longer password
// must not verify against the hash of its first 72 bytes.
func TestBcryptLongPassword(t *testing.T) {
	p72 := strings.Repeat("p", 72)
	if _, err := Hash(p72+"x", AlgoBcrypt); err == nil {
		t.Fatal("Hash accepted a 73-byte password for bcrypt")
	}
	h, err := parseHash(cheapHash(t, p72, AlgoBcrypt))
	if err != nil {
		t.Fatal(err)
	}
	if !h.verify([]byte(p72)) {
		t.Fatal("the 72-byte password does not verify")
	}
	if h.verify([]byte(p72 + "anything")) {
		t.Fatal("a longer password sharing the first 72 bytes verifies")
	}
}
