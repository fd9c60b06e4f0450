package ui

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gatehouse/rules"

	"golang.org/x/net/html"
)

// testTokens are the admin tokens of the handler tests.
var testTokens = map[string]Principal{
	"view-token": {Name: "viewer", Scopes: []string{"ui"}},
	"ops-token":  {Name: "ops", Scopes: []string{"bans:read", "bans:write"}},
	"read-token": {Name: "reader", Scopes: []string{"bans:read"}},
}

// lockedBuffer is an io.Writer safe for concurrent use: the audit log.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fixture is a dashboard over a real ban list and Stats, with actions
// that ban and unban on that list as the admin API would.
type fixture struct {
	h     *Handler
	bans  *rules.BanList
	stats *Stats
	audit *lockedBuffer
	// revoked tokens stop authenticating.
	mu      sync.Mutex
	revoked map[string]bool
}

func newFixture(t testing.TB, listen string, bans *rules.BanList) *fixture {
	t.Helper()
	if bans == nil {
		bans = rules.NewBanList(rules.BanListConfig{Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	}
	f := &fixture{bans: bans, stats: NewStats(StatsConfig{}), audit: &lockedBuffer{}, revoked: map[string]bool{}}
	h, err := New(Config{
		Listen: listen,
		Bans:   bans,
		Stats:  f.stats,
		Authenticate: func(token string) (Principal, bool) {
			f.mu.Lock()
			defer f.mu.Unlock()
			p, ok := testTokens[token]
			return p, ok && !f.revoked[token]
		},
		Ban: func(target, duration, reason string) (rules.Ban, error) {
			p, err := netip.ParsePrefix(target)
			if err != nil {
				a, err := netip.ParseAddr(target)
				if err != nil {
					return rules.Ban{}, fmt.Errorf("%q is not an address or CIDR prefix", target)
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			d := time.Hour
			if duration != "" {
				if d, err = time.ParseDuration(duration); err != nil {
					return rules.Ban{}, err
				}
			}
			return bans.Ban(rules.Ban{Prefix: p, Reason: reason, Until: time.Now().Add(d)})
		},
		Unban: func(target string) error {
			p, err := netip.ParsePrefix(target)
			if err != nil {
				a, err := netip.ParseAddr(target)
				if err != nil {
					return err
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			if !bans.Unban(p) {
				return errors.New("no ban for " + p.String())
			}
			return nil
		},
		Jails: func() []string { return []string{"auth", "probes"} },
		Watch: func() []WatchSource {
			return []WatchSource{{Name: "sshd", Jail: "sshd", Reads: `/var/log/<script>alert(1)</script>"><img src=x onerror=alert(2)>.log`, Lines: 1200, Offences: 37, Lag: 1}}
		},
		Intel: func() []IntelList {
			return []IntelList{
				{Kind: "feed", Name: "firehol1", Source: `https://feeds.example/<script>alert(3)</script>`, Action: "drop", Entries: 4521, Updated: time.Now().Add(-2 * time.Hour), Blocks: 93},
				{Kind: "feed", Name: "local", Source: "/etc/gatehouse/blocked.txt", Action: "403", LastError: "open /etc/gatehouse/blocked.txt: permission denied"},
			}
		},
		GeoBlocks: func() []GeoBlock {
			return []GeoBlock{{Kind: "asn", Value: "64500", Count: 7}, {Kind: "country", Value: "unknown", Count: 2}, {Kind: "country", Value: "RU", Count: 41}}
		},
		Audit: slog.New(slog.NewTextHandler(f.audit, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	return f
}

func (f *fixture) revoke(token string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked[token] = true
}

// client is one browser: its cookies and the Host and connection it
// sends requests on.
type client struct {
	f       *fixture
	host    string
	local   string // the address the connection arrived on
	tls     bool
	cookies map[string]string
	header  http.Header // extra request headers
}

func (f *fixture) client() *client {
	return &client{f: f, host: "127.0.0.1:9901", local: "127.0.0.1:9901", cookies: map[string]string{}, header: http.Header{}}
}

// do serves one request through the handler, keeping the cookies it sets.
func (c *client) do(t testing.TB, method, target string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	r.Host = c.host
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range c.header {
		r.Header[k] = v
	}
	if c.local != "" {
		la, err := net.ResolveTCPAddr("tcp", c.local)
		if err != nil {
			t.Fatal(err)
		}
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, la))
	}
	if c.tls {
		r.TLS = &tls.ConnectionState{}
	}
	for name, v := range c.cookies {
		r.AddCookie(&http.Cookie{Name: name, Value: v})
	}
	w := httptest.NewRecorder()
	c.f.h.ServeHTTP(w, r)
	for _, ck := range w.Result().Cookies() {
		if ck.MaxAge < 0 {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck.Value
		}
	}
	return w
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf returns the form token of a rendered page.
func csrfOf(t testing.TB, body string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in page:\n%s", body)
	}
	return m[1]
}

// signIn signs c in with token and returns the session's form token.
func (c *client) signIn(t testing.TB, token string) string {
	t.Helper()
	w := c.do(t, http.MethodGet, "/ui/login", nil)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /ui/login = %d, want 200", w.Code)
	}
	w = c.do(t, http.MethodPost, "/ui/login", url.Values{"csrf": {csrfOf(t, w.Body.String())}, "token": {token}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/ui/" {
		t.Fatalf("POST /ui/login with %s = %d to %q, want 303 to /ui/\n%s", token, w.Code, w.Header().Get("Location"), w.Body)
	}
	w = c.do(t, http.MethodGet, "/ui/bans", nil)
	if w.Code != http.StatusOK {
		t.Fatalf("GET /ui/bans after sign-in = %d, want 200", w.Code)
	}
	return csrfOf(t, w.Body.String())
}

func TestHostCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, listen, local, host string
		want                      int
	}{
		{"configured address", "127.0.0.1:9901", "127.0.0.1:9901", "127.0.0.1:9901", http.StatusSeeOther},
		{"configured address, other port (tunnel)", "127.0.0.1:9901", "127.0.0.1:9901", "127.0.0.1:8080", http.StatusSeeOther},
		{"localhost on loopback", "127.0.0.1:9901", "127.0.0.1:9901", "localhost:9901", http.StatusSeeOther},
		{"localhost with trailing dot", "127.0.0.1:9901", "127.0.0.1:9901", "LOCALHOST.:9901", http.StatusSeeOther},
		{"rebinding name", "127.0.0.1:9901", "127.0.0.1:9901", "rebind.attacker.example:9901", http.StatusMisdirectedRequest},
		{"rebinding name to loopback", "127.0.0.1:9901", "127.0.0.1:9901", "127.0.0.1.nip.io:9901", http.StatusMisdirectedRequest},
		{"subdomain of localhost", "127.0.0.1:9901", "127.0.0.1:9901", "evil.localhost:9901", http.StatusMisdirectedRequest},
		{"other address", "127.0.0.1:9901", "127.0.0.1:9901", "198.51.100.1:9901", http.StatusMisdirectedRequest},
		{"empty host", "127.0.0.1:9901", "127.0.0.1:9901", "", http.StatusMisdirectedRequest},
		{"wildcard listen, arrival address", "0.0.0.0:9901", "10.1.2.3:9901", "10.1.2.3:9901", http.StatusSeeOther},
		{"wildcard listen, other address", "0.0.0.0:9901", "10.1.2.3:9901", "10.9.9.9:9901", http.StatusMisdirectedRequest},
		{"wildcard listen, localhost off loopback", ":9901", "10.1.2.3:9901", "localhost:9901", http.StatusMisdirectedRequest},
		{"wildcard listen, name", ":9901", "10.1.2.3:9901", "admin.example.com:9901", http.StatusMisdirectedRequest},
		{"IPv6 loopback", "[::1]:9901", "[::1]:9901", "[::1]:9901", http.StatusSeeOther},
		{"IPv6 without port", "[::1]:9901", "[::1]:9901", "[::1]", http.StatusSeeOther},
		{"configured name", "admin.example.com:9901", "10.1.2.3:9901", "Admin.Example.com.:9901", http.StatusSeeOther},
		{"configured name, other name", "admin.example.com:9901", "10.1.2.3:9901", "admin.example.com.attacker.example", http.StatusMisdirectedRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tc.listen, nil)
			c := f.client()
			c.host, c.local = tc.host, tc.local
			w := c.do(t, http.MethodGet, "/ui/", nil)
			if w.Code != tc.want {
				t.Fatalf("GET /ui/ with Host %q (listen %s, arrived on %s) = %d, want %d", tc.host, tc.listen, tc.local, w.Code, tc.want)
			}
			if w.Header().Get("Content-Security-Policy") != contentSecurityPolicy || w.Header().Get("X-Frame-Options") != "DENY" {
				t.Errorf("%d answer lacks the security headers: %v", w.Code, w.Header())
			}
		})
	}
}

// TestHostCheckNames: admin.names admit their names and addresses (a
// wildcard listener reached by name, or through a NAT'd address), and
// nothing that merely contains them.
func TestHostCheckNames(t *testing.T) {
	t.Parallel()
	hc := NewHostCheck("0.0.0.0:9901", []string{"Admin.Example.NET.", "203.0.113.9", "[2001:db8::9]"})
	for _, tc := range []struct {
		name, host string
		want       bool
	}{
		{"configured name", "admin.example.net:9901", true},
		{"configured name, case and dot", "ADMIN.example.net.", true},
		{"configured address", "203.0.113.9:443", true},
		{"configured IPv6 address", "[2001:db8::9]:9901", true},
		{"arrival address", "10.1.2.3:9901", true},
		{"suffix of a name", "evil-admin.example.net", false},
		{"name under a name", "x.admin.example.net", false},
		{"wildcard address itself", "0.0.0.0:9901", false},
		{"localhost off loopback", "localhost:9901", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			r.Host = tc.host
			la := &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 9901}
			r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, la))
			if got := hc.Allowed(r); got != tc.want {
				t.Errorf("Allowed(Host %q) = %v, want %v", tc.host, got, tc.want)
			}
		})
	}
}

