//go:build !linux

package spool

import "os"

// preallocate is a no-op where fallocate is not available.
func preallocate(*os.File, int64) {}

// syncData makes f's written data durable.
func syncData(f *os.File) error { return f.Sync() }
