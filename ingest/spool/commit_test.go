package spool

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/diskio"
)

// TestNoAckBeforeItsFsync checks the commit pipeline's one promise: done
// reports a record only after an fdatasync that started once the record
// was written has returned. The injected sync is slow, so appends pile up
// and are written while it runs (the pipelined path); the test records,
// per segment file, the size each sync started from and fails if a record
// is acknowledged while its last byte lies beyond every finished sync.
func TestNoAckBeforeItsFsync(t *testing.T) {
	const recSize = 512
	tests := []struct {
		name     string
		segBytes int64
		records  int
		// overlap: the test also requires writes during syncs (a
		// rollover waits for the sync, so rolling segments rarely do).
		overlap bool
	}{
		{name: "one segment", segBytes: 64 << 20, records: 16000, overlap: true},
		{name: "rolling segments", segBytes: 256 << 10, records: 8000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var (
				mu         sync.Mutex
				durable    = map[string]int64{} // segment path → bytes fsynced
				overlapped int                  // syncs during which the file grew
			)
			// Producers with room for most of their records in flight keep
			// appending while a sync runs (closed-loop ones stall once
			// their window is in the running batch); batches close at
			// 128 KiB, so overlapping writes also meet CommitBytes.
			opts := Options{SegmentBytes: tc.segBytes, MaxBytes: 1 << 30, CommitBytes: 128 << 10}
			opts.syncFile = func(f *os.File) error {
				before, err := f.Stat()
				if err != nil {
					return err
				}
				// A slow disk. Until a few syncs saw the file grow while
				// they ran, wait for that (up to 250ms: appends keep
				// coming, so only a committer that does not write during a
				// sync makes it time out).
				mu.Lock()
				waitGrowth := tc.overlap && overlapped < 3
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
				for deadline := time.Now().Add(250 * time.Millisecond); waitGrowth && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
					if fi, err := f.Stat(); err == nil && fi.Size() > before.Size() {
						break
					}
				}
				if err := diskio.SyncData(f); err != nil {
					return err
				}
				after, err := f.Stat()
				if err != nil {
					return err
				}
				mu.Lock()
				durable[f.Name()] = max(durable[f.Name()], before.Size())
				if after.Size() > before.Size() {
					overlapped++
				}
				mu.Unlock()
				return nil
			}
			s := openT(t, dir, opts)
			perSeg := uint64((tc.segBytes - segHeaderSize) / (recSize + frameOverhead))
			// Where record off ends: its segment file and the byte after it.
			end := func(off uint64) (string, int64) {
				base := off / perSeg * perSeg
				return filepath.Join(dir, segName(base)), segHeaderSize + int64(off-base+1)*(recSize+frameOverhead)
			}
			var (
				bad   []string
				next  uint64
				wg    sync.WaitGroup
				badMu sync.Mutex
			)
			done := func(off uint64, err error) {
				defer wg.Done()
				badMu.Lock()
				defer badMu.Unlock()
				if err != nil {
					bad = append(bad, err.Error())
					return
				}
				if off != next {
					bad = append(bad, "out of order")
				}
				next = off + 1
				path, e := end(off)
				mu.Lock()
				d := durable[path]
				mu.Unlock()
				if d < e && len(bad) < 5 {
					bad = append(bad, filepath.Base(path)+": acked a record ending at byte "+strconv.FormatInt(e, 10)+" with "+strconv.FormatInt(d, 10)+" bytes fsynced")
				}
			}
			const producers, window = 8, 1024
			var prod sync.WaitGroup
			for p := range producers {
				prod.Add(1)
				go func() {
					defer prod.Done()
					sem := make(chan struct{}, window)
					for i := p; i < tc.records; i += producers {
						sem <- struct{}{}
						wg.Add(1)
						err := s.Append(context.Background(), payload(i, recSize), func(off uint64, err error) {
							done(off, err)
							<-sem
						})
						if err != nil {
							wg.Done()
							t.Error(err)
							return
						}
					}
				}()
			}
			prod.Wait()
			wg.Wait()
			for _, b := range bad {
				t.Error(b)
			}
			if st := s.Stats(); st.Head != uint64(tc.records) || st.Segments < int(uint64(tc.records)/perSeg) {
				t.Errorf("head %d in %d segments, want %d records in at least %d", st.Head, st.Segments, tc.records, uint64(tc.records)/perSeg)
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.overlap && overlapped == 0 {
				t.Errorf("no write overlapped a running fdatasync (the commit is not pipelined)")
			}
			t.Logf("%d syncs overlapped by writes", overlapped)
		})
	}
}
