package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Cursor files live in <dir>/cursors/<name>.cur and hold, little-endian:
// magic "SLCU" | version uint16 (1) | reserved uint16 | position uint64 |
// CRC-32C of the preceding 16 bytes. They are replaced atomically (write
// temp, fsync, rename, fsync directory).
const (
	cursorDir     = "cursors"
	cursorSuffix  = ".cur"
	cursorMagic   = "SLCU"
	cursorVersion = 1
	cursorSize    = 20
	maxNameLen    = 128
)

func (s *Spool) cursorPath(name string) string {
	return filepath.Join(s.dir, cursorDir, name+cursorSuffix)
}

func encodeCursor(pos uint64) []byte {
	b := make([]byte, cursorSize)
	copy(b, cursorMagic)
	binary.LittleEndian.PutUint16(b[4:6], cursorVersion)
	binary.LittleEndian.PutUint64(b[8:16], pos)
	binary.LittleEndian.PutUint32(b[16:20], crc32.Checksum(b[:16], crcTable))
	return b
}

func decodeCursor(b []byte) (uint64, error) {
	if len(b) != cursorSize || string(b[:4]) != cursorMagic ||
		binary.LittleEndian.Uint16(b[4:6]) != cursorVersion ||
		crc32.Checksum(b[:16], crcTable) != binary.LittleEndian.Uint32(b[16:20]) {
		return 0, errors.New("invalid cursor file")
	}
	return binary.LittleEndian.Uint64(b[8:16]), nil
}

// validName reports whether name can be a cursor name: 1-128 characters
// from [A-Za-z0-9_.-], not starting with a dot.
func validName(name string) bool {
	if name == "" || len(name) > maxNameLen || name[0] == '.' {
		return false
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '_' || r == '-' || r == '.'
		if !ok {
			return false
		}
	}
	return true
}

// loadCursorFiles reads every persisted cursor position and removes
// leftover temporary files. A damaged cursor file yields position 0 (it is
// clamped to the tail later): redelivery, never loss.
func (s *Spool) loadCursorFiles() (map[string]uint64, error) {
	dir := filepath.Join(s.dir, cursorDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing cursors: %w", err)
	}
	positions := make(map[string]uint64)
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if strings.HasSuffix(e.Name(), ".tmp") {
			_ = os.Remove(path)
			continue
		}
		name, ok := strings.CutSuffix(e.Name(), cursorSuffix)
		if !ok || !validName(name) {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading cursor %s: %w", name, err)
		}
		pos, err := decodeCursor(b)
		if err != nil {
			s.log.Error("cursor file damaged; resuming from the oldest record", "cursor", name, "error", err)
		}
		positions[name] = pos
	}
	return positions, nil
}

// writeCursorFile atomically replaces name's cursor file (the caller syncs
// the directory).
func (s *Spool) writeCursorFile(name string, pos uint64) error {
	path := s.cursorPath(name)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("writing cursor %s: %w", name, err)
	}
	_, err = f.Write(encodeCursor(pos))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("writing cursor %s: %w", name, err)
	}
	return nil
}

// clampPosition keeps a loaded cursor position inside [tail, head].
// Callers hold s.mu or own s exclusively.
func (s *Spool) clampPosition(name string, pos uint64) uint64 {
	if t := s.tail(); pos < t {
		s.log.Warn("cursor behind the oldest record; moving it forward", "cursor", name, "position", pos, "tail", t)
		return t
	}
	if pos > s.head {
		s.log.Warn("cursor past the newest record; moving it back", "cursor", name, "position", pos, "head", s.head)
		return s.head
	}
	return pos
}

// Cursor returns the cursor called name, creating it (positioned at the
// oldest stored record, durably) if it does not exist. Names are 1-128
// characters from [A-Za-z0-9_.-] not starting with a dot. Calling Cursor
// again with the same name returns the same *Cursor.
func (s *Spool) Cursor(name string) (*Cursor, error) {
	if !validName(name) {
		return nil, fmt.Errorf("opening cursor %q: invalid name", name)
	}
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if c, ok := s.cursors[name]; ok {
		s.mu.Unlock()
		return c, nil
	}
	pos := s.tail()
	s.mu.Unlock()
	if err := s.writeCursorFile(name, pos); err != nil {
		return nil, err
	}
	if err := syncDir(filepath.Join(s.dir, cursorDir)); err != nil {
		return nil, err
	}
	s.mu.Lock()
	// Retention is excluded by ckptMu, but drop_oldest may have moved the
	// tail; the new cursor had nothing to lose there.
	c := s.newCursor(name, max(pos, s.tail()))
	s.cursors[name] = c
	s.mu.Unlock()
	return c, nil
}

