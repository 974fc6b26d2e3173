package main

import (
	"runtime/debug"
	"testing"
)

func TestRuntimeApply(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))

	RuntimeConfig{GCPercent: 250, MemoryLimit: 1 << 30}.apply(nil)
	if got := debug.SetGCPercent(100); got != 250 {
		t.Errorf("gc percent %d, want 250", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Errorf("memory limit %d, want %d", got, 1<<30)
	}

	// The environment's GOGC and GOMEMLIMIT win over the config.
	before := debug.SetMemoryLimit(-1)
	RuntimeConfig{GCPercent: 300, MemoryLimit: 2 << 30}.apply([]string{"GOGC=50", "GOMEMLIMIT=1GiB"})
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("gc percent %d with GOGC set, want the runtime's 100 untouched", got)
	}
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("memory limit %d with GOMEMLIMIT set, want %d untouched", got, before)
	}
}