// TestHostCheckBeforeSession: a rebinding page cannot use a session
// cookie either; it gets 421 before the cookie is read.
func TestHostCheckBeforeSession(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "127.0.0.1:9901", nil)
	c := f.client()
	csrf := c.signIn(t, "ops-token")
	c.host = "rebind.attacker.example:9901"
	for _, tc := range []struct{ method, path string }{{"GET", "/ui/bans"}, {"GET", "/ui/events?page=bans"}, {"POST", "/ui/bans/add"}} {
		var form url.Values
		if tc.method == "POST" {
			form = url.Values{"csrf": {csrf}, "ip": {"203.0.113.9"}}
		}
		if w := c.do(t, tc.method, tc.path, form); w.Code != http.StatusMisdirectedRequest {
			t.Errorf("%s %s from a rebinding page = %d, want 421", tc.method, tc.path, w.Code)
		}
	}
	if _, banned := f.bans.Lookup(netip.MustParseAddr("203.0.113.9")); banned {
		t.Error("a rebinding page's form banned 203.0.113.9")
	}
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "127.0.0.1:9901", nil)
	c := f.client()
	c.signIn(t, "ops-token")
	for _, path := range []string{"/ui/login", "/ui/", "/ui/bans", "/ui/offences", "/ui/system", "/ui/nope", "/ui/static/app.js", "/ui/static/app.css"} {
		w := c.do(t, http.MethodGet, path, nil)
		h := w.Header()
		for name, want := range map[string]string{
			"Content-Security-Policy": contentSecurityPolicy,
			"X-Frame-Options":         "DENY",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"Cache-Control":           "",
		} {
			got := h.Get(name)
			if (want == "" && got == "") || (want != "" && got != want) {
				t.Errorf("GET %s: %s = %q, want %q", path, name, got, want)
			}
		}
	}
	// The policy admits no inline script or style and no other origin.
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*", "http:", "https:", "data:"} {
		if strings.Contains(contentSecurityPolicy, bad) {
			t.Errorf("Content-Security-Policy contains %q", bad)
		}
	}
	for _, want := range []string{"script-src 'self'", "frame-ancestors 'none'", "default-src 'none'", "form-action 'self'"} {
		if !strings.Contains(contentSecurityPolicy, want) {
			t.Errorf("Content-Security-Policy lacks %q", want)
		}
	}
	if ct := c.do(t, http.MethodGet, "/ui/static/app.js", nil).Header().Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
		t.Errorf("app.js Content-Type = %q", ct)
	}
}

