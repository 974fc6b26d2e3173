package spool

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/diskio"
)

const recSize = 100 // fixed record size in recovery tests, so frames are easy to locate

// writeFixture appends n fixed-size records, closes the spool and returns
// the path and base offset of the last segment.
func writeFixture(t *testing.T, dir string, n int) (string, uint64) {
	t.Helper()
	s, err := Open(dir, smallOpts())
	if err != nil {
		t.Fatal(err)
	}
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = payload(i, recSize)
	}
	appendAll(t, s, recs)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	segs := mustGlob(t, filepath.Join(dir, "*"+segSuffix))
	last := segs[len(segs)-1]
	base, _ := parseSegName(filepath.Base(last))
	return last, base
}

// frameAt is the byte position of the k-th record of a segment of
// fixed-size records.
func frameAt(k int) int64 { return segHeaderSize + int64(k)*(frameOverhead+recSize) }

func TestRecoverTornTail(t *testing.T) {
	const n = 200
	tests := []struct {
		name string
		// damage mutates the last segment (whose first offset is base) and
		// returns how many records must survive in total.
		damage  func(t *testing.T, path string, base uint64) uint64
		wantLog string
	}{
		{name: "clean", damage: func(t *testing.T, path string, base uint64) uint64 { return n }},
		{name: "truncated mid-record", wantLog: "truncating torn segment tail", damage: func(t *testing.T, path string, base uint64) uint64 {
			truncate(t, path, -5)
			return n - 1
		}},
		{name: "truncated inside frame header", wantLog: "short frame", damage: func(t *testing.T, path string, base uint64) uint64 {
			k := int(n - 1 - base)
			if err := os.Truncate(path, frameAt(k)+3); err != nil {
				t.Fatal(err)
			}
			return n - 1
		}},
		{name: "corrupt data byte", wantLog: "checksum mismatch", damage: func(t *testing.T, path string, base uint64) uint64 {
			k := int(n-base) / 2
			flip(t, path, frameAt(k)+frameOverhead+10)
			return base + uint64(k)
		}},
		{name: "corrupt length", wantLog: "truncating torn segment tail", damage: func(t *testing.T, path string, base uint64) uint64 {
			flip(t, path, frameAt(1)+1)
			return base + 1
		}},
		{name: "corrupt crc", wantLog: "checksum mismatch", damage: func(t *testing.T, path string, base uint64) uint64 {
			flip(t, path, frameAt(0)+5)
			return base
		}},
		{name: "zero-filled tail", wantLog: "checksum mismatch", damage: func(t *testing.T, path string, base uint64) uint64 {
			appendBytes(t, path, make([]byte, 4096))
			return n
		}},
		{name: "torn header", wantLog: "rewriting torn segment header", damage: func(t *testing.T, path string, base uint64) uint64 {
			if err := os.Truncate(path, 7); err != nil {
				t.Fatal(err)
			}
			return base
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, base := writeFixture(t, dir, n)
			if base == 0 {
				t.Fatal("fixture has a single segment")
			}
			want := tc.damage(t, path, base)

			var lb logBuffer
			opts := smallOpts()
			opts.Logger = newLogger(&lb)
			s := openT(t, dir, opts)
			if tc.wantLog != "" && !lb.contains(tc.wantLog) {
				t.Fatalf("log lacks %q:\n%s", tc.wantLog, lb.String())
			}
			if tc.wantLog == "" && lb.contains("level=WARN") {
				t.Fatalf("unexpected warning:\n%s", lb.String())
			}
			if h := s.Stats().Head; h != want {
				t.Fatalf("head after recovery = %d, want %d", h, want)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if wantSize := frameAt(int(want - base)); fi.Size() != wantSize {
				t.Fatalf("last segment is %d bytes after recovery, want %d", fi.Size(), wantSize)
			}
			// Appends continue right after the surviving records.
			off, err := s.AppendSync(ctxT(t), payload(int(want), recSize))
			if err != nil || off != want {
				t.Fatalf("AppendSync = %d, %v; want %d", off, err, want)
			}
			c, err := s.Cursor("check")
			if err != nil {
				t.Fatal(err)
			}
			got := readN(t, c, int(want)+1)
			checkRecords(t, got, 0, func(off uint64) []byte { return payload(int(off), recSize) })
			expectNoRecord(t, c)
		})
	}
}

func truncate(t *testing.T, path string, delta int64) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()+delta); err != nil {
		t.Fatal(err)
	}
}

