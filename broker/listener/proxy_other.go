//go:build !linux

package listener

import "io"

// peekLineLen is only implemented on Linux; elsewhere the caller reads
// the line in steps.
func peekLineLen(io.Reader, []byte) (int, bool, error) { return 0, false, nil }
