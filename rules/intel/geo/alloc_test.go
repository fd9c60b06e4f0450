//go:build !race

package geo

import (
	"net/netip"
	"testing"
)

// TestLookupAllocs pins the zero-allocation lookup.
func TestLookupAllocs(t *testing.T) {
	_, country, asn := testDBs(t)
	d, err := Open(Config{Country: country, ASN: asn})
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("198.51.100.7")
	if n := testing.AllocsPerRun(100, func() {
		if d.Country(ip) != "DE" || d.ASN(ip) != 64500 {
			t.Fatal("wrong answer")
		}
	}); n != 0 {
		t.Errorf("Country+ASN allocate %v times per lookup, want 0", n)
	}
}
