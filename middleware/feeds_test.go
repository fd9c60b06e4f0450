package middleware

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"

	"gatehouse/rules/intel"
)

// prefixLookup is a feed lookup over plain prefix lists, one per feed.
func prefixLookup(feeds ...[]string) func(netip.Addr) (int, bool) {
	ps := make([][]netip.Prefix, len(feeds))
	for i, f := range feeds {
		for _, s := range f {
			ps[i] = append(ps[i], netip.MustParsePrefix(s))
		}
	}
	return func(a netip.Addr) (int, bool) {
		for i, f := range ps {
			for _, p := range f {
				if p.Contains(a) {
					return i, true
				}
			}
		}
		return 0, false
	}
}

// TestFeedGuard: a listed client is refused by its first feed's action;
// a drop closes a direct client's connection but answers 403 through a
// trusted proxy; exempt and unlisted clients pass.
func TestFeedGuard(t *testing.T) {
	t.Parallel()
	var table atomic.Pointer[FeedTable]
	blocks := []*atomic.Uint64{new(atomic.Uint64), new(atomic.Uint64)}
	exempt := netip.MustParsePrefix("198.51.100.7/32")
	guard, err := FeedGuard(FeedGuardConfig{
		Table:  &table,
		Exempt: func(a netip.Addr) bool { return exempt.Contains(a) || netip.MustParsePrefix("10.0.0.0/8").Contains(a) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ip, err := ClientIP(ClientIPConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	var reached bool
	h := WithScope(ip(guard(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))))
	do := func(remote, xff string) (status int, aborted bool) {
		reached = false
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		w := httptest.NewRecorder()
		func() {
			defer func() {
				if v := recover(); v != nil {
					if err, ok := v.(error); !ok || !errors.Is(err, http.ErrAbortHandler) {
						panic(v)
					}
					aborted = true
				}
			}()
			h.ServeHTTP(w, r)
		}()
		return w.Code, aborted
	}

	if code, aborted := do("198.51.100.9:1000", ""); code != 200 || aborted || !reached {
		t.Fatalf("no table: status %d, aborted %v, reached %v", code, aborted, reached)
	}
	table.Store(&FeedTable{
		Lookup:  prefixLookup([]string{"198.51.100.0/24"}, []string{"198.51.100.0/25", "203.0.113.0/24", "10.1.0.0/16"}),
		Names:   []string{"drops", "forbids"},
		Actions: []FeedAction{FeedDrop, FeedForbid},
		Blocks:  blocks,
	})
	for _, tc := range []struct {
		name, remote, xff string
		status            int
		aborted, reached  bool
		feed              int
	}{
		{"direct, drop feed", "198.51.100.9:1000", "", 0, true, false, 0},
		{"through a trusted proxy, drop feed", "10.0.0.1:1000", "198.51.100.9", 403, false, false, 0},
		{"direct, 403 feed", "203.0.113.5:1000", "", 403, false, false, 1},
		{"exempt (allow)", "198.51.100.7:1000", "", 200, false, true, -1},
		{"the trusted proxy itself", "10.1.2.3:1000", "", 200, false, true, -1},
		{"unlisted", "198.51.101.1:1000", "", 200, false, true, -1},
		{"unlisted behind a trusted proxy", "10.0.0.1:1000", "198.51.101.1", 200, false, true, -1},
	} {
		before := [2]uint64{blocks[0].Load(), blocks[1].Load()}
		code, aborted := do(tc.remote, tc.xff)
		if aborted != tc.aborted || reached != tc.reached || !aborted && code != tc.status {
			t.Errorf("%s: status %d, aborted %v, reached %v; want %d, %v, %v", tc.name, code, aborted, reached, tc.status, tc.aborted, tc.reached)
		}
		for i, b := range blocks {
			want := before[i]
			if i == tc.feed {
				want++
			}
			if got := b.Load(); got != want {
				t.Errorf("%s: feed %d counts %d blocks, want %d", tc.name, i, got, want)
			}
		}
	}
}

// BenchmarkFeedGuardUnlisted is what every clean request pays with two
// feeds of 100,000 prefixes each configured.
func BenchmarkFeedGuardUnlisted(b *testing.B) {
	sets := make([]*intel.Set, 2)
	for i := range sets {
		ps := make([]netip.Prefix, 0, 100_000)
		for j := range 100_000 {
			n := uint32(1<<24) + uint32(2*j+i)<<8
			ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), 0}), 24))
		}
		sets[i] = intel.NewSet(ps)
	}
	var table atomic.Pointer[FeedTable]
	table.Store(&FeedTable{Lookup: intel.NewIndex(sets).Lookup, Names: []string{"a", "b"}, Actions: []FeedAction{FeedDrop, FeedForbid}})
	guard, err := FeedGuard(FeedGuardConfig{Table: &table, Exempt: func(netip.Addr) bool { return false }})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "198.51.100.7:4000"
	w := httptest.NewRecorder()
	var scoped *http.Request
	ip, err := ClientIP(ClientIPConfig{})
	if err != nil {
		b.Fatal(err)
	}
	WithScope(ip(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { scoped = r }))).ServeHTTP(w, r)
	h := guard(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, scoped)
	}
}
