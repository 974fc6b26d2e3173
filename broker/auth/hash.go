package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Hash algorithm names accepted by Hash.
const (
	AlgoArgon2id = "argon2id"
	AlgoBcrypt   = "bcrypt"
)

// Parameters of new hashes. Argon2id follows the OWASP recommendation
// (19 MiB, 2 passes, 1 lane); bcrypt uses its library's default cost.
const (
	argonMemory  = 19 * 1024 // KiB
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32
	bcryptCost   = bcrypt.DefaultCost
)

// Limits on the parameters of argon2id hashes read from the config, so
// that a typo cannot make every login allocate gigabytes.
const (
	maxArgonMemory = 1 << 20 // KiB (1 GiB)
	maxArgonTime   = 100
	maxArgonKeyLen = 1024
)

// bcryptMaxPassword is the longest password bcrypt hashes; it ignores
// what follows, so longer passwords are refused rather than truncated.
const bcryptMaxPassword = 72

// ErrUnknownAlgo is returned by Hash for an algorithm it does not know.
var ErrUnknownAlgo = errors.New("unknown hash algorithm")

// Hash returns the hash of password for a users file or the
// users[].password_hash setting: algo is "argon2id" (also when empty) or
// "bcrypt". Each call uses a new random salt.
func Hash(password, algo string) (string, error) {
	return hashWith(password, algo, defaultCost)
}

// hashCost are the cost parameters of new hashes.
type hashCost struct {
	argon  argonParams
	bcrypt int
}

// defaultCost is what Hash uses.
var defaultCost = hashCost{
	argon:  argonParams{memory: argonMemory, time: argonTime, threads: argonThreads},
	bcrypt: bcryptCost,
}

// hashWith is Hash with the given costs.
func hashWith(password, algo string, cost hashCost) (string, error) {
	switch algo {
	case AlgoArgon2id, "":
		salt := make([]byte, argonSaltLen)
		if _, err := rand.Read(salt); err != nil {
			return "", fmt.Errorf("reading salt: %w", err)
		}
		p := cost.argon
		key := argon2.IDKey([]byte(password), salt, p.time, p.memory, p.threads, argonKeyLen)
		return formatArgon(p, salt, key), nil
	case AlgoBcrypt:
		h, err := bcrypt.GenerateFromPassword([]byte(password), cost.bcrypt)
		if err != nil {
			return "", fmt.Errorf("hashing with bcrypt: %w", err)
		}
		return string(h), nil
	}
	return "", fmt.Errorf("hashing with %q: %w (want %s or %s)", algo, ErrUnknownAlgo, AlgoArgon2id, AlgoBcrypt)
}

// argonParams are the cost parameters of an argon2id hash.
type argonParams struct {
	memory  uint32 // KiB
	time    uint32
	threads uint8
}

func formatArgon(p argonParams, salt, key []byte) string {
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.memory, p.time, p.threads, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// passwordHash is a parsed hash, ready to verify passwords against.
type passwordHash struct {
	bcrypt []byte // the whole bcrypt hash, or nil for argon2id
	argon  argonParams
	salt   []byte
	key    []byte
}

// parseHash parses a bcrypt or argon2id (PHC string format) hash,
// detected by its prefix, and checks its parameters.
func parseHash(s string) (*passwordHash, error) {
	switch {
	case s == "":
		return nil, errors.New("empty password hash")
	case strings.HasPrefix(s, "$argon2id$"):
		return parseArgon(s)
	case strings.HasPrefix(s, "$2a$"), strings.HasPrefix(s, "$2b$"), strings.HasPrefix(s, "$2y$"):
		if _, err := bcrypt.Cost([]byte(s)); err != nil {
			return nil, fmt.Errorf("parsing bcrypt hash: %w", err)
		}
		if len(s) != 60 {
			return nil, fmt.Errorf("parsing bcrypt hash: %d characters, want 60", len(s))
		}
		return &passwordHash{bcrypt: []byte(s)}, nil
	case strings.HasPrefix(s, "$argon2"):
		return nil, errors.New("unsupported argon2 variant (only argon2id)")
	}
	return nil, errors.New("not a bcrypt ($2a$, $2b$, $2y$) or argon2id ($argon2id$) hash; make one with `sluice passwd`")
}

// parseArgon parses "$argon2id$v=19$m=M,t=T,p=P$salt$key".
func parseArgon(s string) (*passwordHash, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("parsing argon2id hash: %s", fmt.Sprintf(format, args...))
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" {
		return nil, bad("want $argon2id$v=19$m=...,t=...,p=...$salt$hash")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, bad("version %q, want v=%d", parts[2], argon2.Version)
	}
	var p argonParams
	seen := 0
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return nil, bad("parameter %q: not a number", kv)
		}
		switch k {
		case "m":
			p.memory, seen = uint32(n), seen|1
		case "t":
			p.time, seen = uint32(n), seen|2
		case "p":
			if n > 255 {
				return nil, bad("parallelism %d exceeds 255", n)
			}
			p.threads, seen = uint8(n), seen|4
		default:
			return nil, bad("unknown parameter %q", k)
		}
	}
	switch {
	case seen != 7:
		return nil, bad("parameters %q: want m, t and p", parts[3])
	case p.time < 1 || p.time > maxArgonTime:
		return nil, bad("t=%d outside 1..%d", p.time, maxArgonTime)
	case p.threads < 1:
		return nil, bad("p=0")
	case p.memory < 8*uint32(p.threads) || p.memory > maxArgonMemory:
		return nil, bad("m=%d outside %d..%d KiB", p.memory, 8*uint32(p.threads), maxArgonMemory)
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return nil, bad("salt: want at least 8 bytes in unpadded base64")
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > maxArgonKeyLen {
		return nil, bad("hash: want 16 to %d bytes in unpadded base64", maxArgonKeyLen)
	}
	return &passwordHash{argon: p, salt: salt, key: key}, nil
}

// verify reports whether password matches h. It takes the time of one
// hash computation whatever the outcome; the final comparison is
// constant-time.
func (h *passwordHash) verify(password []byte) bool {
	if h.bcrypt != nil {
		if len(password) > bcryptMaxPassword {
			return false // bcrypt would compare only the first 72 bytes
		}
		return bcrypt.CompareHashAndPassword(h.bcrypt, password) == nil
	}
	got := argon2.IDKey(password, h.salt, h.argon.time, h.argon.memory, h.argon.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

// newDummyHash returns a hash that no password matches, verified when
// the username is unknown so that an unknown user costs as much time as a
// wrong password and the timing does not tell which usernames exist.
func newDummyHash() *passwordHash {
	salt := make([]byte, argonSaltLen)
	_, _ = rand.Read(salt) // never fails (crypto/rand panics instead)
	return &passwordHash{
		argon: argonParams{memory: argonMemory, time: argonTime, threads: argonThreads},
		salt:  salt,
		key:   make([]byte, argonKeyLen),
	}
}
