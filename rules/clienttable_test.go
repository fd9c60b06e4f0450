package rules

import (
	"net/netip"
	"strings"
	"testing"
)

// TestClientTable pins what RateBuckets relies on: a client's state
// persists between calls, clients are keyed as jails key them (an IPv6
// /64 is one client, IPv4-mapped IPv6 is IPv4), and the table holds at
// most its capacity, handing an evicted client a fresh zero state.
func TestClientTable(t *testing.T) {
	t.Parallel()
	ct, err := NewClientTable[int](2, 64)
	if err != nil {
		t.Fatal(err)
	}
	// bump adds one to ip's count and returns whether ip was fresh and
	// the count after.
	bump := func(ip string) (fresh bool, n int) {
		ct.Update(netip.MustParseAddr(ip), func(s *int, f bool) bool {
			fresh = f
			*s++
			n = *s
			return true
		})
		return fresh, n
	}
	for _, step := range []struct {
		ip        string
		wantFresh bool
		wantN     int
	}{
		{"192.0.2.1", true, 1},
		{"192.0.2.1", false, 2},
		{"::ffff:192.0.2.1", false, 3}, // mapped: the same client
		{"2001:db8::1", true, 1},
		{"2001:db8::2", false, 2}, // same /64
	} {
		if fresh, n := bump(step.ip); fresh != step.wantFresh || n != step.wantN {
			t.Fatalf("Update(%s) fresh %v, state %d; want %v, %d", step.ip, fresh, n, step.wantFresh, step.wantN)
		}
	}
	// A third client in a table of two evicts one of the others; the
	// newest is then tracked, and a client comes back either with its
	// state or, evicted, fresh with a zero state.
	bump("198.51.100.1")
	if n := ct.Len(); n != 2 {
		t.Fatalf("Len() = %d after three clients with capacity 2, want 2", n)
	}
	if fresh, n := bump("198.51.100.1"); fresh || n != 2 {
		t.Errorf("Update(198.51.100.1) again: fresh %v, state %d; want false, 2", fresh, n)
	}
	if fresh, n := bump("192.0.2.1"); fresh && n != 1 || !fresh && n != 4 {
		t.Errorf("Update(192.0.2.1) after an eviction: fresh %v, state %d; want true, 1 or false, 4", fresh, n)
	}
}

func TestNewClientTableErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		capacity, v6bits int
		wantErr          string
	}{
		{0, 64, "capacity 0 must be at least 1"},
		{10, 16, "IPv6 prefix /16 must be /32 to /128"},
		{10, 129, "IPv6 prefix /129"},
	} {
		if _, err := NewClientTable[int](tc.capacity, tc.v6bits); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("NewClientTable(%d, %d) = %v, want error containing %q", tc.capacity, tc.v6bits, err, tc.wantErr)
		}
	}
}
