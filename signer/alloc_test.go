//go:build !race

package signer

import (
	"net/netip"
	"testing"
	"time"
)

// TestLinkVerifyAllocs pins the claim that verifying a link costs no
// allocation, valid or not, when the link parameters end the query.
func TestLinkVerifyAllocs(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_900_000_000, 0)}
	l := newLinks(t, LinkConfig{Keys: [][]byte{keyNew, keyOld}, Now: clock.Now})
	client := netip.MustParseAddr("203.0.113.7")
	valid := "start=10&" + l.Sign("GET", "media.example.com", "/paid/a.mp4", "start=10", clock.t.Add(time.Hour), client)
	for _, q := range []string{valid, "gh_expires=1900003600&gh_signature=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "start=10"} {
		var err error
		allocs := testing.AllocsPerRun(100, func() {
			_, err = l.Verify("GET", "media.example.com", "/paid/a.mp4", q, client)
		})
		if allocs != 0 {
			t.Errorf("Verify(%q) (%v) allocates %v times, want 0", q, err, allocs)
		}
	}
}