func flip(t *testing.T, path string, at int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, at); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptSealedSegmentSkipped(t *testing.T) {
	dir := t.TempDir()
	const n = 200
	writeFixture(t, dir, n)
	segs := mustGlob(t, filepath.Join(dir, "*"+segSuffix))
	if len(segs) < 3 {
		t.Fatalf("only %d segments", len(segs))
	}
	// Damage the 4th record of the second segment.
	second, _ := parseSegName(filepath.Base(segs[1]))
	third, _ := parseSegName(filepath.Base(segs[2]))
	flip(t, segs[1], frameAt(3)+frameOverhead+1)

	var mu sync.Mutex
	var lost uint64
	opts := smallOpts()
	opts.OnDrop = func(cursor string, records uint64, reason string) {
		mu.Lock()
		defer mu.Unlock()
		if reason != ReasonCorrupt || cursor != "sink" {
			t.Errorf("OnDrop(%q, %d, %q)", cursor, records, reason)
		}
		lost += records
	}
	s := openT(t, dir, opts)
	c, err := s.Cursor("sink")
	if err != nil {
		t.Fatal(err)
	}
	var offs []uint64
	ctx := ctxT(t)
	for len(offs) < n-int(third-second-3) {
		r, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if !bytes.Equal(r.Data, payload(int(r.Offset), recSize)) {
			t.Fatalf("offset %d: wrong data", r.Offset)
		}
		offs = append(offs, r.Offset)
		if err := c.Ack(r.Offset); err != nil {
			t.Fatal(err)
		}
	}
	for i, off := range offs {
		want := uint64(i)
		if want >= second+3 {
			want += third - second - 3
		}
		if off != want {
			t.Fatalf("delivery %d: offset %d, want %d", i, off, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if lost != third-second-3 {
		t.Fatalf("reported %d records lost, want %d", lost, third-second-3)
	}
}

// refDecode is an independent, obviously-correct decoder of a segment body:
// it returns the records of the longest valid prefix.
func refDecode(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= frameOverhead {
		n := binary.LittleEndian.Uint32(b[0:4])
		if uint64(n) > uint64(len(b)-frameOverhead) {
			break
		}
		c := crc32.Checksum(b[:4], crcTable)
		c = crc32.Update(c, crcTable, b[8:8+n])
		if c != binary.LittleEndian.Uint32(b[4:8]) {
			break
		}
		out = append(out, b[8:8+n])
		b = b[8+n:]
	}
	return out
}

// FuzzRecover writes arbitrary bytes as the body of the only segment, opens
// the spool and checks that recovery neither fails nor panics, keeps exactly
// the valid prefix and serves it back.
func FuzzRecover(f *testing.F) {
	var valid []byte
	for i := range 5 {
		valid = appendFrame(valid, payload(i, i*7))
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add(append(bytes.Clone(valid), 0, 0, 0, 0, 0, 0, 0, 0, 0))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, body []byte) {
		dir := t.TempDir()
		path := segPath(dir, 0)
		if err := os.WriteFile(path, append(encodeSegHeader(0), body...), 0o644); err != nil {
			t.Fatal(err)
		}
		want := refDecode(body)
		s, err := Open(dir, Options{CheckpointInterval: time.Hour})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close(context.Background())
		if h := s.Stats().Head; h != uint64(len(want)) {
			t.Fatalf("recovered %d records, want %d", h, len(want))
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		size := int64(segHeaderSize)
		for _, w := range want {
			size += frameOverhead + int64(len(w))
		}
		if fi.Size() != size {
			t.Fatalf("segment is %d bytes after recovery, want %d", fi.Size(), size)
		}
		c, err := s.Cursor("fuzz")
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range want {
			r, err := c.Next(context.Background())
			if err != nil {
				t.Fatalf("Next %d: %v", i, err)
			}
			if r.Offset != uint64(i) || !bytes.Equal(r.Data, w) {
				t.Fatalf("record %d: offset %d data %q, want %q", i, r.Offset, trunc(r.Data), trunc(w))
			}
		}
	})
}

func TestSyncFailureFailsSpool(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	syncs, failAt := 0, 3
	opts := smallOpts()
	opts.syncFile = func(f *os.File) error {
		mu.Lock()
		defer mu.Unlock()
		syncs++
		if syncs >= failAt {
			return errors.New("injected EIO")
		}
		return diskio.SyncData(f)
	}
	s := openT(t, dir, opts)
	c, err := s.Cursor("sink")
	if err != nil {
		t.Fatal(err)
	}
	var committed uint64
	for i := range failAt - 1 {
		if _, err := s.AppendSync(ctxT(t), payload(i, recSize)); err != nil {
			t.Fatalf("append %d before the failure: %v", i, err)
		}
		committed++
	}
	tests := []struct {
		name string
		run  func() error
	}{
		{name: "the failing batch reports the error", run: func() error {
			_, err := s.AppendSync(ctxT(t), payload(99, recSize))
			return err
		}},
		{name: "later appends are refused", run: func() error {
			return s.Append(ctxT(t), payload(100, recSize), nil)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); !errors.Is(err, ErrFailed) {
				t.Fatalf("error %v, want ErrFailed", err)
			}
		})
	}
	// Committed records stay readable; the failed one never appears.
	got := readN(t, c, int(committed))
	checkRecords(t, got, 0, func(off uint64) []byte { return payload(int(off), recSize) })
	expectNoRecord(t, c)
	if err := s.Close(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s2 := openT(t, dir, smallOpts())
	if h := s2.Stats().Head; h != committed {
		t.Fatalf("head after reopen = %d, want %d (failed record resurrected?)", h, committed)
	}
	if _, err := s2.AppendSync(ctxT(t), []byte("recovered")); err != nil {
		t.Fatalf("append after reopen: %v", err)
	}
}
