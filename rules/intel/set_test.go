package intel

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

func mustPrefixes(t testing.TB, ss ...string) []netip.Prefix {
	t.Helper()
	ps := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		p, err := parseAddrOrPrefix(s)
		if err != nil {
			t.Fatalf("parseAddrOrPrefix(%q): %v", s, err)
		}
		ps[i] = p
	}
	return ps
}

func TestSetContains(t *testing.T) {
	t.Parallel()
	s := NewSet(mustPrefixes(t,
		"203.0.113.0/25", "203.0.113.128/25", // adjacent halves merge
		"198.51.100.7",
		"10.1.2.3/8",                         // host bits masked
		"::ffff:198.18.0.0/111",              // IPv4-mapped folds to 198.18.0.0/15
		"2001:db8::/48", "2001:db8:0:1::/64", // contained
		"::/0",
	))
	tests := []struct {
		addr string
		want bool
	}{
		{"203.0.113.0", true},
		{"203.0.113.255", true},
		{"203.0.114.0", false},
		{"198.51.100.7", true},
		{"198.51.100.8", false},
		{"198.51.100.6", false},
		{"10.255.255.255", true},
		{"11.0.0.0", false},
		{"198.19.255.255", true},
		{"198.20.0.0", false},
		{"::ffff:203.0.113.9", true}, // mapped address looked up as IPv4
		{"0.0.0.0", false},
		{"255.255.255.255", false},
		{"2001:db8::1", true},
		{"fe80::1%eth0", true}, // ::/0 holds every IPv6 address, zones ignored
		{"::", true},
	}
	for _, tc := range tests {
		if got := s.Contains(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Contains(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if got := s.Contains(netip.Addr{}); got {
		t.Errorf("Contains(invalid) = true, want false")
	}
	if got, want := s.Len(), 8; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
	// 203.0.113.0/24, 198.51.100.7, 10/8, 198.18/15; ::/0.
	if got, want := s.Ranges(), 5; got != want {
		t.Errorf("Ranges() = %d, want %d", got, want)
	}
	var nilSet *Set
	if nilSet.Contains(netip.MustParseAddr("203.0.113.1")) || nilSet.Len() != 0 {
		t.Errorf("nil set is not empty")
	}
}

func TestSetEdges(t *testing.T) {
	t.Parallel()
	s := NewSet(mustPrefixes(t, "0.0.0.0/0", "ffff::/16"))
	for _, a := range []string{"0.0.0.0", "255.255.255.255", "ffff::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
		if !s.Contains(netip.MustParseAddr(a)) {
			t.Errorf("Contains(%s) = false, want true", a)
		}
	}
	if s.Contains(netip.MustParseAddr("fffe::1")) {
		t.Errorf("Contains(fffe::1) = true, want false")
	}
	got := slices.Collect(s.Prefixes())
	want := mustPrefixes(t, "0.0.0.0/0", "ffff::/16")
	if !slices.Equal(got, want) {
		t.Errorf("Prefixes() = %v, want %v", got, want)
	}
}

func TestSetPrefixes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []string
		want []string
	}{
		{"halves merge", []string{"203.0.113.128/25", "203.0.113.0/25"}, []string{"203.0.113.0/24"}},
		{"contained dropped", []string{"198.51.100.0/24", "198.51.100.7"}, []string{"198.51.100.0/24"}},
		{"unaligned range split", []string{"10.0.0.1", "10.0.0.2/31", "10.0.0.4/30"}, []string{"10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/30"}},
		{"v6 neighbours", []string{"2001:db8::/33", "2001:db8:8000::/33"}, []string{"2001:db8::/32"}},
		{"mapped folds", []string{"::ffff:203.0.113.0/120"}, []string{"203.0.113.0/24"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := slices.Collect(NewSet(mustPrefixes(t, tc.in...)).Prefixes())
			if want := mustPrefixes(t, tc.want...); !slices.Equal(got, want) {
				t.Errorf("Prefixes(%v) = %v, want %v", tc.in, got, want)
			}
		})
	}
}

// randomPrefixes draws n prefixes clustered in a few /8s (IPv4) and /32s
// (IPv6) so that they overlap and touch, as real lists do.
func randomPrefixes(r *rand.Rand, n int) []netip.Prefix {
	ps := make([]netip.Prefix, n)
	for i := range ps {
		if r.IntN(4) == 0 {
			var b [16]byte
			b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, byte(0xb8+r.IntN(3))
			for j := 4; j < 16; j++ {
				b[j] = byte(r.UintN(256))
			}
			ps[i] = netip.PrefixFrom(netip.AddrFrom16(b), 32+r.IntN(97)).Masked()
			continue
		}
		b := [4]byte{byte(198 + r.IntN(6)), byte(r.UintN(256)), byte(r.UintN(256)), byte(r.UintN(256))}
		ps[i] = netip.PrefixFrom(netip.AddrFrom4(b), 8+r.IntN(25)).Masked()
	}
	return ps
}

// TestSetDifferential checks Contains against a linear scan with
// netip.Prefix.Contains, and that Prefixes covers exactly the same
// addresses with disjoint, masked prefixes.
func TestSetDifferential(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		ps := randomPrefixes(r, 1+r.IntN(200))
		s := NewSet(ps)
		merged := slices.Collect(s.Prefixes())
		for i, p := range merged {
			if p != p.Masked() {
				t.Fatalf("round %d: Prefixes yielded unmasked %v", round, p)
			}
			if i > 0 && merged[i-1].Overlaps(p) {
				t.Fatalf("round %d: Prefixes yielded overlapping %v and %v", round, merged[i-1], p)
			}
		}
		for range 500 {
			a := randomPrefixes(r, 1)[0].Addr()
			if r.IntN(2) == 0 { // an address at a list's edge
				p := ps[r.IntN(len(ps))]
				a = p.Addr()
				if r.IntN(2) == 0 {
					a = a.Prev()
				}
			}
			if !a.IsValid() {
				continue
			}
			want := slices.ContainsFunc(ps, func(p netip.Prefix) bool { return p.Contains(a) })
			if got := s.Contains(a); got != want {
				t.Fatalf("round %d: Contains(%s) = %v, want %v (linear scan)", round, a, got, want)
			}
			if got := slices.ContainsFunc(merged, func(p netip.Prefix) bool { return p.Contains(a) }); got != want {
				t.Fatalf("round %d: merged Prefixes hold %s = %v, want %v", round, a, got, want)
			}
		}
	}
}