// blockedMarkup returns what in an HTML page the Content-Security-Policy
// would block, so a page needing it would break, and what hostile text
// would have become had it not been escaped: inline script, event
// handler and style attributes, style elements, javascript: URLs, and
// img elements (the pages have none).
func blockedMarkup(page string) []string {
	var found []string
	z := html.NewTokenizer(strings.NewReader(page))
	inScript := false
	for {
		switch z.Next() {
		case html.ErrorToken:
			return found
		case html.TextToken:
			if inScript && strings.TrimSpace(string(z.Text())) != "" {
				found = append(found, "inline script "+string(z.Text()))
			}
		case html.EndTagToken:
			inScript = false
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			hasSrc := false
			for _, a := range tok.Attr {
				switch {
				case strings.HasPrefix(a.Key, "on"), a.Key == "style":
					found = append(found, tok.Data+" "+a.Key+"="+a.Val)
				case strings.HasPrefix(strings.TrimSpace(strings.ToLower(a.Val)), "javascript:"):
					found = append(found, tok.Data+" "+a.Key+"="+a.Val)
				case a.Key == "src":
					hasSrc = true
				}
			}
			switch tok.Data {
			case "script":
				inScript = true
				if !hasSrc {
					found = append(found, "script without src")
				}
			case "style", "img", "iframe", "object", "embed":
				found = append(found, tok.Data+" element")
			}
		}
	}
}