// RemoveCursor deletes the cursor called name (its sink was removed from
// the configuration): its file is removed and it no longer holds back
// retention. Handles to it return ErrCursorRemoved. Removing a cursor that
// does not exist is not an error.
func (s *Spool) RemoveCursor(name string) error {
	if !validName(name) {
		return fmt.Errorf("removing cursor %q: invalid name", name)
	}
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	s.mu.Lock()
	c := s.cursors[name]
	delete(s.cursors, name)
	s.mu.Unlock()
	if c != nil {
		c.mu.Lock()
		c.removed = true
		close(c.removedCh)
		c.mu.Unlock()
	}
	if err := os.Remove(s.cursorPath(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing cursor %s: %w", name, err)
	}
	if err := syncDir(filepath.Join(s.dir, cursorDir)); err != nil {
		return err
	}
	s.kickMaintainer()
	return nil
}

// Cursors returns the names of all cursors, including those persisted by an
// earlier run and not opened yet, sorted. The pipeline removes the ones
// whose sink no longer exists.
func (s *Spool) Cursors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.cursors))
	for name := range s.cursors {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// maintain is the maintainer goroutine: every CheckpointInterval (or when
// kicked by a blocked Append) it persists moved cursors and deletes
// segments every cursor has passed.
func (s *Spool) maintain() {
	defer s.maintainer.Done()
	t := time.NewTicker(s.opts.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.closedCh:
			return
		case <-t.C:
		case <-s.kick:
		}
		if err := s.checkpoint(); err != nil {
			s.log.Error("checkpointing cursors", "error", err)
		}
	}
}

// checkpoint persists the position of every cursor that moved, then
// applies retention using the persisted positions only, so a segment is
// never deleted while a crash could still send a cursor back into it.
func (s *Spool) checkpoint() error {
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	type snap struct {
		c   *Cursor
		pos uint64
	}
	var snaps []snap
	s.mu.Lock()
	for _, c := range s.cursors {
		c.mu.Lock()
		if c.dirty {
			snaps = append(snaps, snap{c, c.base})
			c.dirty = false
		}
		c.mu.Unlock()
	}
	s.mu.Unlock()
	var errs []error
	written := snaps[:0]
	for _, sn := range snaps {
		if err := s.writeCursorFile(sn.c.name, sn.pos); err != nil {
			errs = append(errs, err)
			sn.c.markDirty()
			continue
		}
		written = append(written, sn)
	}
	if len(written) > 0 {
		if err := syncDir(filepath.Join(s.dir, cursorDir)); err != nil {
			for _, sn := range written {
				sn.c.markDirty()
			}
			return errors.Join(append(errs, err)...)
		}
		for _, sn := range written {
			sn.c.mu.Lock()
			sn.c.persisted = max(sn.c.persisted, sn.pos)
			sn.c.mu.Unlock()
		}
	}
	s.applyRetention()
	return errors.Join(errs...)
}

func (c *Cursor) markDirty() {
	c.mu.Lock()
	c.dirty = true
	c.mu.Unlock()
}

// applyRetention deletes the sealed segments that every cursor's persisted
// position has passed. With no cursor at all nothing is deleted: records
// wait for the first sink. Callers hold ckptMu.
func (s *Spool) applyRetention() {
	s.mu.Lock()
	if len(s.cursors) == 0 {
		s.mu.Unlock()
		return
	}
	low := ^uint64(0)
	for _, c := range s.cursors {
		c.mu.Lock()
		low = min(low, c.persisted)
		c.mu.Unlock()
	}
	var removed []uint64
	for len(s.segs) > 1 && s.segs[0].end() <= low {
		g := s.segs[0]
		s.segs = s.segs[1:]
		s.diskBytes -= g.bytes
		s.counters.deleted++
		removed = append(removed, g.base)
	}
	if len(removed) > 0 {
		s.broadcastSpace()
	}
	s.mu.Unlock()
	if len(removed) > 0 {
		s.removeSegmentFiles(removed)
	}
}

// reportDrop logs and reports records lost to a cursor.
func (s *Spool) reportDrop(cursor string, records uint64, reason string, cause error) {
	s.mu.Lock()
	s.counters.dropped += records
	s.mu.Unlock()
	args := []any{"cursor", cursor, "records", records, "reason", reason}
	if cause != nil {
		args = append(args, "error", cause)
	}
	s.log.Warn("records lost to cursor", args...)
	if s.opts.OnDrop != nil {
		s.opts.OnDrop(cursor, records, reason)
	}
}
