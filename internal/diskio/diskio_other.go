//go:build !linux

// Package diskio holds the two file operations Sluice's logs (the ingest
// spool, the command accept log) make durable appends with.
package diskio

import "os"

// Preallocate is a no-op where fallocate is not available.
func Preallocate(*os.File, int64) {}

// SyncData makes f's written data durable.
func SyncData(f *os.File) error { return f.Sync() }