// TestPagesNeedNoInlineCode renders every page, with hostile data on it,
// and checks it holds nothing the CSP blocks and shows the data escaped.
func TestPagesNeedNoInlineCode(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "127.0.0.1:9901", nil)
	hostile := `<script>alert(1)</script>"><img src=x onerror=alert(2)>`
	now := time.Now()
	f.stats.Report(Offence{Time: now, ClientIP: netip.MustParseAddr("203.0.113.5"), Host: hostile, Method: "GET",
		Path: "/old-admin/" + hostile, UserAgent: "Mozilla/5.0 " + hostile, Rule: "probe /old-admin/"})
	f.stats.file(<-f.stats.queue)
	if _, err := f.bans.Ban(rules.Ban{Prefix: netip.MustParsePrefix("203.0.113.5/32"), Jail: "probes", Reason: hostile, Until: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	c := f.client()
	c.signIn(t, "ops-token")
	for _, path := range []string{"/ui/login", "/ui/", "/ui/bans", "/ui/bans?q=" + url.QueryEscape(hostile), "/ui/offences", "/ui/system", "/ui/nope"} {
		body := c.do(t, http.MethodGet, path, nil).Body.String()
		if found := blockedMarkup(body); len(found) > 0 {
			t.Errorf("GET %s: page holds %q", path, found)
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
			t.Errorf("GET %s: hostile text unescaped:\n%s", path, body)
		}
	}
	if body := c.do(t, http.MethodGet, "/ui/", nil).Body.String(); !strings.Contains(body, "<h2>Watch sources</h2>") || !strings.Contains(body, `<td class="num">37</td>`) {
		t.Errorf("GET /ui/ does not show the watch sources:\n%s", body)
	}
	if body := c.do(t, http.MethodGet, "/ui/system", nil).Body.String(); !strings.Contains(body, "<h2>Feeds and trusted-proxy lists</h2>") ||
		!strings.Contains(body, `<td class="num">4521</td><td>1h59m ago</td><td class="num">93</td>`) && !strings.Contains(body, `<td class="num">4521</td><td>2h0m ago</td><td class="num">93</td>`) ||
		!strings.Contains(body, `<tr class="bad"><td>local</td>`) || !strings.Contains(body, "&lt;script&gt;alert(3)&lt;/script&gt;") {
		t.Errorf("GET /ui/system does not show the feeds:\n%s", body)
	}
	if body := c.do(t, http.MethodGet, "/ui/system", nil).Body.String(); !regexp.MustCompile(`(?s)<td>country</td><td>RU</td><td class="num">41</td>.*<td>asn</td><td>64500</td><td class="num">7</td>.*<td>unknown</td>`).MatchString(body) {
		t.Errorf("GET /ui/system does not show the geo blocks, most first:\n%s", body)
	}
	for _, path := range []string{"/ui/offences", "/ui/bans", "/ui/"} {
		body := c.do(t, http.MethodGet, path, nil).Body.String()
		if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(2)&gt;") {
			t.Errorf("GET %s does not show the hostile text escaped:\n%s", path, body)
		}
	}
	// The login page's script tag itself is a served file.
	if body := c.do(t, http.MethodGet, "/ui/", nil).Body.String(); !strings.Contains(body, `<script src="/ui/static/app.js" defer></script>`) {
		t.Errorf("overview does not load app.js")
	}
}

func TestSessionCookieFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		tls        bool
		cookie     string
		wantSecure bool
	}{
		{"plain HTTP", false, sessionCookie, false},
		{"TLS", true, secureSessionCookie, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, "127.0.0.1:9901", nil)
			c := f.client()
			c.tls = tc.tls
			w := c.do(t, http.MethodGet, "/ui/login", nil)
			w = c.do(t, http.MethodPost, "/ui/login", url.Values{"csrf": {csrfOf(t, w.Body.String())}, "token": {"view-token"}})
			var got *http.Cookie
			for _, ck := range w.Result().Cookies() {
				if ck.Name == tc.cookie {
					got = ck
				}
			}
			if got == nil {
				t.Fatalf("sign-in set no %s cookie: %v", tc.cookie, w.Header()["Set-Cookie"])
			}
			if !got.HttpOnly || got.SameSite != http.SameSiteStrictMode || got.Secure != tc.wantSecure || got.Path != "/" || got.Domain != "" {
				t.Errorf("session cookie = %q, want HttpOnly, SameSite=Strict, Path=/, no Domain, Secure=%v", w.Header()["Set-Cookie"], tc.wantSecure)
			}
			if len(got.Value) < 40 {
				t.Errorf("session id %q is short", got.Value)
			}
			for _, raw := range w.Header()["Set-Cookie"] {
				if strings.Contains(raw, "view-token") {
					t.Errorf("a cookie carries the token: %q", raw)
				}
			}
		})
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "127.0.0.1:9901", nil)
	c := f.client()
	csrf := c.signIn(t, "ops-token")
	other := f.client()
	otherCSRF := other.signIn(t, "ops-token")
	if otherCSRF == csrf {
		t.Fatal("two sessions share a CSRF token")
	}
	target := "203.0.113.20"
	// wrong differs from csrf in its first character, whatever that is
	// (a fixed "x" matched the real token one time in 64).
	wrong := "x" + csrf[1:]
	if csrf[0] == 'x' {
		wrong = "y" + csrf[1:]
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		header map[string]string
		want   int
	}{
		{"missing", url.Values{"ip": {target}}, nil, http.StatusForbidden},
		{"empty", url.Values{"ip": {target}, "csrf": {""}}, nil, http.StatusForbidden},
		{"wrong", url.Values{"ip": {target}, "csrf": {wrong}}, nil, http.StatusForbidden},
		{"another session's", url.Values{"ip": {target}, "csrf": {otherCSRF}}, nil, http.StatusForbidden},
		{"cross-site fetch", url.Values{"ip": {target}, "csrf": {csrf}}, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"foreign origin", url.Values{"ip": {target}, "csrf": {csrf}}, map[string]string{"Origin": "http://attacker.example"}, http.StatusForbidden},
	} {
		c.header = http.Header{}
		for k, v := range tc.header {
			c.header.Set(k, v)
		}
		for _, path := range []string{"/ui/bans/add", "/ui/bans/delete", "/ui/logout"} {
			if w := c.do(t, http.MethodPost, path, tc.form); w.Code != tc.want {
				t.Errorf("%s: POST %s = %d, want %d", tc.name, path, w.Code, tc.want)
			}
		}
	}
	if _, banned := f.bans.Lookup(netip.MustParseAddr(target)); banned {
		t.Fatalf("a refused form banned %s", target)
	}
	if !strings.Contains(f.audit.String(), `msg="ui form refused" token=ops path=/ui/bans/add`) {
		t.Errorf("refused forms are not in the audit log:\n%s", f.audit)
	}

	c.header = http.Header{"Sec-Fetch-Site": {"same-origin"}}
	w := c.do(t, http.MethodPost, "/ui/bans/add", url.Values{"ip": {target}, "csrf": {csrf}, "duration": {"2h"}, "reason": {"csrf test"}, "back": {"https://attacker.example/ui/bans"}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/ui/bans" {
		t.Fatalf("POST /ui/bans/add with the session's token = %d to %q, want 303 to /ui/bans", w.Code, w.Header().Get("Location"))
	}
	b, banned := f.bans.Lookup(netip.MustParseAddr(target))
	if !banned || b.Reason != "csrf test" {
		t.Fatalf("ban form: Lookup(%s) = %+v, %v", target, b, banned)
	}
	page := c.do(t, http.MethodGet, "/ui/bans", nil).Body.String()
	if !strings.Contains(page, "Banned 203.0.113.20 until") {
		t.Errorf("bans page after the form shows no result:\n%s", page)
	}
	if w := c.do(t, http.MethodPost, "/ui/bans/delete", url.Values{"ip": {target}, "csrf": {csrf}, "back": {"/ui/bans?q=203"}}); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/ui/bans?q=203" {
		t.Fatalf("POST /ui/bans/delete = %d to %q, want 303 to /ui/bans?q=203", w.Code, w.Header().Get("Location"))
	}
	if _, banned := f.bans.Lookup(netip.MustParseAddr(target)); banned {
		t.Fatalf("unban form left %s banned", target)
	}
	for _, want := range []string{
		`msg="ui action" token=ops action=ban target=203.0.113.20 duration=2h reason="csrf test"`,
		`msg="ui action" token=ops action=unban target=203.0.113.20`,
	} {
		if !strings.Contains(f.audit.String(), want) {
			t.Errorf("audit log lacks %q:\n%s", want, f.audit)
		}
	}
	// A refused action is shown and audited with its error.
	c.do(t, http.MethodPost, "/ui/bans/add", url.Values{"ip": {"192.0.2.7"}, "csrf": {csrf}})
	if page := c.do(t, http.MethodGet, "/ui/bans", nil).Body.String(); !strings.Contains(page, "Not banned: ") {
		t.Errorf("a refused ban shows no error:\n%s", page)
	}
	if !strings.Contains(f.audit.String(), `action=ban target=192.0.2.7`) || !strings.Contains(f.audit.String(), "allow list") {
		t.Errorf("refused ban not audited with its error:\n%s", f.audit)
	}
}

