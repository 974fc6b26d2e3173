package spool

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/internal/diskio"
)

// segment describes one segment file. All fields are guarded by Spool.mu;
// records and bytes cover committed (fsynced) data only.
type segment struct {
	base    uint64
	records uint64
	bytes   int64
}

// end is the offset one past the segment's last committed record.
func (g *segment) end() uint64 { return g.base + g.records }

// segName is the file name of the segment starting at base; zero-padded so
// that lexical order is offset order.
func segName(base uint64) string { return fmt.Sprintf("%020d%s", base, segSuffix) }

func segPath(dir string, base uint64) string { return filepath.Join(dir, segName(base)) }

// parseSegName returns the base offset encoded in a segment file name.
func parseSegName(name string) (uint64, bool) {
	stem, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(stem) != 20 {
		return 0, false
	}
	base, err := strconv.ParseUint(stem, 10, 64)
	return base, err == nil
}

// listSegments returns the base offsets of the segment files in dir, sorted.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing segments: %w", err)
	}
	var bases []uint64
	for _, e := range entries {
		if base, ok := parseSegName(e.Name()); ok && e.Type().IsRegular() {
			bases = append(bases, base)
		}
	}
	slices.Sort(bases)
	return bases, nil
}

// syncDir fsyncs a directory so that file creations, renames and removals
// in it are durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory for sync: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// createSegment creates a new segment file starting at base, reserves
// prealloc bytes of disk for it, writes its header and makes both the file
// and its directory entry durable. It returns the file opened for
// appending.
func createSegment(dir string, base uint64, prealloc int64) (*os.File, error) {
	path := segPath(dir, base)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating segment: %w", err)
	}
	diskio.Preallocate(f, prealloc)
	if _, err := f.Write(encodeSegHeader(base)); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("writing segment header: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("syncing new segment: %w", err)
	}
	if err := syncDir(dir); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// recoverSegments loads the segment list of dir and repairs the last
// segment: a torn or corrupt tail is truncated to the last whole record and
// reported on log. It returns the segments and the active (last) segment
// opened for appending. If dir holds no segment, one starting at
// emptyBase is created.
func recoverSegments(dir string, emptyBase uint64, prealloc int64, log *slog.Logger) ([]*segment, *os.File, error) {
	bases, err := listSegments(dir)
	if err != nil {
		return nil, nil, err
	}
	if len(bases) == 0 {
		f, err := createSegment(dir, emptyBase, prealloc)
		if err != nil {
			return nil, nil, err
		}
		return []*segment{{base: emptyBase, bytes: segHeaderSize}}, f, nil
	}
	segs := make([]*segment, len(bases))
	for i, base := range bases[:len(bases)-1] {
		fi, err := os.Stat(segPath(dir, base))
		if err != nil {
			return nil, nil, fmt.Errorf("inspecting segment: %w", err)
		}
		segs[i] = &segment{base: base, records: bases[i+1] - base, bytes: fi.Size()}
	}
	last, f, err := recoverLast(dir, bases[len(bases)-1], log)
	if err != nil {
		return nil, nil, err
	}
	segs[len(segs)-1] = last
	return segs, f, nil
}

// recoverLast scans the last segment, truncates whatever follows its last
// whole record, and returns it opened for appending.
func recoverLast(dir string, base uint64, log *slog.Logger) (*segment, *os.File, error) {
	path := segPath(dir, base)
	f, err := os.OpenFile(path, os.O_RDWR, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("opening last segment: %w", err)
	}
	seg, err := repairSegment(f, base, log.With("segment", filepath.Base(path)))
	if err != nil {
		_ = f.Close()
		return nil, nil, err
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("seeking to segment end: %w", err)
	}
	return seg, f, nil
}

// repairSegment validates the segment file f and truncates it after its
// last whole record (rewriting the header if even that is torn).
func repairSegment(f *os.File, base uint64, log *slog.Logger) (*segment, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("inspecting segment: %w", err)
	}
	size := fi.Size()
	hdr := make([]byte, segHeaderSize)
	n, _ := io.ReadFull(f, hdr)
	if herr := checkSegHeader(hdr[:n], base); herr != nil {
		// A header is written and fsynced before any record, so a bad one
		// means the segment was being created when the process died.
		log.Warn("rewriting torn segment header", "error", herr, "truncated_bytes", size)
		if err := rewriteFile(f, encodeSegHeader(base)); err != nil {
			return nil, err
		}
		return &segment{base: base, bytes: segHeaderSize}, nil
	}
	records, valid, stop := scanValid(f, size-segHeaderSize, nil)
	seg := &segment{base: base, records: records, bytes: segHeaderSize + valid}
	if stop == nil {
		return seg, nil
	}
	log.Warn("truncating torn segment tail",
		"reason", stop.Error(),
		"records_kept", records,
		"next_offset", base+records,
		"valid_bytes", seg.bytes,
		"truncated_bytes", size-seg.bytes)
	if err := f.Truncate(seg.bytes); err != nil {
		return nil, fmt.Errorf("truncating segment tail: %w", err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("syncing truncated segment: %w", err)
	}
	return seg, nil
}

// rewriteFile replaces the whole content of f with data, durably.
func rewriteFile(f *os.File, data []byte) error {
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("truncating segment: %w", err)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		return fmt.Errorf("rewriting segment header: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing segment: %w", err)
	}
	return nil
}

// openSegmentAt opens the segment file starting at base for reading,
// positioned just after its verified header.
func openSegmentAt(dir string, base uint64) (*os.File, error) {
	f, err := os.Open(segPath(dir, base))
	if err != nil {
		return nil, err
	}
	hdr := make([]byte, segHeaderSize)
	if _, err := io.ReadFull(f, hdr); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("reading segment header: %w", errors.Join(errBadHeader, err))
	}
	if err := checkSegHeader(hdr, base); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}
