package auth

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
)

// maxUsersFile bounds the size of a users file read into memory.
const maxUsersFile = 64 << 20

// fileUsers is the content of a users file.
type fileUsers struct {
	path  string
	users map[string]*passwordHash
	decoy *passwordHash // the first user's hash, or nil
}

// fileStamp identifies a version of a file: a change of any field means
// the file must be read again.
type fileStamp struct {
	info    os.FileInfo // for os.SameFile: replaced by a rename
	modTime time.Time
	size    int64
}

func (s fileStamp) same(o fileStamp) bool {
	return s.info != nil && o.info != nil && os.SameFile(s.info, o.info) &&
		s.modTime.Equal(o.modTime) && s.size == o.size
}

// parseUsers reads "username:hash" lines. Blank lines and lines starting
// with '#' are ignored; spaces around the line are trimmed. The user name
// is everything before the last ':' (hashes contain none). Every problem
// is reported, as "name:line: problem". name names the source in errors.
func parseUsers(r io.Reader, name string) (users map[string]*passwordHash, first *passwordHash, err error) {
	users = make(map[string]*passwordHash)
	firstLine := make(map[string]int)
	var errs []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ':')
		if i <= 0 {
			errs = append(errs, fmt.Errorf("%s:%d: want username:hash", name, n))
			continue
		}
		user, hash := line[:i], line[i+1:]
		if prev, dup := firstLine[user]; dup {
			errs = append(errs, fmt.Errorf("%s:%d: user %q already defined on line %d", name, n, user, prev))
			continue
		}
		firstLine[user] = n
		h, err := parseHash(hash)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: user %q: %w", name, n, user, err))
			continue
		}
		users[user] = h
		if first == nil {
			first = h
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("reading %s: %w", name, err))
	}
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("parsing users file: %w", errors.Join(errs...))
	}
	return users, first, nil
}

// LoadUsersFile reads the configured users file now. Call it before
// serving so that a missing or broken file is reported at startup. It
// returns nil when no users file is configured.
func (a *Auth) LoadUsersFile() error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	return a.loadFileLocked(a.state.Load().cfg.UsersFile, true)
}

// Run checks the users file at once and then every users_file_poll, and
// reloads it when it changed, until ctx is cancelled; then it returns
// nil. A file that no longer exists removes its users (fail closed); a
// file that does not parse is logged and its previous content kept until
// the next change.
func (a *Auth) Run(ctx context.Context) error {
	for {
		a.reloadMu.Lock()
		path := a.state.Load().cfg.UsersFile
		err := a.loadFileLocked(path, false)
		a.reloadMu.Unlock()
		if err != nil {
			a.log.Error("reloading users file", "path", path, "err", err)
		}
		poll := a.state.Load().cfg.UsersFilePoll
		if poll <= 0 {
			poll = DefaultConfig().UsersFilePoll
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// loadFileLocked reads path into a.file unless its stamp is the one last
// seen (and force is false). The caller holds reloadMu.
func (a *Auth) loadFileLocked(path string, force bool) error {
	if path == "" {
		a.file.Store(nil)
		a.seen = fileStamp{}
		return nil
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) && !force {
		if cur := a.file.Load(); cur != nil && cur.path == path && cur.users != nil {
			a.log.Warn("users file removed; its users can no longer log in", "path", path)
			a.file.Store(&fileUsers{path: path})
			a.m.fileReloads.WithLabelValues("ok").Inc()
		}
		a.seen = fileStamp{}
		return nil
	}
	if err != nil {
		a.m.fileReloads.WithLabelValues("error").Inc()
		return fmt.Errorf("reading users file: %w", err)
	}
	stamp := fileStamp{info: fi, modTime: fi.ModTime(), size: fi.Size()}
	if !force && stamp.same(a.seen) {
		return nil
	}
	a.seen = stamp // a broken version is not read again until it changes
	users, decoy, err := readUsersFile(path)
	if err != nil {
		a.m.fileReloads.WithLabelValues("error").Inc()
		return err
	}
	a.file.Store(&fileUsers{path: path, users: users, decoy: decoy})
	a.m.fileReloads.WithLabelValues("ok").Inc()
	a.log.Info("users file loaded", "path", path, "users", len(users))
	return nil
}

// readUsersFile reads and parses a users file. decoy is its first user's
// hash.
func readUsersFile(path string) (users map[string]*passwordHash, decoy *passwordHash, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("reading users file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxUsersFile+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading users file %s: %w", path, err)
	}
	if len(data) > maxUsersFile {
		return nil, nil, fmt.Errorf("reading users file %s: larger than %d bytes", path, maxUsersFile)
	}
	return parseUsers(bytes.NewReader(data), path)
}
