package rules

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
)

// pageOrder sorts bans as Page does: newest first, then address, then
// prefix length (IPv4 as IPv4-mapped, so before most IPv6).
func pageOrder(a, b Ban) int {
	if c := b.Created.Compare(a.Created); c != 0 {
		return c
	}
	a16, b16 := netip.AddrFrom16(a.Prefix.Addr().As16()), netip.AddrFrom16(b.Prefix.Addr().As16())
	if c := a16.Compare(b16); c != 0 {
		return c
	}
	ab, bb := a.Prefix.Bits(), b.Prefix.Bits()
	if a.Prefix.Addr().Is4() {
		ab += 96
	}
	if b.Prefix.Addr().Is4() {
		bb += 96
	}
	return ab - bb
}

// pageModel is what Page must return for match: the active bans it
// selects, in order, computed from List.
func pageModel(l *BanList, match func(Ban) bool) []Ban {
	var out []Ban
	for _, b := range l.List() {
		if match(b) {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, pageOrder)
	return out
}

func prefixesOf(bans []Ban) []string {
	out := make([]string, len(bans))
	for i, b := range bans {
		out[i] = b.Prefix.String()
	}
	return out
}

// randomBanList fills a ban list with n bans of both families, several
// prefix lengths and jails, many sharing a creation time, some expired.
func randomBanList(t testing.TB, n int, seed uint64) (*BanList, *fakeClock) {
	t.Helper()
	l, clk := newTestBanList(BanListConfig{})
	r := rand.New(rand.NewPCG(seed, 1))
	jails := []string{"probes", "auth", "", "hotlink"}
	for i := 0; i < n; i++ {
		var p netip.Prefix
		switch r.IntN(4) {
		case 0, 1:
			p = netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, byte(r.IntN(4)), byte(r.IntN(256))}), 32)
		case 2:
			p = netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, byte(r.IntN(256)), 0}), 24)
		default:
			var b [16]byte
			b[0], b[1], b[2], b[3], b[7] = 0x20, 0x01, 0x0d, 0xb8, byte(r.IntN(256))
			p = netip.PrefixFrom(netip.AddrFrom16(b), 64)
		}
		d := time.Duration(1+r.IntN(120)) * time.Minute
		j := jails[r.IntN(len(jails))]
		if _, err := l.Ban(Ban{Prefix: p, Jail: j, Reason: fmt.Sprintf("Reason-%d", r.IntN(5)), Until: clk.Now().Add(d)}); err != nil {
			t.Fatal(err)
		}
		if r.IntN(3) == 0 { // a third of the bans share their second with the next
			clk.Add(time.Second)
		}
	}
	clk.Add(30 * time.Minute) // some expire
	return l, clk
}

// TestBanListPageWalk pages forward from the first page and backward from
// the last, for several matches and page sizes, and checks every page
// against the sorted, filtered List.
func TestBanListPageWalk(t *testing.T) {
	t.Parallel()
	l, _ := randomBanList(t, 700, 1)
	matches := []struct {
		q     string
		model func(Ban) bool
	}{
		{"", func(Ban) bool { return true }},
		{"203.0.1.7", func(b Ban) bool { return b.Prefix.Contains(netip.MustParseAddr("203.0.1.7")) }},
		{"203.0.0.0/23", func(b Ban) bool { return b.Prefix.Overlaps(netip.MustParsePrefix("203.0.0.0/23")) }},
		{"2001:db8::/24", func(b Ban) bool { return b.Prefix.Addr().Is6() }},
		{"MANUAL", func(b Ban) bool { return b.Jail == "" }},
		{"reason-3", func(b Ban) bool { return b.Reason == "Reason-3" }},
		{"/24", func(b Ban) bool { return b.Prefix.Bits() == 24 }},
		{"51.1", func(b Ban) bool { return strings.Contains(b.Prefix.String(), "51.1") }},
		{"nothing-matches", func(Ban) bool { return false }},
	}
	for _, mc := range matches {
		want := pageModel(l, mc.model)
		for _, limit := range []int{1, 7, 50, 1000} {
			t.Run(fmt.Sprintf("%q/limit=%d", mc.q, limit), func(t *testing.T) {
				var got []Ban
				q := BanQuery{Match: mc.q, Limit: limit}
				for pages := 0; ; pages++ {
					if pages > len(want)+1 {
						t.Fatalf("more than %d pages forward", pages)
					}
					p := l.Page(q)
					if p.Total != len(want) {
						t.Fatalf("Page(%+v).Total = %d, want %d", q, p.Total, len(want))
					}
					if len(p.Bans) > limit || (p.Next && len(p.Bans) != limit) {
						t.Fatalf("Page(%+v) = %d bans, next %v; limit %d", q, len(p.Bans), p.Next, limit)
					}
					if p.Prev != (len(got) > 0) {
						t.Fatalf("Page(%+v).Prev = %v after %d bans", q, p.Prev, len(got))
					}
					got = append(got, p.Bans...)
					if !p.Next {
						break
					}
					q = BanQuery{Match: mc.q, Limit: limit, After: CursorOf(p.Bans[len(p.Bans)-1])}
				}
				if !slices.Equal(prefixesOf(got), prefixesOf(want)) {
					t.Fatalf("forward walk = %v\nwant %v", prefixesOf(got), prefixesOf(want))
				}

				got = got[:0]
				q = BanQuery{Match: mc.q, Limit: limit, Last: true}
				for pages := 0; ; pages++ {
					if pages > len(want)+1 {
						t.Fatalf("more than %d pages backward", pages)
					}
					p := l.Page(q)
					if p.Next != (len(got) > 0) {
						t.Fatalf("Page(%+v).Next = %v after %d bans", q, p.Next, len(got))
					}
					got = append(slices.Clone(p.Bans), got...)
					if !p.Prev {
						break
					}
					q = BanQuery{Match: mc.q, Limit: limit, Before: CursorOf(p.Bans[0])}
				}
				if !slices.Equal(prefixesOf(got), prefixesOf(want)) {
					t.Fatalf("backward walk = %v\nwant %v", prefixesOf(got), prefixesOf(want))
				}
			})
		}
	}
}

