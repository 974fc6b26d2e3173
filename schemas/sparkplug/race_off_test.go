//go:build !race

package sparkplug

const raceEnabled = false
