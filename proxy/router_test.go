package proxy

import (
	"testing"

	"gatehouse/proxy/config"
)

func testRouter(t *testing.T, hosts ...[]string) *router {
	t.Helper()
	rt := newRouter()
	for _, names := range hosts {
		r := &route{name: names[0]}
		for _, n := range names {
			p, err := config.ParseHostPattern(n)
			if err != nil {
				t.Fatal(err)
			}
			if p.Wildcard() {
				rt.wildcard[p.Name()] = r
			} else {
				rt.exact[p.Name()] = r
			}
		}
	}
	return rt
}

func TestRouterLookup(t *testing.T) {
	t.Parallel()
	rt := testRouter(t,
		[]string{"app.example.com", "www.example.com"},
		[]string{"*.example.com"},
		[]string{"*.eu.example.com"},
		[]string{"special.eu.example.com"},
		[]string{"127.0.0.1"},
		[]string{"2001:db8::1"},
	)
	tests := []struct {
		host string
		want string // route name, "" for none
	}{
		{"app.example.com", "app.example.com"},
		{"www.example.com", "app.example.com"},
		{"APP.Example.COM", "app.example.com"},
		{"app.example.com.", "app.example.com"},
		{"app.example.com:8443", "app.example.com"},
		{"app.example.com.:80", "app.example.com"},
		{"other.example.com", "*.example.com"},
		{"a.b.example.com", "*.example.com"},
		{"x.eu.example.com", "*.eu.example.com"},
		{"special.eu.example.com", "special.eu.example.com"},
		{"example.com", ""},
		{"app.example.com..", ""},
		{"evil-example.com", ""},
		{"example.com.evil.test", ""},
		{"", ""},
		{":80", ""},
		{"127.0.0.1:8080", "127.0.0.1"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"[2001:DB8::1]", "2001:db8::1"},
		{"2001:db8::1", ""},
		{"[2001:db8::1", ""},
	}
	for _, tc := range tests {
		got := ""
		if r := rt.lookup(tc.host); r != nil {
			got = r.name
		}
		if got != tc.want {
			t.Errorf("lookup(%q) = %q, want %q", tc.host, got, tc.want)
		}
	}
}

func BenchmarkRouterLookup(b *testing.B) {
	rt := newRouter()
	r := &route{name: "x"}
	for _, n := range []string{"a.example.com", "b.example.com", "c.example.com"} {
		rt.exact[n] = r
	}
	rt.wildcard["example.org"] = r
	for _, host := range []string{"b.example.com", "B.Example.com:8080", "x.y.example.org"} {
		b.Run(host, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if rt.lookup(host) == nil {
					b.Fatal("no route")
				}
			}
		})
	}
}

// routes returns the distinct routes, for tests and benchmarks.
func (rt *router) routes() []*route {
	seen := map[*route]bool{}
	var out []*route
	for _, m := range []map[string]*route{rt.exact, rt.wildcard} {
		for _, r := range m {
			if !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	return out
}
