package main

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"gatehouse/cmd/gatehouse-bench/role"
)

// ipsetList is `ipset list` output with gatehouse's two hash:net sets.
const ipsetList = `Name: gatehouse4
Type: hash:net
Revision: 7
Header: family inet hashsize 1024 maxelem 65536 timeout 0 bucketsize 12 initval 0x9593b051
Size in memory: 584
References: 1
Number of entries: 2
Members:
10.77.1.1 timeout 3599
198.51.100.0/24 timeout 59

Name: gatehouse6
Type: hash:net
Revision: 7
Header: family inet6 hashsize 1024 maxelem 65536 bucketsize 12 initval 0xc348839b
Size in memory: 1312
References: 1
Number of entries: 1
Members:
2001:db8::/64
`

// nftList is `nft -j list ruleset` output (nft 1.0.6) with gatehouse's
// table: plain addresses, a prefix, and a range element.
const nftList = `{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "gatehouse", "handle": 1}}, {"set": {"family": "inet", "name": "ban4", "table": "gatehouse", "type": "ipv4_addr", "handle": 2, "flags": ["interval", "timeout"], "elem": [{"elem": {"val": "10.77.1.1", "timeout": 3600, "expires": 3599}}, {"elem": {"val": "10.77.1.2", "timeout": 3600, "expires": 3599}}, {"elem": {"val": {"prefix": {"addr": "198.51.100.0", "len": 24}}, "timeout": 7200, "expires": 7199}}, {"range": ["10.77.1.10", "10.77.1.12"]}]}}, {"set": {"family": "inet", "name": "ban6", "table": "gatehouse", "type": "ipv6_addr", "handle": 3, "flags": ["interval", "timeout"], "elem": [{"elem": {"val": {"prefix": {"addr": "2001:db8::", "len": 64}}, "timeout": 3600, "expires": 3599}}]}}, {"chain": {"family": "inet", "table": "gatehouse", "name": "prerouting", "handle": 1, "type": "filter", "hook": "prerouting", "prio": -300, "policy": "accept"}}]}`

func TestKernelSets(t *testing.T) {
	scanners := addrTargets(role.ScannerAddrs(netip.MustParseAddr("10.77.1.1"), 12)) // 10.77.1.1 … .12
	probe := addrTargets([]netip.Addr{netip.MustParseAddr("198.51.100.77"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8:1::1"), netip.MustParseAddr("192.0.2.1")})

	ip := parseIPSetMembers(ipsetList)
	if len(ip) != 3 {
		t.Errorf("parseIPSetMembers: %d members, want 3: %v", len(ip), ip)
	}
	if got := covered(scanners, ip); got != 1 {
		t.Errorf("ipset: %d scanners covered, want 1 (10.77.1.1)", got)
	}
	if got := covered(probe, ip); got != 2 {
		t.Errorf("ipset: %d of %v covered, want 2 (the /24 and the /64)", got, probe)
	}

	nft, err := parseNftRanges([]byte(nftList))
	if err != nil {
		t.Fatal(err)
	}
	if got := covered(scanners, nft); got != 5 {
		t.Errorf("nft: %d scanners covered, want 5 (.1, .2, .10-.12)", got)
	}
	if got := covered(probe, nft); got != 2 {
		t.Errorf("nft: %d of %v covered, want 2", got, probe)
	}
	if _, err := parseNftRanges([]byte("Error: Could not process rule")); err == nil {
		t.Error("parseNftRanges(text): no error")
	}
}

// TestCoveredPrefixes: an attacker's /48 is covered by a /48 or a wider
// prefix, never by /64s inside it nor by a range that starts inside it;
// a nested entry sorted after a wider one does not hide it.
func TestCoveredPrefixes(t *testing.T) {
	p := func(s string) addrRange { return prefixRange(netip.MustParsePrefix(s)) }
	targets := []addrRange{p("2001:db8:100::/48"), p("2001:db8:101::/48"), p("2001:db8:102::/48"), p("2001:db8:103::/48"), p("2001:db8:104::/48"), p("10.78.0.0/24")}
	rs := []addrRange{
		p("2001:db8:100::/48"),                           // the /48 itself
		p("2001:db8:101::/64"), p("2001:db8:101:1::/64"), // members only
		p("2001:db8:102::/47"), p("2001:db8:102:5::/64"), // wider (102 and 103), a nested member after it
		{netip.MustParseAddr("2001:db8:104::1"), netip.MustParseAddr("2001:db8:105::")}, // starts inside
		p("10.0.0.0/8"), // IPv4, before every IPv6 entry
	}
	got := coveredSet(targets, rs)
	want := []bool{true, false, true, true, false, true}
	if !slices.Equal(got, want) {
		t.Errorf("coveredSet(%v) = %v, want %v", targets, got, want)
	}
}

// TestCoveredAgainstScan checks the index against a scan of every range
// on random prefixes of both families, nested and overlapping.
func TestCoveredAgainstScan(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pfx := func() addrRange {
		if r.IntN(2) == 0 {
			a := netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(4)), byte(r.IntN(256))})
			return prefixRange(netip.PrefixFrom(a, 20+r.IntN(13)))
		}
		var b [16]byte
		b[0], b[1], b[5], b[7] = 0x20, 0x01, byte(r.IntN(4)), byte(r.IntN(4))
		return prefixRange(netip.PrefixFrom(netip.AddrFrom16(b), 44+r.IntN(21)))
	}
	for range 200 {
		rs := make([]addrRange, r.IntN(20))
		for i := range rs {
			rs[i] = pfx()
		}
		ts := make([]addrRange, 20)
		for i := range ts {
			ts[i] = pfx()
		}
		got := coveredSet(ts, rs)
		for i, tg := range ts {
			want := false
			for _, k := range rs {
				want = want || (k.contains(tg.lo) && k.contains(tg.hi))
			}
			if got[i] != want {
				t.Fatalf("coveredSet: target %v covered %v, want %v (ranges %v)", tg, got[i], want, rs)
			}
		}
	}
}

