package middleware

import (
	"net/http"
	"net/http/httptest"
	"testing"
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
