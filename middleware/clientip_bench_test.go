package middleware

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"gatehouse/rules/intel"
)

func BenchmarkResolve(b *testing.B) {
	res := mustResolver(b, "10.0.0.0/8", "192.168.0.0/16")
	cases := []struct {
		name   string
		remote string
		xff    []string
	}{
		{"direct", "203.0.113.9:51234", nil},
		{"trusted-1hop", "10.0.0.1:51234", []string{"198.51.100.1"}},
		{"trusted-3hops", "10.0.0.1:51234", []string{"198.51.100.1, 192.168.1.1, 10.0.0.2"}},
		{"v6-direct", "[2001:db8::1]:443", nil},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res.Resolve(c.remote, c.xff)
			}
		})
	}
}

func BenchmarkClientIPMiddleware(b *testing.B) {
	mw := ClientIPFrom(mustResolver(b, "10.0.0.0/8"))
	var sink Scope
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { sink = *ScopeFrom(r) }))
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.1:1234"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	r = r.WithContext(&scopeCtx{Context: r.Context()})
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
	_ = sink
}

// BenchmarkResolveHeader resolves with the three providers' real ranges
// (the snapshots in the binary) and a 10k-prefix list trusted.
func BenchmarkResolveHeader(b *testing.B) {
	cfg := ClientIPConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	for _, name := range intel.ProviderNames() {
		p := mustProvider(b, name)
		set, err := p.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		cfg.Sets = append(cfg.Sets, TrustedSet{Name: name, Ranges: set, Provider: p})
	}
	var big []netip.Prefix
	for i := range 10000 {
		big = append(big, netip.PrefixFrom(netip.AddrFrom4([4]byte{100, byte(64 + i>>8), byte(i), 0}), 24))
	}
	cfg.Sets = append(cfg.Sets, TrustedSet{Name: "url:list", Ranges: intel.NewSet(big)})
	res, err := NewClientIPResolver(cfg)
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name   string
		remote string
		h      http.Header
	}{
		{"direct", "203.0.113.9:51234", http.Header{"Cf-Connecting-Ip": {"198.51.100.1"}}},
		{"cloudflare-header", "103.21.244.5:51234", http.Header{"Cf-Connecting-Ip": {"198.51.100.1"}, "X-Forwarded-For": {"198.51.100.1"}}},
		{"cloudfront-header", "[2600:9000:2000::1]:443", http.Header{"Cloudfront-Viewer-Address": {"2001:db8::1:51234"}}},
		{"list-1hop", "100.64.3.7:51234", http.Header{"X-Forwarded-For": {"198.51.100.1"}}},
		{"trusted-3hops", "10.0.0.1:51234", http.Header{"X-Forwarded-For": {"198.51.100.1, 100.64.1.1, 10.0.0.2"}}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				res.ResolveHeader(c.remote, c.h)
			}
		})
	}
}