func TestLoginCSRF(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "127.0.0.1:9901", nil)
	c := f.client()
	w := c.do(t, http.MethodGet, "/ui/login", nil)
	token := csrfOf(t, w.Body.String())
	for _, tc := range []struct {
		name string
		form url.Values
		drop bool // no login cookie
	}{
		{"missing", url.Values{"token": {"ops-token"}}, false},
		{"wrong", url.Values{"token": {"ops-token"}, "csrf": {"wrong"}}, false},
		{"no cookie", url.Values{"token": {"ops-token"}, "csrf": {token}}, true},
	} {
		cc := f.client()
		if !tc.drop {
			cc.cookies = map[string]string{loginCookie: c.cookies[loginCookie]}
		}
		if w := cc.do(t, http.MethodPost, "/ui/login", tc.form); w.Code != http.StatusForbidden {
			t.Errorf("%s: POST /ui/login = %d, want 403", tc.name, w.Code)
		}
		if _, ok := cc.cookies[sessionCookie]; ok {
			t.Errorf("%s: a session cookie was set", tc.name)
		}
	}
}

func TestScopes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "127.0.0.1:9901", nil)

	// bans:read alone cannot sign in.
	c := f.client()
	w := c.do(t, http.MethodGet, "/ui/login", nil)
	w = c.do(t, http.MethodPost, "/ui/login", url.Values{"csrf": {csrfOf(t, w.Body.String())}, "token": {"read-token"}})
	if w.Code != http.StatusUnauthorized {
		t.Errorf("sign-in with a bans:read token = %d, want 401", w.Code)
	}
	w = c.do(t, http.MethodPost, "/ui/login", url.Values{"csrf": {csrfOf(t, w.Body.String())}, "token": {"no-such-token"}})
	if w.Code != http.StatusUnauthorized {
		t.Errorf("sign-in with an unknown token = %d, want 401", w.Code)
	}
	if !strings.Contains(f.audit.String(), `msg="ui sign-in refused" token=reader`) || strings.Contains(f.audit.String(), "no-such-token") {
		t.Errorf("audit log of refused sign-ins is wrong:\n%s", f.audit)
	}

	// ui: every page, no forms, and a form posted anyway is refused.
	v := f.client()
	csrf := v.signIn(t, "view-token")
	for _, path := range []string{"/ui/", "/ui/bans", "/ui/offences", "/ui/system"} {
		if w := v.do(t, http.MethodGet, path, nil); w.Code != http.StatusOK {
			t.Errorf("viewer GET %s = %d, want 200", path, w.Code)
		}
	}
	if page := v.do(t, http.MethodGet, "/ui/bans", nil).Body.String(); strings.Contains(page, `action="/ui/bans/add"`) {
		t.Error("the bans page shows the ban form to a token without bans:write")
	}
	if w := v.do(t, http.MethodPost, "/ui/bans/add", url.Values{"csrf": {csrf}, "ip": {"203.0.113.30"}}); w.Code != http.StatusForbidden {
		t.Errorf("viewer POST /ui/bans/add = %d, want 403", w.Code)
	}

	// A token revoked by a reload ends its sessions.
	f.revoke("view-token")
	if w := v.do(t, http.MethodGet, "/ui/bans", nil); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/ui/login" {
		t.Errorf("GET /ui/bans after the token was revoked = %d to %q, want 303 to /ui/login", w.Code, w.Header().Get("Location"))
	}
	if w := v.do(t, http.MethodGet, "/ui/events?page=bans", nil); w.Code != http.StatusUnauthorized {
		t.Errorf("GET /ui/events after the token was revoked = %d, want 401", w.Code)
	}

	// Signing out ends the session on the server, not only the cookie.
	o := f.client()
	csrf = o.signIn(t, "ops-token")
	id := o.cookies[sessionCookie]
	if w := o.do(t, http.MethodPost, "/ui/logout", url.Values{"csrf": {csrf}}); w.Code != http.StatusSeeOther {
		t.Fatalf("POST /ui/logout = %d, want 303", w.Code)
	}
	o.cookies[sessionCookie] = id
	if w := o.do(t, http.MethodGet, "/ui/", nil); w.Code != http.StatusSeeOther {
		t.Errorf("GET /ui/ with a signed-out session = %d, want 303 to sign-in", w.Code)
	}
}

