package middleware

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gatehouse/rules/match"
	"gatehouse/signer"
)

var (
	linkKeyNew = []byte("new-link-key-0123456789abcdef012")
	linkKeyOld = []byte("old-link-key-0123456789abcdef012")
)

// scoped runs h with the Scope fields SignedLinks reads filled in as
// ClientIP and Hygiene would: client IP, canonical path, request host.
func scoped(client string, h http.Handler) http.Handler {
	return WithScope(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := ScopeFrom(r)
		s.ClientIP = netip.MustParseAddr(client)
		c, err := match.Canonical(match.RequestPath(r.RequestURI))
		if err != nil {
			PlainStatus(w, http.StatusBadRequest)
			return
		}
		s.Path = c
		s.RequestHost, _, _ = CanonicalHost(r.Host)
		h.ServeHTTP(w, r)
	}))
}

// seen records what reached the upstream side of the middleware.
type seen struct {
	uri, query string
	hits       int
}

func (s *seen) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.hits++
	s.uri, s.query = r.RequestURI, r.URL.RawQuery
	w.WriteHeader(http.StatusOK)
}

func TestSignedLinks(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_900_000_000, 0)
	clock := func() time.Time { return now }
	signing, err := signer.NewLinks(signer.LinkConfig{Keys: [][]byte{linkKeyOld}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	// The gateway verifies with the rotated key list: new first, old kept.
	verifying, err := signer.NewLinks(signer.LinkConfig{Keys: [][]byte{linkKeyNew, linkKeyOld}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	mw, err := SignedLinks(SignedLinksConfig{Paths: []string{"/paid/"}}, verifying, nil)
	if err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddr("203.0.113.7")
	link := func(l *signer.Links, path string, exp time.Time, ip netip.Addr) string {
		return l.Sign("GET", "media.example.com", path, "", exp, ip)
	}
	valid := link(signing, "/paid/a.mp4", now.Add(time.Hour), netip.Addr{})
	rotated := link(verifying, "/paid/a.mp4", now.Add(time.Hour), netip.Addr{})
	bound := link(verifying, "/paid/a.mp4", now.Add(time.Hour), client)
	expired := link(verifying, "/paid/a.mp4", now, netip.Addr{})
	withQuery := verifying.Sign("GET", "media.example.com", "/paid/a.mp4", "t=10&q=hd", now.Add(time.Hour), netip.Addr{})
	head := verifying.Sign("HEAD", "media.example.com", "/paid/a.mp4", "", now.Add(time.Hour), netip.Addr{})
	farFuture := link(verifying, "/paid/a.mp4", now.Add(10*365*24*time.Hour), netip.Addr{})
	escaped := link(verifying, "/paid/caf%C3%A9.mp4", now.Add(time.Hour), netip.Addr{})
	tests := []struct {
		name      string
		method    string
		host      string
		target    string
		client    string
		want      int
		wantURI   string // what the upstream side received
		wantQuery string
	}{
		{name: "valid, old key", target: "/paid/a.mp4?" + valid, want: 200, wantURI: "/paid/a.mp4"},
		{name: "valid, new key", target: "/paid/a.mp4?" + rotated, want: 200, wantURI: "/paid/a.mp4"},
		{name: "valid, signed query kept", target: "/paid/a.mp4?t=10&q=hd&" + withQuery, want: 200, wantURI: "/paid/a.mp4?t=10&q=hd", wantQuery: "t=10&q=hd"},
		{name: "valid, link parameters amid the signed query", target: "/paid/a.mp4?t=10&" + withQuery + "&q=hd", want: 200, wantURI: "/paid/a.mp4?t=10&q=hd", wantQuery: "t=10&q=hd"},
		{name: "valid, escaped path", target: "/paid/caf%C3%A9.mp4?" + escaped, want: 200, wantURI: "/paid/caf%C3%A9.mp4"},
		{name: "host with port and case", host: "Media.Example.com:8080", target: "/paid/a.mp4?" + valid, want: 200, wantURI: "/paid/a.mp4"},
		{name: "HEAD for a GET link", method: "HEAD", target: "/paid/a.mp4?" + valid, want: 200, wantURI: "/paid/a.mp4"},
		{name: "HEAD for a HEAD link", method: "HEAD", target: "/paid/a.mp4?" + head, want: 200, wantURI: "/paid/a.mp4"},
		{name: "GET for a HEAD link", target: "/paid/a.mp4?" + head, want: 403},
		{name: "query added to a link", target: "/paid/a.mp4?id=2&admin=1&" + valid, want: 403},
		{name: "signed query changed", target: "/paid/a.mp4?t=10&q=sd&" + withQuery, want: 403},
		{name: "signed query dropped", target: "/paid/a.mp4?" + withQuery, want: 403},
		{name: "raw path, needless escape", target: "/paid/%61.mp4?" + valid, want: 403},
		{name: "raw path, double slash", target: "/paid//a.mp4?" + valid, want: 403},
		{name: "raw path, dot segment", target: "/paid/./a.mp4?" + valid, want: 403},
		{name: "raw path, path parameter", target: "/paid/a.mp4;v=1?" + valid, want: 403},
		{name: "raw path, escape case", target: "/paid/caf%c3%a9.mp4?" + escaped, want: 403},
		{name: "expiry beyond max_expires", target: "/paid/a.mp4?" + farFuture, want: 403},
		{name: "bound, right client", target: "/paid/a.mp4?" + bound, want: 200, wantURI: "/paid/a.mp4"},
		{name: "unprotected path untouched", target: "/free/a.mp4?gh_signature=x", want: 200, wantURI: "/free/a.mp4?gh_signature=x", wantQuery: "gh_signature=x"},
		{name: "missing", target: "/paid/a.mp4", want: 403},
		{name: "missing, query", target: "/paid/a.mp4?t=10", want: 403},
		{name: "expired", target: "/paid/a.mp4?" + expired, want: 403},
		{name: "tampered expiry", target: "/paid/a.mp4?" + strings.Replace(valid, "gh_expires=19", "gh_expires=29", 1), want: 403},
		{name: "other path", target: "/paid/b.mp4?" + valid, want: 403},
		{name: "other path by dot segment", target: "/paid/x/../b.mp4?" + valid, want: 403},
		{name: "path case", target: "/PAID/a.mp4?" + valid, want: 403},
		{name: "double slash still protected", target: "//paid/b.mp4", want: 403},
		{name: "other host", host: "cdn.example.com", target: "/paid/a.mp4?" + valid, want: 403},
		{name: "other method", method: "POST", target: "/paid/a.mp4?" + valid, want: 403},
		{name: "bound, wrong client", client: "203.0.113.8", target: "/paid/a.mp4?" + bound, want: 403},
		{name: "binding stripped", target: "/paid/a.mp4?" + strings.Replace(bound, "gh_ip=1&", "", 1), want: 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method, host, c := tc.method, tc.host, tc.client
			if method == "" {
				method = "GET"
			}
			if host == "" {
				host = "media.example.com"
			}
			if c == "" {
				c = client.String()
			}
			up := &seen{}
			r := httptest.NewRequest(method, "http://"+host+tc.target, nil)
			r.RequestURI = tc.target
			w := httptest.NewRecorder()
			// The access log holds the request the chain passes down; see
			// what that request says once the middleware has run.
			scoped(c, http.HandlerFunc(func(w http.ResponseWriter, sr *http.Request) {
				r = sr
				mw(up).ServeHTTP(w, sr)
			})).ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Fatalf("%s %s = %d, want %d", method, tc.target, w.Code, tc.want)
			}
			if tc.want != 200 {
				if up.hits != 0 {
					t.Errorf("refused request reached the upstream")
				}
				if strings.Contains(r.RequestURI, "gh_") || strings.Contains(r.URL.RawQuery, "gh_") {
					t.Errorf("refused request keeps the link parameters for the access log: %q", r.RequestURI)
				}
				return
			}
			if up.uri != tc.wantURI || up.query != tc.wantQuery {
				t.Errorf("upstream got %q (query %q), want %q (query %q)", up.uri, up.query, tc.wantURI, tc.wantQuery)
			}
		})
	}
}

func TestSignedLinksConfig(t *testing.T) {
	t.Parallel()
	l, err := signer.NewLinks(signer.LinkConfig{Keys: [][]byte{linkKeyNew}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		cfg     SignedLinksConfig
		links   *signer.Links
		wantErr string
	}{
		{name: "no signer", cfg: SignedLinksConfig{Paths: []string{"/paid/"}}, wantErr: "no signer"},
		{name: "no paths", cfg: SignedLinksConfig{}, links: l, wantErr: "no protected paths"},
		{name: "relative path", cfg: SignedLinksConfig{Paths: []string{"paid/"}}, links: l, wantErr: `"paid/" must start with /`},
	} {
		if _, err := SignedLinks(tc.cfg, tc.links, nil); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: SignedLinks = %v, want error containing %q", tc.name, err, tc.wantErr)
		}
	}
}

// BenchmarkSignedLinks measures the middleware on a valid link (the
// signature check and the query rewrite) and on an unprotected path.
func BenchmarkSignedLinks(b *testing.B) {
	now := time.Unix(1_900_000_000, 0)
	l, err := signer.NewLinks(signer.LinkConfig{Keys: [][]byte{linkKeyNew, linkKeyOld}, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	mw, err := SignedLinks(SignedLinksConfig{Paths: []string{"/paid/"}}, l, nil)
	if err != nil {
		b.Fatal(err)
	}
	q := l.Sign("GET", "media.example.com", "/paid/videos/e01.mp4", "", now.Add(time.Hour), netip.Addr{})
	for _, bc := range []struct{ name, target string }{
		{"valid", "/paid/videos/e01.mp4?" + q},
		{"unprotected", "/free/videos/e01.mp4"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
			r := httptest.NewRequest("GET", "http://media.example.com"+bc.target, nil)
			c, err := match.Canonical(match.RequestPath(bc.target))
			if err != nil {
				b.Fatal(err)
			}
			rawQuery := r.URL.RawQuery
			ctx := &scopeCtx{Context: r.Context()}
			ctx.scope.ClientIP = netip.MustParseAddr("203.0.113.7")
			ctx.scope.Path = c
			ctx.scope.RequestHost = "media.example.com"
			r = r.WithContext(ctx)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				r.URL.RawQuery, r.RequestURI = rawQuery, bc.target
				h.ServeHTTP(w, r)
			}
		})
	}
}
