package middleware

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gatehouse/rules"
	"gatehouse/rules/match"
)

// chainFor builds scope → client IP → canonical path → mw → a handler that
// records whether it was reached.
func chainFor(t *testing.T, mw func(http.Handler) http.Handler, reached *bool) http.Handler {
	t.Helper()
	ip, err := ClientIP(ClientIPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return WithScope(ip(CanonicalPath(nil)(mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*reached = true
	})))))
}

func TestProbeBlock(t *testing.T) {
	t.Parallel()
	m, err := match.CompileProbes(match.ProbeConfig{Presets: []string{"wordpress", "secrets", "vcs"}, Paths: []string{"/old-admin/"}})
	if err != nil {
		t.Fatal(err)
	}
	jails := newTestJails(t)
	mw, err := ProbeBlock(ProbeBlockConfig{Status: http.StatusNotFound}, m, jails, nil)
	if err != nil {
		t.Fatal(err)
	}
	var reached bool
	h := chainFor(t, mw, &reached)
	tests := []struct {
		path       string
		wantStatus int
	}{
		{"/wp-login.php", 404},
		{"//WP-LOGIN.PHP", 404},
		{"/./.env", 404},
		{"/.env.", 404},
		{"/.git/config", 404},
		{"/old-admin/x", 404},
		{"/%2e%2e/etc/passwd", 400},
		{"/a%2fb", 400},
		{"/index.html", 200},
		{"/.well-known/acme-challenge/token", 200},
	}
	for _, tc := range tests {
		reached = false
		before := jails.Offences(DefaultProbeJail)
		r := httptest.NewRequest("GET", tc.path, nil)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.wantStatus || reached != (tc.wantStatus == 200) {
			t.Errorf("GET %s: status %d, reached %v, want %d", tc.path, w.Code, reached, tc.wantStatus)
		}
		wantOffence := uint64(0)
		if tc.wantStatus == 404 {
			wantOffence = 1
		}
		if got := jails.Offences(DefaultProbeJail) - before; got != wantOffence {
			t.Errorf("GET %s: %d offences, want %d", tc.path, got, wantOffence)
		}
	}
}

func TestProbeBlockConfigErrors(t *testing.T) {
	t.Parallel()
	m, _ := match.CompileProbes(match.ProbeConfig{Presets: []string{"vcs"}})
	if _, err := ProbeBlock(ProbeBlockConfig{Status: 500}, m, newTestJails(t), nil); err == nil || !strings.Contains(err.Error(), "500 is not 403 or 404") {
		t.Errorf("ProbeBlock(status 500) error = %v", err)
	}
}

func TestHotlink(t *testing.T) {
	t.Parallel()
	m, err := match.CompileHotlink(match.HotlinkConfig{Paths: []string{"/videos/", "*.mp4"}, Allow: []string{"none", "example.com", "*.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	jails := newTestJails(t)
	block, err := Hotlink(HotlinkConfig{Jail: "hotlink"}, m, jails, nil)
	if err != nil {
		t.Fatal(err)
	}
	redirect, err := Hotlink(HotlinkConfig{Redirect: "https://example.com/hotlink.png"}, m, jails, nil)
	if err != nil {
		t.Fatal(err)
	}
	var reached bool
	hb, hr := chainFor(t, block, &reached), chainFor(t, redirect, &reached)
	tests := []struct {
		name, path string
		referer    []string
		want       int
	}{
		{name: "no referer allowed", path: "/videos/a.mp4", want: 200},
		{name: "own site", path: "/videos/a.mp4", referer: []string{"https://example.com/page"}, want: 200},
		{name: "subdomain", path: "/x/b.MP4", referer: []string{"https://www.example.com/"}, want: 200},
		{name: "other site", path: "/videos/a.mp4", referer: []string{"https://evil.test/"}, want: 403},
		{name: "userinfo trick", path: "/videos/a.mp4", referer: []string{"https://example.com@evil.test/"}, want: 403},
		{name: "suffix trick", path: "/videos/a.mp4", referer: []string{"https://example.com.evil.test/"}, want: 403},
		{name: "two referers", path: "/videos/a.mp4", referer: []string{"https://example.com/", "https://evil.test/"}, want: 403},
		{name: "unprotected path", path: "/page.html", referer: []string{"https://evil.test/"}, want: 200},
		// The canonical path (/page.html) is not protected, the raw one the
		// upstream receives is.
		{name: "raw path protected", path: "/videos/../page.html", referer: []string{"https://evil.test/"}, want: 403},
	}
	for _, tc := range tests {
		for _, redir := range []bool{false, true} {
			reached = false
			r := httptest.NewRequest("GET", tc.path, nil)
			r.Header["Referer"] = tc.referer
			w := httptest.NewRecorder()
			h, want := hb, tc.want
			if redir {
				h = hr
				if want == 403 {
					want = 302
				}
			}
			h.ServeHTTP(w, r)
			if w.Code != want || reached != (want == 200) {
				t.Errorf("%s (redirect %v): status %d, reached %v, want %d", tc.name, redir, w.Code, reached, want)
			}
			if want == 302 && w.Header().Get("Location") != "https://example.com/hotlink.png" {
				t.Errorf("%s: Location = %q", tc.name, w.Header().Get("Location"))
			}
		}
	}
	if got := jails.Offences("hotlink"); got != 5 {
		t.Errorf("hotlink offences = %d, want 5 (only the blocking middleware reports)", got)
	}
}

// newTestJails returns jails with no jail configured: offences are
// counted, nobody is banned.
func newTestJails(tb testing.TB) *rules.Jails {
	tb.Helper()
	j, err := rules.NewJails(rules.JailsConfig{}, nil, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return j
}