// TestEventStream opens the bans page's event stream on a real server
// and sees a ban and its removal arrive, then the stream end when Stats
// stops.
func TestEventStream(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "127.0.0.1:0", nil)
	ctx, stop := context.WithCancel(t.Context())
	runDone := make(chan error, 1)
	go func() { runDone <- f.stats.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		<-runDone
	})
	srv := httptest.NewServer(f.h)
	t.Cleanup(srv.Close)
	c := f.client()
	c.host = strings.TrimPrefix(srv.URL, "http://")
	c.signIn(t, "view-token")

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/ui/events?page=bans", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: c.cookies[sessionCookie]})
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET /ui/events = %d %q, want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events := make(chan string, 16)
	go func() {
		defer close(events)
		buf := make([]byte, 4096)
		var acc strings.Builder
		for {
			n, err := resp.Body.Read(buf)
			acc.Write(buf[:n])
			for {
				s := acc.String()
				i := strings.Index(s, "\n\n")
				if i < 0 {
					break
				}
				events <- s[:i]
				acc.Reset()
				acc.WriteString(s[i+2:])
			}
			if err != nil {
				return
			}
		}
	}()
	next := func(want string) string {
		t.Helper()
		timer := time.NewTimer(10 * time.Second)
		defer timer.Stop()
		for {
			select {
			case ev, ok := <-events:
				if !ok {
					t.Fatalf("stream ended waiting for %q", want)
				}
				if strings.Contains(ev, want) {
					return ev
				}
			case <-timer.C:
				t.Fatalf("no event with %q within 10s", want)
			}
		}
	}
	next("retry: 3000")
	// The subscription exists once the stream has started; ban after.
	if _, err := f.bans.Ban(rules.Ban{Prefix: netip.MustParsePrefix("203.0.113.44/32"), Jail: "probes", Reason: "<probe>", Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	ev := next("event: ban")
	if !strings.Contains(ev, `"op":"added"`) || !strings.Contains(ev, `"ip":"203.0.113.44"`) || !strings.Contains(ev, `"reason":"\u003cprobe\u003e"`) {
		t.Errorf("ban event = %q", ev)
	}
	f.bans.Unban(netip.MustParsePrefix("203.0.113.44/32"))
	if ev := next("event: ban"); !strings.Contains(ev, `"op":"removed"`) {
		t.Errorf("unban event = %q", ev)
	}
	stop()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-events:
			if !ok {
				return // the stream ended with Stats.Run
			}
		case <-timer.C:
			t.Fatal("the event stream did not end when Stats.Run returned")
		}
	}
}

