//go:build race

package broker

// raceEnabled reports whether the race detector is on (it inflates stacks).
const raceEnabled = true
