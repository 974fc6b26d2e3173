//go:build race

package rules

// raceEnabled reports whether the race detector is on (it drops sync.Pool
// items at random, so pooled paths allocate).
const raceEnabled = true
