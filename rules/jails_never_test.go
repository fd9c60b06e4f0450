package rules

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

// An IPv6 client whose ban prefix would cover what must stay served (::1
// inside the IPv4-compatible ::/64, the host's own address) is banned by
// its address alone; other clients keep their /64.
func TestBanPrefixNarrowedAroundNoEscalate(t *testing.T) {
	t.Parallel()
	host := netip.MustParsePrefix("2001:db8:5::10/128")
	j, bans, _ := newTestJails(t, JailsConfig{
		Jails:      map[string]JailConfig{"probes": {MaxRetry: 1}},
		IPv6Prefix: 64,
		NoEscalate: []netip.Prefix{netip.MustParsePrefix("::1/128"), host},
	})
	for _, tc := range []struct{ client, want string }{
		{"::102:304", "::102:304/128"},               // ::1.2.3.4
		{"2001:db8:5::99", "2001:db8:5::99/128"},     // the host's /64
		{"2001:db8:6::99", "2001:db8:6::/64"},        // anyone else
		{"::ffff:0:102:305", "::ffff:0:102:305/128"}, // IPv4-translated, also in ::/64
	} {
		j.Report("probes", netip.MustParseAddr(tc.client), "probe")
		if _, ok := bans.Lookup(netip.MustParseAddr(tc.client)); !ok {
			t.Errorf("%s: not banned", tc.client)
		}
		found := false
		for _, b := range bans.List() {
			if b.Prefix.String() == tc.want {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: no ban of %s in %v", tc.client, tc.want, bans.List())
		}
	}
	for _, a := range []string{"::1", "2001:db8:5::10"} {
		if _, ok := bans.Lookup(netip.MustParseAddr(a)); ok {
			t.Errorf("%s is banned", a)
		}
	}
}

// A client the admin unbanned no longer counts towards its network: its
// neighbours' bans alone do not make After.
func TestEscalateSkipsUnbannedClients(t *testing.T) {
	t.Parallel()
	j, bans, clk := escalatingJails(t, 3, JailsConfig{})
	j.Report("probes", ip("203.0.113.1"), "probe")
	if !bans.Unban(netip.MustParsePrefix("203.0.113.1/32")) {
		t.Fatal("unban of 203.0.113.1 failed")
	}
	clk.Add(time.Second)
	j.Report("probes", ip("203.0.113.2"), "probe")
	j.Report("probes", ip("203.0.113.3"), "probe")
	if got, want := banned(bans), []string{"203.0.113.2/32", "203.0.113.3/32"}; !slices.Equal(got, want) {
		t.Fatalf("two banned and one unbanned client: bans %v, want %v", got, want)
	}
	j.Report("probes", ip("203.0.113.4"), "probe")
	if got, want := banned(bans), []string{"203.0.113.0/24"}; !slices.Equal(got, want) {
		t.Fatalf("three banned clients: bans %v, want %v", got, want)
	}
}
