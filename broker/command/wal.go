package command

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/diskio"
)

// The accept log: Submit's one durable write. An accept flush appends
// the new commands (and their events) to the current segment with one
// write and one fdatasync; the bbolt store gets them with the next
// checkpoint (full flush), which first switches appends to a fresh
// segment and, once committed, deletes the segments before it. At start
// the segments left are replayed: a command not in the store is taken
// from its log entry. See DESIGN.md, "Durability".

// walEntry is one logged command.
type walEntry struct {
	Rec    record     `json:"rec"`
	Events []seqEvent `json:"events,omitempty"`
}

// A checkpoint starts a new segment (and a later one deletes the old)
// once the current one holds walSegmentBytes or is walSegmentAge old and
// not empty: the log a restart replays stays about this small, segments
// are not created at every checkpoint, and an entry never outlives its
// command's retention (a purged command must not come back from the log).
const (
	walSegmentBytes = 1 << 20
	walSegmentAge   = time.Minute
)

// walFrame is an entry's header: payload length, CRC-32C of the payload.
const walFrame = 8

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// wal is the directory's segments and the one being appended to. All
// fields are guarded by Service.walMu; files are created outside it
// (prepareSegment).
type wal struct {
	dir     string
	seg     uint64   // number of f (or of the last segment, while f is nil)
	f       *os.File // current segment; nil until the first append
	size    int64    // bytes written to f
	opened  time.Time
	buf     []byte
	next    *os.File // created ahead for the next switch, numbered nextSeg > seg
	nextSeg uint64
	alloc   uint64 // highest segment number handed out
	mark    int64  // size of f before the last write

	// syncHook, set by tests only, runs before each sync with the
	// segment and the offset the unsynced write began at; an error fails
	// the sync (a simulated crash that loses the unsynced write).
	syncHook func(f *os.File, from int64) error
}

func segName(n uint64) string { return fmt.Sprintf("accept-%016d.log", n) }

// segments lists the segment numbers in dir, oldest first.
func segments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing accept log: %w", err)
	}
	var out []uint64
	for _, e := range ents {
		s, ok := strings.CutPrefix(e.Name(), "accept-")
		if s, ok2 := strings.CutSuffix(s, ".log"); ok && ok2 {
			if n, err := strconv.ParseUint(s, 10, 64); err == nil {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// replayWAL reads every entry of dir's segments, oldest first, and
// returns the number after the last segment. A segment ends at its first
// torn or corrupt frame (a crash during an append: that append was never
// acknowledged); bad reports how many segments ended early.
func replayWAL(dir string, fn func(walEntry) error) (next uint64, bad int, err error) {
	segs, err := segments(dir)
	if err != nil {
		return 0, 0, err
	}
	for _, n := range segs {
		next = n + 1
		b, err := os.ReadFile(filepath.Join(dir, segName(n)))
		if err != nil {
			return 0, 0, fmt.Errorf("reading accept log: %w", err)
		}
		for len(b) > 0 {
			if len(b) < walFrame {
				bad++
				break
			}
			size, sum := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
			if size == 0 || int64(size) > int64(len(b)-walFrame) || crc32.Checksum(b[walFrame:walFrame+int(size)], crcTable) != sum {
				bad++
				break
			}
			var e walEntry
			if err := json.Unmarshal(b[walFrame:walFrame+int(size)], &e); err != nil {
				bad++
				break
			}
			if err := fn(e); err != nil {
				return 0, 0, err
			}
			b = b[walFrame+int(size):]
		}
	}
	return next, bad, nil
}

// appendWALEntry appends e as JSON (walEntry's tags).
func appendWALEntry(b []byte, e *walEntry) []byte {
	b = append(b, `{"rec":`...)
	b = appendRecord(b, &e.Rec)
	if len(e.Events) > 0 {
		b = append(b, `,"events":[`...)
		for i, ev := range e.Events {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"seq":`...)
			b = strconv.AppendUint(b, ev.Seq, 10)
			b = append(b, `,"idx":`...)
			b = strconv.AppendInt(b, int64(ev.Idx), 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// write appends entries to the current segment, not yet durable: sync
// makes them so. The accept flush lets Submit route its commands between
// the two (DESIGN.md, "Durability").
func (w *wal) write(entries []walEntry) error {
	b := w.buf[:0]
	for i := range entries {
		start := len(b)
		b = append(b, make([]byte, walFrame)...)
		b = appendWALEntry(b, &entries[i])
		payload := b[start+walFrame:]
		binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
		binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, crcTable))
	}
	w.buf = b
	if w.f == nil {
		if err := w.switchSegment(); err != nil {
			return err
		}
	}
	w.mark = w.size
	n, err := w.f.Write(w.buf)
	w.size += int64(n)
	if err != nil {
		w.abandon()
		return fmt.Errorf("appending to accept log: %w", err)
	}
	return nil
}

// sync makes what write wrote durable.
func (w *wal) sync() error {
	if w.f == nil {
		return errors.New("syncing accept log: no segment open")
	}
	err := diskio.SyncData(w.f)
	if w.syncHook != nil && err == nil {
		err = w.syncHook(w.f, w.mark)
	}
	if err != nil {
		w.abandon()
		return fmt.Errorf("syncing accept log: %w", err)
	}
	return nil
}

// append writes entries and syncs them.
func (w *wal) append(entries []walEntry) error {
	if err := w.write(entries); err != nil {
		return err
	}
	return w.sync()
}

// abandon closes the current segment after a failed write or sync: it
// may end in a torn frame (or hold entries whose sync failed, written
// again later), so later appends go to a new one and replay still
// reaches them.
func (w *wal) abandon() {
	w.f.Close()
	w.f = nil
}

// createSegment creates segment n (it must not exist) and makes its
// name durable.
func createSegment(dir string, n uint64) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, segName(n)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating accept log segment: %w", err)
	}
	diskio.Preallocate(f, walSegmentBytes+64<<10)
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// switchSegment makes the prepared (or a new) segment the current one.
func (w *wal) switchSegment() error {
	f, n := w.next, w.nextSeg
	if f == nil {
		w.alloc++
		n = w.alloc
		var err error
		if f, err = createSegment(w.dir, n); err != nil {
			return err
		}
	}
	if w.f != nil {
		w.f.Close()
	}
	w.f, w.seg, w.size, w.next, w.opened = f, n, 0, nil, time.Now()
	return nil
}

// cut ends the current segment once it is walSegmentBytes long or
// walSegmentAge old, and returns the number below which every segment holds only entries
// already taken from memory (so covered by a checkpoint collected now).
func (w *wal) cut() (uint64, error) {
	if w.f == nil {
		return w.seg + 1, nil
	}
	if w.size >= walSegmentBytes || (w.size > 0 && time.Since(w.opened) >= walSegmentAge) {
		if err := w.switchSegment(); err != nil {
			return 0, err
		}
	}
	return w.seg, nil
}

// removeBefore deletes the segments numbered below n.
func (w *wal) removeBefore(n uint64) error {
	segs, err := segments(w.dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, s := range segs {
		if s < n {
			if err := os.Remove(filepath.Join(w.dir, segName(s))); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("deleting accept log segments: %w", err)
	}
	return nil
}

// close closes the open files.
func (w *wal) close() error {
	var errs []error
	for _, f := range []*os.File{w.f, w.next} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	w.f, w.next = nil, nil
	return errors.Join(errs...)
}

// syncDir makes the directory's entries (a created or deleted file)
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