// TestBannedClientAndBadToken: as on the admin API, a banned peer gets
// 403, and a sign-in with an unknown token is reported as an offence.
func TestBannedClientAndBadToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "127.0.0.1:9901", nil)
	var mu sync.Mutex
	var reported []netip.Addr
	f.h.cfg.BadToken = func(a netip.Addr) {
		mu.Lock()
		defer mu.Unlock()
		reported = append(reported, a)
	}
	// httptest requests come from 192.0.2.1.
	peerAddr := netip.MustParseAddr("192.0.2.1")
	c := f.client()
	w := c.do(t, http.MethodGet, "/ui/login", nil)
	c.do(t, http.MethodPost, "/ui/login", url.Values{"csrf": {csrfOf(t, w.Body.String())}, "token": {"guess"}})
	w = c.do(t, http.MethodGet, "/ui/login", nil)
	c.do(t, http.MethodPost, "/ui/login", url.Values{"csrf": {csrfOf(t, w.Body.String())}, "token": {"read-token"}}) // known, lacks the scope
	mu.Lock()
	if len(reported) != 1 || reported[0] != peerAddr {
		t.Errorf("bad tokens reported for %v, want [%s] (the unknown token only)", reported, peerAddr)
	}
	mu.Unlock()

	f.h.cfg.Banned = func(a netip.Addr) bool { return a == peerAddr }
	for _, path := range []string{"/ui/login", "/ui/", "/ui/static/app.js"} {
		if w := c.do(t, http.MethodGet, path, nil); w.Code != http.StatusForbidden {
			t.Errorf("banned client GET %s = %d, want 403", path, w.Code)
		}
	}
}

// FuzzHostCheck: the Host check never panics, and what it admits names
// the listener: its configured name or address, the arrival address, or
// localhost on loopback, whatever the port, case or trailing dot.
func FuzzHostCheck(f *testing.F) {
	// Names a browser sends, and rebinding and malformed ones.
	for _, s := range []string{"127.0.0.1:9901", "localhost:9901", "LOCALHOST.", "[::1]:9901", "[::1]", "::1",
		"admin.example.com:9901", "admin.example.com.", "rebind.attacker.example", "127.0.0.1.nip.io", "",
		"[", "]:", "[127.0.0.1]", "127.1", "0x7f.0.0.1", "127.0.0.1%eth0", "[fe80::1%25eth0]:1", ":9901"} {
		f.Add(s)
	}
	checks := []struct {
		hc    HostCheck
		local string
	}{
		{NewHostCheck("127.0.0.1:9901", nil), "127.0.0.1:9901"},
		{NewHostCheck("admin.example.com:9901", nil), "10.1.2.3:9901"},
		{NewHostCheck(":9901", nil), "[2001:db8::5]:9901"},
		{NewHostCheck(":9901", []string{"Admin.Example.NET.", "203.0.113.9", "[2001:db8::9]"}), "10.1.2.3:9901"},
	}
	f.Fuzz(func(t *testing.T, host string) {
		for _, c := range checks {
			r := httptest.NewRequest(http.MethodGet, "/ui/", nil)
			r.Host = host
			la, err := net.ResolveTCPAddr("tcp", c.local)
			if err != nil {
				t.Fatal(err)
			}
			r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, la))
			if !c.hc.Allowed(r) {
				continue
			}
			name := host
			if h, _, err := net.SplitHostPort(host); err == nil {
				name = h
			}
			name = strings.TrimSuffix(strings.ToLower(name), ".")
			local := netip.MustParseAddrPort(la.String()).Addr()
			switch a, err := netip.ParseAddr(strings.Trim(name, "[]")); {
			case err == nil && (slices.Contains(c.hc.addrs, a.Unmap().WithZone("")) || a.Unmap().WithZone("") == local):
			case name != "" && slices.Contains(c.hc.names, name):
			case name == "localhost" && (local.IsLoopback() || slices.ContainsFunc(c.hc.addrs, netip.Addr.IsLoopback)):
			default:
				t.Fatalf("Host %q admitted for listener %+v arriving on %s", host, c.hc, c.local)
			}
		}
	})
}
