package rules

import (
	"math/big"
	"net/netip"
	"testing"
)

func TestSplitAround(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		p    string
		keep []string
		n    int
	}{
		{"192.0.3.0/24", []string{"192.0.3.50/32"}, 8},
		{"192.0.3.0/24", []string{"192.0.3.50/32", "192.0.3.200/32"}, 14},
		{"192.0.3.0/24", []string{"10.0.0.0/8"}, 1},
		{"192.0.3.0/24", []string{"192.0.0.0/16"}, 0},
		{"192.0.3.0/24", []string{"192.0.3.128/25"}, 1},
		{"2001:db8:7::/48", []string{"2001:db8:7:1::5/128"}, 80},
	} {
		p := netip.MustParsePrefix(tc.p)
		var keep []netip.Prefix
		for _, k := range tc.keep {
			keep = append(keep, netip.MustParsePrefix(k))
		}
		out, ok := SplitAround(p, keep)
		if !ok || len(out) != tc.n {
			t.Errorf("SplitAround(%s, %v): %d prefixes, ok %v; want %d", p, keep, len(out), ok, tc.n)
			continue
		}
		// The pieces are disjoint, inside p, overlap nothing kept, and with
		// the kept addresses inside p they add up to all of p.
		size := func(q netip.Prefix) *big.Int {
			return new(big.Int).Lsh(big.NewInt(1), uint(q.Addr().BitLen()-q.Bits()))
		}
		sum := new(big.Int)
		for i, q := range out {
			if !p.Contains(q.Addr()) || q.Bits() < p.Bits() {
				t.Errorf("%s: piece %s outside", p, q)
			}
			for _, k := range keep {
				if q.Overlaps(k) {
					t.Errorf("%s: piece %s overlaps kept %s", p, q, k)
				}
			}
			for _, r := range out[i+1:] {
				if q.Overlaps(r) {
					t.Errorf("%s: pieces %s and %s overlap", p, q, r)
				}
			}
			sum.Add(sum, size(q))
		}
		for _, k := range keep {
			if k.Overlaps(p) {
				if k.Bits() <= p.Bits() {
					sum.Add(sum, size(p))
				} else {
					sum.Add(sum, size(k))
				}
			}
		}
		if sum.Cmp(size(p)) != 0 {
			t.Errorf("%s: pieces and kept cover %v addresses, want %v", p, sum, size(p))
		}
	}
	// Too many pieces: refused rather than a huge list.
	var keep []netip.Prefix
	for i := 0; i < 200; i++ {
		keep = append(keep, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(i), 1}), 32))
	}
	if _, ok := SplitAround(netip.MustParsePrefix("10.0.0.0/16"), keep); ok {
		t.Error("SplitAround of a /16 around 200 addresses: ok, want refused")
	}
}
