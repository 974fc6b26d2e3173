// Package examples holds Sluice's runnable examples (quickstart,
// manufacturing, sparkplug), each a directory with a README and its
// configuration. The package's tests run every example's README steps
// against the real binary and real peers, and fail when a README command
// they run is no longer written in the README.
package examples
