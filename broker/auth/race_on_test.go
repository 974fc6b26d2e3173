//go:build race

package auth

// raceEnabled reports whether the race detector is on; it makes hashing
// some thirty times slower, so full-cost hashes are checked without it.
const raceEnabled = true
