//go:build !race

package middleware

import "testing"

// TestHygieneAllocs pins that the canonical view of a clean, lower-case
// request allocates nothing (at most one allocation).
func TestHygieneAllocs(t *testing.T) {
	h, r := scopedRequest(t)
	if n := testing.AllocsPerRun(100, func() { h.ServeHTTP(nil, r) }); n > 0 {
		t.Errorf("Hygiene allocates %v times per request, want 0", n)
	}
}