// TestBanListPageFields: a page carries the bans as stored, and the
// cursor of a ban that is gone still positions the next page.
func TestBanListPageFields(t *testing.T) {
	t.Parallel()
	l, clk := newTestBanList(BanListConfig{})
	a := mustBan(t, l, clk, "192.0.2.1/32", "probes", time.Hour)
	clk.Add(time.Second)
	b := mustBan(t, l, clk, "198.51.100.0/24", "", time.Hour)
	clk.Add(time.Second)
	c := mustBan(t, l, clk, "2001:db8::/64", "auth", time.Hour)

	p := l.Page(BanQuery{Limit: 2})
	if len(p.Bans) != 2 || p.Bans[0] != c || p.Bans[1] != b || !p.Next || p.Prev || p.Total != 3 {
		t.Fatalf("Page(limit 2) = %+v, want [c b], next", p)
	}
	l.Unban(b.Prefix)
	p = l.Page(BanQuery{Limit: 2, After: CursorOf(b)})
	if len(p.Bans) != 1 || p.Bans[0] != a || p.Next || !p.Prev {
		t.Fatalf("Page(after removed b) = %+v, want [a], prev", p)
	}
	if p := l.Page(BanQuery{Limit: 2, Before: CursorOf(a)}); len(p.Bans) != 1 || p.Bans[0] != c || p.Prev || !p.Next {
		t.Fatalf("Page(before a) = %+v, want [c], next", p)
	}
	clk.Add(2 * time.Hour)
	if p := l.Page(BanQuery{}); len(p.Bans) != 0 || p.Total != 0 || p.Next || p.Prev {
		t.Fatalf("Page after expiry = %+v, want empty", p)
	}
}

func TestBanListActiveByJail(t *testing.T) {
	t.Parallel()
	l, clk := newTestBanList(BanListConfig{})
	mustBan(t, l, clk, "192.0.2.1/32", "probes", time.Hour)
	mustBan(t, l, clk, "192.0.2.2/32", "probes", time.Minute)
	mustBan(t, l, clk, "198.51.100.0/24", "", time.Hour)
	mustBan(t, l, clk, "2001:db8::/64", "auth", time.Hour)
	clk.Add(2 * time.Minute)
	got := l.ActiveByJail()
	want := map[string]int{"probes": 1, "": 1, "auth": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ActiveByJail() = %v, want %v", got, want)
	}
}

func TestContainsFold(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s, sub string
		want   bool
	}{
		{"Probe /WP-login.php", "wp-login", true},
		{"abc", "", true},
		{"", "a", false},
		{"ab", "abc", false},
		{"aaab", "aab", true},
		{"ÄB", "äb", false}, // ASCII folding only
	} {
		if got := containsFold(tc.s, tc.sub); got != tc.want {
			t.Errorf("containsFold(%q, %q) = %v, want %v", tc.s, tc.sub, got, tc.want)
		}
	}
}

// scaleBans is how many bans the large-list tests hold: 1,000,000, or
// 100,000 in a race-enabled build, where building a million bans alone
// takes over a minute. `make test` runs them without -race too.
func scaleBans() int {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" && s.Value == "true" {
				return 100_000
			}
		}
	}
	return 1_000_000
}

// millionBans is a ban list of n IPv4 /32 bans (10.0.0.0 upwards), one
// per microsecond of creation time.
func millionBans(tb testing.TB, n int) *BanList {
	tb.Helper()
	l := NewBanList(BanListConfig{})
	t0 := time.Now().Add(-time.Hour)
	until := time.Now().Add(24 * time.Hour)
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		b := Ban{Prefix: netip.PrefixFrom(a, 32), Jail: "probes", Reason: "probe", Until: until, Created: t0.Add(time.Duration(i) * time.Microsecond)}
		if _, err := l.Ban(b); err != nil {
			tb.Fatal(err)
		}
	}
	return l
}