// FuzzParseIPSetMembers: every member read is a valid range, low ≤ high.
func FuzzParseIPSetMembers(f *testing.F) {
	f.Add(ipsetList)                                  // gatehouse's sets
	f.Add("Members:\n10.0.0.1,tcp:80 timeout 5\n")    // hash:ip,port members are skipped
	f.Add("Members:\n10.0.0.0/33\n::ffff:10.0.0.1\n") // bad prefix, mapped address
	f.Fuzz(func(t *testing.T, in string) {
		for _, r := range parseIPSetMembers(in) {
			if !r.lo.IsValid() || r.hi.Less(r.lo) || r.lo.BitLen() != r.hi.BitLen() {
				t.Errorf("parseIPSetMembers(%q): bad range %v", in, r)
			}
		}
	})
}

// FuzzParseNftRanges: every element read is a valid range of one family.
func FuzzParseNftRanges(f *testing.F) {
	f.Add([]byte(nftList))                                                                          // gatehouse's table
	f.Add([]byte(`{"nftables":[{"set":{"elem":["10.0.0.1",{"range":["10.0.0.9","10.0.0.1"]}]}}]}`)) // a reversed range
	f.Add([]byte(`{"nftables":[{"set":{"elem":[{"elem":{"val":{"elem":{"val":"::1"}}}}]}}]}`))      // nesting
	f.Fuzz(func(t *testing.T, in []byte) {
		rs, err := parseNftRanges(in)
		if err != nil {
			return
		}
		for _, r := range rs {
			if !r.lo.IsValid() || r.hi.Less(r.lo) || r.lo.BitLen() != r.hi.BitLen() {
				t.Errorf("parseNftRanges(%q): bad range %v", in, r)
			}
		}
	})
}

func TestUpstreamStats(t *testing.T) {
	ss := parseUpstreamStats("1000 0 0\n1100 100 5\n1200 300 5\nbroken line\n1300 600 9\n1400 70")
	if len(ss) != 4 {
		t.Fatalf("parseUpstreamStats: %d samples, want 4 (a broken and a cut line skipped): %v", len(ss), ss)
	}
	if got, ok := legitRate(ss, 1100, 1300); !ok || got != 2500 {
		t.Errorf("legitRate(1100, 1300) = %v, %v; want 2500 req/s", got, ok)
	}
	if got, ok := legitRate(ss, 1150, 1250); !ok || got != 2000 {
		t.Errorf("legitRate(1150, 1250) = %v, %v; want 2000 req/s (samples 1100 and 1200)", got, ok)
	}
	if _, ok := legitRate(ss, 900, 950); ok {
		t.Error("legitRate before the first sample: ok, want not")
	}
}

// FuzzParseUpstreamStats: samples are non-negative, and a rate between
// any two of their times is finite.
func FuzzParseUpstreamStats(f *testing.F) {
	f.Add("1000 0 0\n1100 100 5\n") // two samples
	f.Add("1000 0\n-1 2 3\n")       // cut and negative lines
	f.Fuzz(func(t *testing.T, in string) {
		ss := parseUpstreamStats(in)
		for _, s := range ss {
			if s.ms < 0 || s.legit < 0 || s.other < 0 {
				t.Fatalf("parseUpstreamStats(%q): negative sample %+v", in, s)
			}
		}
		if len(ss) >= 2 {
			if v, ok := legitRate(ss, ss[0].ms, ss[len(ss)-1].ms); ok && (math.IsNaN(v) || math.IsInf(v, 0)) {
				t.Errorf("legitRate over %q = %v", in, v)
			}
		}
	})
}

func TestParseNetstat(t *testing.T) {
	in := "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 7 2 3\nIpExt: InNoRoutes\nIpExt: 1 2\nMPTcpExt: A\nMPTcpExt: 5\n"
	got := parseNetstat(in)
	want := map[string]uint64{"TcpExt.SyncookiesSent": 7, "TcpExt.ListenOverflows": 2, "TcpExt.ListenDrops": 3, "MPTcpExt.A": 5}
	if len(got) != len(want) {
		t.Errorf("parseNetstat = %v, want %v (IpExt's pair does not line up)", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("parseNetstat[%q] = %d, want %d", k, got[k], v)
		}
	}
	d := netstatDelta(map[string]uint64{"a": 1, "b": 5, "c": 1}, map[string]uint64{"a": 4, "b": 2})
	if len(d) != 1 || d["a"] != 3 {
		t.Errorf("netstatDelta = %v, want a: 3 only (b went down, c is gone)", d)
	}
}
