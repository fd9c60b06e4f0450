package middleware

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// BenchmarkLimit is one named limit checked per request through Limit,
// for a tracked client that passes (the cost every request of a limited
// route pays): client, client+host and header keys, and two limits.
func BenchmarkLimit(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfgs []LimitConfig
	}{
		{"client", []LimitConfig{{Name: "a", Rate: 1e6, Burst: 1e9, NoDelay: true}}},
		{"client+host", []LimitConfig{{Name: "a", Rate: 1e6, Burst: 1e9, NoDelay: true, Key: "client+host"}}},
		{"header", []LimitConfig{{Name: "a", Rate: 1e6, Burst: 1e9, NoDelay: true, Key: "header:X-Api-Key"}}},
		{"two", []LimitConfig{{Name: "a", Rate: 1e6, Burst: 1e9, NoDelay: true}, {Name: "b", Rate: 1e6, Burst: 1e9, NoDelay: true, Key: "client+host"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h, r, w := limitBench(b, bc.cfgs)
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(w, r)
			}
		})
	}
}

// limitBench returns Limit over cfgs in front of an empty handler, and a
// request in a scope, as the chain has it.
func limitBench(tb testing.TB, cfgs []LimitConfig) (http.Handler, *http.Request, http.ResponseWriter) {
	tb.Helper()
	var ls []*Limiter
	for _, c := range cfgs {
		ls = append(ls, mustLimiter(tb, c))
	}
	mw, err := Limit(ls, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("X-Api-Key", "0123456789abcdef0123456789abcdef")
	c := &scopeCtx{Context: r.Context()}
	c.scope.ClientIP = netip.MustParseAddr("198.51.100.7")
	c.scope.RequestHost = "app.example.com"
	r = r.WithContext(c)
	return h, r, httptest.NewRecorder()
}
