//go:build !race

// The race detector adds allocations of its own.

package rules

import (
	"hash/maphash"
	"testing"
)

// TestHashKeyAllocs pins HashKey at zero allocations: it runs on every
// request of a client+host or header limit.
func TestHashKeyAllocs(t *testing.T) {
	a, b := maphash.MakeSeed(), maphash.MakeSeed()
	s := "a.example.com"
	if n := testing.AllocsPerRun(100, func() { HashKey(a, b, TableKey{1, 2}, s) }); n != 0 {
		t.Errorf("HashKey allocs = %v, want 0", n)
	}
}
