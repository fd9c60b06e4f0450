//go:build !race

package intel

import (
	"math/rand/v2"
	"net/netip"
	"testing"
)

// TestLookupsDoNotAllocate pins the zero-allocation claims of the request
// path: Set.Contains, Index.Lookup and Provider.ClientIP.
func TestLookupsDoNotAllocate(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	ps := benchList(r, 10_000)
	s := NewSet(ps)
	x := NewIndex([]*Set{s, NewSet(benchList(r, 1000))})
	a4, a6 := netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("2001:db8::9")
	cf, _ := ProviderNamed("cloudflare")
	cfr, _ := ProviderNamed("cloudfront")
	for name, fn := range map[string]func(){
		"Set.Contains":     func() { s.Contains(a4); s.Contains(a6); s.Contains(ps[7].Addr()) },
		"Index.Lookup":     func() { x.Lookup(a4); x.Lookup(a6) },
		"ClientIP bare":    func() { cf.ClientIP(" 2001:db8::1 ") },
		"ClientIP address": func() { cfr.ClientIP("2001:db8::1:46532") },
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", name, n)
		}
	}
}