// TestBanListPageMillionBoundedMemory: a page of 50 from 1,000,000 bans,
// deep in the list or filtered by text, allocates a few kilobytes, not a
// copy of the list. Not parallel, so the allocation counter sees Page
// alone.
func TestBanListPageMillionBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 1,000,000 bans")
	}
	n := scaleBans()
	l := millionBans(t, n)
	half := n / 2
	midAddr := netip.AddrFrom4([4]byte{10, byte(half >> 16), byte(half >> 8), byte(half)})
	mid := l.Page(BanQuery{Match: midAddr.String()})
	if len(mid.Bans) != 1 {
		t.Fatalf("Page(%s) = %+v, want one ban", midAddr, mid)
	}
	for _, q := range []BanQuery{
		{},
		{After: CursorOf(mid.Bans[0])},
		{Before: CursorOf(mid.Bans[0])},
		{Last: true},
		{Match: "10.1."},
		{Match: "10.1.0.0/16"},
	} {
		var m0, m1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m0)
		p := l.Page(q)
		runtime.ReadMemStats(&m1)
		if len(p.Bans) != 50 {
			t.Errorf("Page(%+v) = %d bans, want 50", q, len(p.Bans))
		}
		// 50 Bans and 51 candidates are under 10 KB; a copy of the list
		// would be over 100 MB.
		if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 256<<10 {
			t.Errorf("Page(%+v) allocated %d bytes, want under 256 KiB", q, alloc)
		}
	}
	if p := l.Page(BanQuery{After: CursorOf(mid.Bans[0])}); p.Bans[0].Created.After(mid.Bans[0].Created) || !p.Prev || !p.Next || p.Total != n {
		t.Errorf("page after ban 500,000 = first %v prev %v next %v total %d", p.Bans[0].Created, p.Prev, p.Next, p.Total)
	}
}

// BenchmarkBanListPage pages through 1,000,000 bans. Numbers go in
// closing notes (STYLE §10).
func BenchmarkBanListPage(b *testing.B) {
	l := millionBans(b, 1_000_000)
	mid := l.Page(BanQuery{Match: "10.7.161.32"}).Bans[0] // ban 500,000
	for _, c := range []struct {
		name string
		q    BanQuery
	}{
		{"bans=1e6/first", BanQuery{}},
		{"bans=1e6/after", BanQuery{After: CursorOf(mid)}},
		{"bans=1e6/last", BanQuery{Last: true}},
		{"bans=1e6/addr", BanQuery{Match: "10.7.161.32"}},
		{"bans=1e6/text", BanQuery{Match: "10.1."}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				l.Page(c.q)
			}
		})
	}
	b.Run("bans=1e6/active-by-jail", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			l.ActiveByJail()
		}
	})
}

// FuzzBanQueryMatch: any filter text pages without panicking, and what a
// page holds matches the filter's documented meaning (the reference
// below, written with net/netip and strings).
func FuzzBanQueryMatch(f *testing.F) {
	// Addresses, prefixes, text and malformed input.
	for _, s := range []string{"", "203.0.1.7", "203.0.0.0/23", "2001:db8::/24", "::ffff:203.0.1.7", "::ffff:203.0.0.0/120",
		"manual", "PROBES", "reason-3", "/24", "51.1", "1.2.3.4/33", "fe80::1%eth0", "  203.0.1.7  ", "\x00", "ü"} {
		f.Add(s)
	}
	l, _ := randomBanList(f, 300, 2)
	all := l.List()
	f.Fuzz(func(t *testing.T, q string) {
		ref := func(b Ban) bool {
			s := strings.TrimSpace(q)
			if s == "" {
				return true
			}
			if a, err := netip.ParseAddr(s); err == nil {
				a = a.Unmap().WithZone("")
				return b.Prefix.Contains(a)
			}
			if p, err := netip.ParsePrefix(s); err == nil {
				if p.Addr().Is4In6() && p.Bits() >= 96 {
					p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
				}
				return b.Prefix.Overlaps(p.Masked())
			}
			jail := b.Jail
			if jail == "" {
				jail = "manual"
			}
			low := strings.ToLower(s)
			return containsFold(jail, low) || containsFold(b.Reason, low) || containsFold(b.Prefix.String(), low)
		}
		want := 0
		for _, b := range all {
			if ref(b) {
				want++
			}
		}
		p := l.Page(BanQuery{Match: q, Limit: MaxPageLimit})
		if p.Total != want || len(p.Bans) != min(want, MaxPageLimit) {
			t.Fatalf("Page(%q) = %d of %d, want %d", q, len(p.Bans), p.Total, want)
		}
		for _, b := range p.Bans {
			if !ref(b) {
				t.Fatalf("Page(%q) holds %s, which the filter does not select", q, b.Prefix)
			}
		}
	})
}
