//go:build !race

package htpasswd

import "testing"

// TestLookupAllocs pins File.Lookup's documented zero allocations.
func TestLookupAllocs(t *testing.T) {
	f := benchFile(t, 1000)
	for _, user := range []string{"user500", "mallory"} {
		if n := testing.AllocsPerRun(100, func() { f.Lookup(user) }); n != 0 {
			t.Errorf("Lookup(%q) allocates %v times, want 0", user, n)
		}
	}
}
