// Package deadletter stores records a sink can never accept, with
// everything needed to inspect and re-drive them: the original payload,
// topic, rule, sink, error and attempt count.
//
// The store is an append-only file of CRC-framed JSON entries, fsynced on
// every Add (dead letters are rare; losing one would be losing a message).
// Replays are recorded in a second append-only file, so the entry log is
// never rewritten.
package deadletter

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Entry is one dead-lettered record.
type Entry struct {
	ID         uint64    `json:"id"`
	Time       time.Time `json:"time"`
	Rule       string    `json:"rule"`
	Sink       string    `json:"sink"`
	Topic      string    `json:"topic"`
	ClientID   string    `json:"client_id"`
	Username   string    `json:"username,omitempty"`
	QoS        byte      `json:"qos"`
	ReceivedAt time.Time `json:"received_at"`
	// Payload is the original MQTT payload.
	Payload []byte `json:"payload"`
	// Record is the spooled record (message plus routing), so a replay
	// re-drives exactly what failed; opaque to this package.
	Record   []byte `json:"record,omitempty"`
	Error    string `json:"error"`
	Attempts int    `json:"attempts"`
	Replayed bool   `json:"replayed"`
}

// ErrFull is returned by Add when the store has reached its size limit.
var ErrFull = errors.New("dead-letter store full")

// ErrNotFound is returned for an unknown entry id.
var ErrNotFound = errors.New("dead-letter entry not found")

// Store is the dead-letter store. It is safe for concurrent use.
type Store struct {
	mu       sync.Mutex
	f        *os.File
	replayF  *os.File
	size     int64
	maxBytes int64
	nextID   uint64
	offsets  map[uint64]int64 // id -> file offset of its frame
	order    []uint64
	replayed map[uint64]bool
	closed   bool
}

const frameHeader = 8 // length (4) + CRC-32C (4)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Open opens (creating) the store in dir. maxBytes bounds the entry log;
// 0 means unbounded. A torn tail left by a crash is truncated and logged.
func Open(dir string, maxBytes int64, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating dead-letter dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "entries.log"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening dead-letter log: %w", err)
	}
	s := &Store{f: f, maxBytes: maxBytes, nextID: 1, offsets: map[uint64]int64{}, replayed: map[uint64]bool{}}
	if err := s.recover(log); err != nil {
		f.Close()
		return nil, err
	}
	rf, err := os.OpenFile(filepath.Join(dir, "replayed.log"), os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening dead-letter replay log: %w", err)
	}
	s.replayF = rf
	sc := bufio.NewScanner(rf)
	for sc.Scan() {
		if id, err := strconv.ParseUint(strings.TrimSpace(sc.Text()), 10, 64); err == nil {
			s.replayed[id] = true
		}
	}
	return s, nil
}

func (s *Store) recover(log *slog.Logger) error {
	r := bufio.NewReader(s.f)
	var off int64
	for {
		e, n, err := readFrame(r)
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Warn("truncating torn dead-letter tail", "offset", off, "error", err)
			if err := s.f.Truncate(off); err != nil {
				return fmt.Errorf("truncating dead-letter log: %w", err)
			}
			break
		}
		s.offsets[e.ID] = off
		s.order = append(s.order, e.ID)
		if e.ID >= s.nextID {
			s.nextID = e.ID + 1
		}
		off += int64(n)
	}
	s.size = off
	if _, err := s.f.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("seeking dead-letter log: %w", err)
	}
	return nil
}

func readFrame(r io.Reader) (Entry, int, error) {
	var h [frameHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return Entry{}, 0, fmt.Errorf("short frame header")
		}
		return Entry{}, 0, err
	}
	n := binary.LittleEndian.Uint32(h[:4])
	if n > 256<<20 {
		return Entry{}, 0, fmt.Errorf("frame length %d too large", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return Entry{}, 0, fmt.Errorf("short frame body: %w", err)
	}
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(h[4:]) {
		return Entry{}, 0, fmt.Errorf("frame checksum mismatch")
	}
	var e Entry
	if err := json.Unmarshal(body, &e); err != nil {
		return Entry{}, 0, fmt.Errorf("decoding frame: %w", err)
	}
	return e, frameHeader + int(n), nil
}

// Add assigns ids to entries, appends them and fsyncs before returning.
func (s *Store) Add(entries ...*Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("dead-letter store closed")
	}
	var buf []byte
	ids := make([]uint64, 0, len(entries))
	offs := make([]int64, 0, len(entries))
	id := s.nextID
	for _, e := range entries {
		e.ID = id
		if e.Time.IsZero() {
			e.Time = time.Now()
		}
		body, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("encoding dead-letter entry: %w", err)
		}
		offs = append(offs, s.size+int64(len(buf)))
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(body)))
		buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(body, castagnoli))
		buf = append(buf, body...)
		ids = append(ids, id)
		id++
	}
	if s.maxBytes > 0 && s.size+int64(len(buf)) > s.maxBytes {
		return ErrFull
	}
	if _, err := s.f.Write(buf); err != nil {
		// Cut back whatever part of the write landed so the log stays whole.
		_ = s.f.Truncate(s.size)
		_, _ = s.f.Seek(s.size, io.SeekStart)
		return fmt.Errorf("writing dead-letter entries: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("syncing dead-letter log: %w", err)
	}
	s.size += int64(len(buf))
	s.nextID = id
	for i, id := range ids {
		s.offsets[id] = offs[i]
		s.order = append(s.order, id)
	}
	return nil
}

// Len returns the number of entries, and how many are not yet replayed.
func (s *Store) Len() (total, pending int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.order), len(s.order) - len(s.replayed)
}

// Get returns one entry.
func (s *Store) Get(id uint64) (*Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.getLocked(id)
}

func (s *Store) getLocked(id uint64) (*Entry, error) {
	off, ok := s.offsets[id]
	if !ok {
		return nil, ErrNotFound
	}
	e, _, err := readFrame(io.NewSectionReader(s.f, off, s.size-off))
	if err != nil {
		return nil, fmt.Errorf("reading dead-letter entry %d: %w", id, err)
	}
	e.Replayed = s.replayed[id]
	return &e, nil
}

// List returns up to limit entries with id > after, oldest first.
// With pendingOnly, replayed entries are skipped.
func (s *Store) List(after uint64, limit int, pendingOnly bool) ([]*Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Entry
	i := searchAfter(s.order, after)
	for ; i < len(s.order) && len(out) < limit; i++ {
		id := s.order[i]
		if pendingOnly && s.replayed[id] {
			continue
		}
		e, err := s.getLocked(id)
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}

// searchAfter finds the first index whose id is > after (ids ascend).
func searchAfter(ids []uint64, after uint64) int {
	lo, hi := 0, len(ids)
	for lo < hi {
		m := (lo + hi) / 2
		if ids[m] <= after {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// MarkReplayed records that the entry has been re-driven.
func (s *Store) MarkReplayed(id uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.offsets[id]; !ok {
		return ErrNotFound
	}
	if s.replayed[id] {
		return nil
	}
	if _, err := fmt.Fprintf(s.replayF, "%d\n", id); err != nil {
		return fmt.Errorf("recording replay: %w", err)
	}
	if err := s.replayF.Sync(); err != nil {
		return fmt.Errorf("syncing replay log: %w", err)
	}
	s.replayed[id] = true
	return nil
}

// Close closes the files. It is safe to call twice.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return errors.Join(s.f.Close(), s.replayF.Close())
}
