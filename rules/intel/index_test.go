package intel

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

func TestIndexLookup(t *testing.T) {
	t.Parallel()
	a := NewSet(mustPrefixes(t, "203.0.113.0/24", "2001:db8::/32"))
	b := NewSet(mustPrefixes(t, "203.0.113.128/25", "198.51.100.0/24"))
	x := NewIndex([]*Set{a, nil, b})
	tests := []struct {
		addr     string
		want     int
		wantOK   bool
		wantMask uint64
	}{
		{"203.0.113.1", 0, true, 0b001},
		{"203.0.113.200", 0, true, 0b101}, // both; the first wins
		{"198.51.100.1", 2, true, 0b100},
		{"198.51.101.0", 0, false, 0},
		{"2001:db8::1", 0, true, 0b001},
		{"2001:db9::", 0, false, 0},
		{"::ffff:198.51.100.9", 2, true, 0b100},
	}
	for _, tc := range tests {
		a := netip.MustParseAddr(tc.addr)
		if i, ok := x.Lookup(a); i != tc.want || ok != tc.wantOK {
			t.Errorf("Lookup(%s) = %d, %v, want %d, %v", tc.addr, i, ok, tc.want, tc.wantOK)
		}
		if m := x.Mask(a); m != tc.wantMask {
			t.Errorf("Mask(%s) = %b, want %b", tc.addr, m, tc.wantMask)
		}
	}
	if x.Len() != 3 {
		t.Errorf("Len() = %d, want 3", x.Len())
	}
	var nilIndex *Index
	if _, ok := nilIndex.Lookup(netip.MustParseAddr("203.0.113.1")); ok {
		t.Errorf("nil Index found an address")
	}
}

func TestIndexTooManySets(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Errorf("NewIndex(65 sets) did not panic")
		}
	}()
	NewIndex(make([]*Set, MaxIndexSets+1))
}

// TestIndexDifferential checks Index against each set's Contains.
func TestIndexDifferential(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 30 {
		sets := make([]*Set, 1+r.IntN(8))
		for i := range sets {
			sets[i] = NewSet(randomPrefixes(r, r.IntN(100)))
		}
		x := NewIndex(sets)
		for range 1000 {
			a := randomPrefixes(r, 1)[0].Addr()
			var want uint64
			for i, s := range sets {
				if s.Contains(a) {
					want |= 1 << uint(i)
				}
			}
			if got := x.Mask(a); got != want {
				t.Fatalf("round %d: Mask(%s) = %b, want %b", round, a, got, want)
			}
		}
	}
}
