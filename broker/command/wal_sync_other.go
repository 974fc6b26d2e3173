//go:build !linux

package command

import "os"

// preallocate is a no-op outside Linux.
func preallocate(*os.File, int64) {}

// syncData makes f's written data durable.
func syncData(f *os.File) error { return f.Sync() }
