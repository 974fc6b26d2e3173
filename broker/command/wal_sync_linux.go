//go:build linux

package command

import (
	"os"
	"syscall"
)

// fallocKeepSize is FALLOC_FL_KEEP_SIZE from linux/falloc.h.
const fallocKeepSize = 0x1

// preallocate reserves size bytes for f without changing its length, so
// appends do not allocate blocks at sync time. Failure is harmless.
func preallocate(f *os.File, size int64) {
	_ = syscall.Fallocate(int(f.Fd()), fallocKeepSize, 0, size)
}

// syncData makes f's written data (and its length) durable, skipping
// timestamps.
func syncData(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}
