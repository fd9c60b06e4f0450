package signer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	keyOld = []byte("old-key-0123456789abcdef01234567")
	keyNew = []byte("new-key-0123456789abcdef01234567")
)

// fakeClock is a settable clock for the signers.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

func newLinks(t testing.TB, cfg LinkConfig) *Links {
	t.Helper()
	l, err := NewLinks(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestNewLinksErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     LinkConfig
		wantErr string
	}{
		{name: "no key", cfg: LinkConfig{}, wantErr: "at least one key"},
		{name: "short key", cfg: LinkConfig{Keys: [][]byte{[]byte("short")}}, wantErr: "key 1 is 5 bytes; at least 32"},
		{name: "repeated key", cfg: LinkConfig{Keys: [][]byte{keyNew, keyOld, keyNew}}, wantErr: "key 3 repeats key 1"},
		{name: "tiny max", cfg: LinkConfig{Keys: [][]byte{keyNew}, MaxExpires: time.Millisecond}, wantErr: "under 1s"},
	}
	for _, tc := range tests {
		if _, err := NewLinks(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: NewLinks = %v, want error containing %q", tc.name, err, tc.wantErr)
		}
	}
}

func TestLinkVerify(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(1_900_000_000, 0)}
	l := newLinks(t, LinkConfig{Keys: [][]byte{keyNew, keyOld}, Now: clock.Now})
	client := netip.MustParseAddr("203.0.113.7")
	exp := clock.t.Add(time.Hour)
	const host, path = "media.example.com", "/paid/a.mp4"
	unbound := l.Sign("GET", host, path, "", exp, netip.Addr{})
	bound := l.Sign("GET", host, path, "", exp, client)
	if !strings.Contains(bound, "gh_ip=1") || strings.Contains(unbound, "gh_ip") || strings.Contains(bound, client.String()) {
		t.Fatalf("Sign: unbound %q, bound %q; want gh_ip=1 only on the bound one, and no address", unbound, bound)
	}
	withQuery := l.Sign("GET", host, path, "start=10&end=20", exp, netip.Addr{})
	head := l.Sign("HEAD", host, path, "", exp, netip.Addr{})
	put := l.Sign("PUT", host, path, "", exp, netip.Addr{})
	// The signing API caps validity at MaxExpires (24h here); a link
	// minted with the key beyond that, plus the clock skew allowed, is
	// refused even though its signature is genuine.
	atMax := l.Sign("GET", host, path, "", clock.t.Add(24*time.Hour+LinkClockSkew), netip.Addr{})
	beyondMax := l.Sign("GET", host, path, "", clock.t.Add(24*time.Hour+LinkClockSkew+time.Second), netip.Addr{})
	farFuture := l.Sign("GET", host, path, "", clock.t.Add(10*365*24*time.Hour), netip.Addr{})
	tamper := func(q, from, to string) string {
		t.Helper()
		if !strings.Contains(q, from) {
			t.Fatalf("%q lacks %q", q, from)
		}
		return strings.Replace(q, from, to, 1)
	}
	sig := unbound[strings.Index(unbound, "gh_signature=")+len("gh_signature="):]
	flipped := sig[:10] + string("AB"[boolInt(sig[10] == 'A')]) + sig[11:]

	tests := []struct {
		name    string
		method  string
		host    string
		path    string
		query   string
		client  netip.Addr
		want    error
		wantOut string
	}{
		{name: "valid", method: "GET", query: unbound},
		{name: "HEAD for a GET link", method: "HEAD", query: unbound},
		{name: "HEAD for a HEAD link", method: "HEAD", query: head},
		{name: "GET for a HEAD link", method: "GET", query: head, want: ErrLinkSignature},
		{name: "PUT for a PUT link", method: "PUT", query: put},
		{name: "GET for a PUT link", method: "GET", query: put, want: ErrLinkSignature},
		{name: "HEAD for a PUT link", method: "HEAD", query: put, want: ErrLinkSignature},
		{name: "signed query", method: "GET", query: "start=10&end=20&" + withQuery, wantOut: "start=10&end=20"},
		{name: "signed query, link parameters between", method: "GET", query: "start=10&" + withQuery + "&end=20", wantOut: "start=10&end=20"},
		{name: "signed query, link parameters first", method: "GET", query: withQuery + "&start=10&end=20", wantOut: "start=10&end=20"},
		{name: "query value changed", method: "GET", query: "start=11&end=20&" + withQuery, want: ErrLinkSignature, wantOut: "start=11&end=20"},
		{name: "query parameter added", method: "GET", query: "start=10&end=20&admin=1&" + withQuery, want: ErrLinkSignature, wantOut: "start=10&end=20&admin=1"},
		{name: "query parameter removed", method: "GET", query: "start=10&" + withQuery, want: ErrLinkSignature, wantOut: "start=10"},
		{name: "query reordered", method: "GET", query: "end=20&start=10&" + withQuery, want: ErrLinkSignature, wantOut: "end=20&start=10"},
		{name: "query added to a link without one", method: "GET", query: "id=2&admin=1&" + unbound, want: ErrLinkSignature, wantOut: "id=2&admin=1"},
		{name: "leading separator only", method: "GET", query: "&" + unbound},
		{name: "foreign gh_ parameter", method: "GET", query: "gh_x=1&" + unbound, want: ErrLinkSignature, wantOut: "gh_x=1"},
		{name: "bound, right client", method: "GET", query: bound},
		{name: "bound, wrong client", method: "GET", query: bound, client: netip.MustParseAddr("203.0.113.8"), want: ErrLinkSignature},
		{name: "bound, IPv4-mapped client", method: "GET", query: bound, client: netip.MustParseAddr("::ffff:203.0.113.7")},
		{name: "binding removed", method: "GET", query: tamper(bound, "gh_ip=1&", ""), want: ErrLinkSignature},
		{name: "binding added", method: "GET", query: tamper(unbound, "&gh_signature", "&gh_ip=1&gh_signature"), want: ErrLinkSignature},
		{name: "other method", method: "POST", query: unbound, want: ErrLinkSignature},
		{name: "other host", method: "GET", host: "evil.example.com", query: unbound, want: ErrLinkSignature},
		{name: "other path", method: "GET", path: "/paid/b.mp4", query: unbound, want: ErrLinkSignature},
		{name: "path case", method: "GET", path: "/PAID/a.mp4", query: unbound, want: ErrLinkSignature},
		{name: "raw path, double slash", method: "GET", path: "/paid//a.mp4", query: unbound, want: ErrLinkSignature},
		{name: "raw path, dot segment", method: "GET", path: "/paid/./a.mp4", query: unbound, want: ErrLinkSignature},
		{name: "raw path, needless escape", method: "GET", path: "/paid/%61.mp4", query: unbound, want: ErrLinkSignature},
		{name: "raw path, path parameter", method: "GET", path: "/paid/a.mp4;x=1", query: unbound, want: ErrLinkSignature},
		{name: "later expiry", method: "GET", query: tamper(unbound, "gh_expires=1900003600", "gh_expires=1900007200"), want: ErrLinkSignature},
		{name: "expiry at max_expires plus skew", method: "GET", query: atMax},
		{name: "expiry a second beyond", method: "GET", query: beyondMax, want: ErrLinkTooLong},
		{name: "expiry in ten years", method: "GET", query: farFuture, want: ErrLinkTooLong},
		{name: "signature bit flipped", method: "GET", query: tamper(unbound, sig, flipped), want: ErrLinkSignature},
		{name: "signature cut", method: "GET", query: tamper(unbound, sig, sig[:42]), want: ErrLinkMalformed},
		{name: "no parameters", method: "GET", query: "a=1", want: ErrLinkMissing, wantOut: "a=1"},
		{name: "empty query", method: "GET", query: "", want: ErrLinkMissing},
		{name: "no signature", method: "GET", query: "gh_expires=1900003600", want: ErrLinkMalformed},
		{name: "no expiry", method: "GET", query: "gh_signature=" + sig, want: ErrLinkMalformed},
		{name: "repeated expiry", method: "GET", query: unbound + "&gh_expires=1900003600", want: ErrLinkMalformed},
		{name: "signed expiry not a number", method: "GET", query: tamper(unbound, "gh_expires=1900003600", "gh_expires=+1900003600"), want: ErrLinkMalformed},
		{name: "gh_ip not 1", method: "GET", query: tamper(bound, "gh_ip=1", "gh_ip=203.0.113.7"), want: ErrLinkMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, p, c := tc.host, tc.path, tc.client
			if h == "" {
				h = host
			}
			if p == "" {
				p = path
			}
			if !c.IsValid() {
				c = client
			}
			out, err := l.Verify(tc.method, h, p, tc.query, c)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Verify(%s %s?%s) = %v, want %v", tc.method, p, tc.query, err, tc.want)
			}
			if out != tc.wantOut {
				t.Errorf("Verify(%q) stripped query = %q, want %q", tc.query, out, tc.wantOut)
			}
		})
	}
}

// TestLinkV1Refused pins that a link in the v1 format (a
// MAC over the method with HEAD folded into GET, canonical path, no query),
// made with a key the gateway still holds, fails closed.
func TestLinkV1Refused(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(1_900_000_000, 0)}
	l := newLinks(t, LinkConfig{Keys: [][]byte{keyNew}, Now: clock.Now})
	exp := clock.t.Add(time.Hour).Unix()
	msg := "gatehouse-link-v1\nGET\nmedia.example.com\n" + strconv.FormatInt(exp, 10) + "\n\n/paid/a.mp4"
	mac := hmac.New(sha256.New, keyNew)
	mac.Write([]byte(msg))
	v1 := "gh_expires=" + strconv.FormatInt(exp, 10) + "&gh_signature=" + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	for _, q := range []string{v1, "id=2&" + v1} {
		if _, err := l.Verify("GET", "media.example.com", "/paid/a.mp4", q, netip.Addr{}); !errors.Is(err, ErrLinkSignature) {
			t.Errorf("Verify(v1 link %q) = %v, want ErrLinkSignature", q, err)
		}
	}
}

// TestLinkIgnoreQuery checks signed_links.query: ignore: any query
// besides the link parameters passes and reaches the upstream, while
// method, path, host and expiry stay covered; and a link of one mode
// does not verify in the other.
func TestLinkIgnoreQuery(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(1_900_000_000, 0)}
	ignore := newLinks(t, LinkConfig{Keys: [][]byte{keyNew}, IgnoreQuery: true, Now: clock.Now})
	sign := newLinks(t, LinkConfig{Keys: [][]byte{keyNew}, Now: clock.Now})
	exp := clock.t.Add(time.Hour)
	link := ignore.Sign("GET", "media.example.com", "/paid/a.mp4", "ignored=1", exp, netip.Addr{})
	for _, tc := range []struct {
		name, method, path, query string
		links                     *Links
		want                      error
		wantOut                   string
	}{
		{name: "no query", method: "GET", path: "/paid/a.mp4", query: link, links: ignore},
		{name: "app's own query", method: "GET", path: "/paid/a.mp4", query: "utm_source=x&" + link + "&t=10", links: ignore, wantOut: "utm_source=x&t=10"},
		{name: "HEAD", method: "HEAD", path: "/paid/a.mp4", query: "t=1&" + link, links: ignore, wantOut: "t=1"},
		{name: "other path", method: "GET", path: "/paid/b.mp4", query: link, links: ignore, want: ErrLinkSignature},
		{name: "other method", method: "PUT", path: "/paid/a.mp4", query: link, links: ignore, want: ErrLinkSignature},
		{name: "ignore link on a sign host", method: "GET", path: "/paid/a.mp4", query: link, links: sign, want: ErrLinkSignature},
		{name: "sign link on an ignore host", method: "GET", path: "/paid/a.mp4",
			query: sign.Sign("GET", "media.example.com", "/paid/a.mp4", "", exp, netip.Addr{}), links: ignore, want: ErrLinkSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.links.Verify(tc.method, "media.example.com", tc.path, tc.query, netip.Addr{})
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Verify(%s %s?%s) = %v, want %v", tc.method, tc.path, tc.query, err, tc.want)
			}
			if out != tc.wantOut {
				t.Errorf("Verify(%q) stripped query = %q, want %q", tc.query, out, tc.wantOut)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestLinkExpiryAndRotation(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(1_900_000_000, 0)}
	old := newLinks(t, LinkConfig{Keys: [][]byte{keyOld}, Now: clock.Now})
	q := old.Sign("GET", "media.example.com", "/paid/a.mp4", "", clock.t.Add(time.Minute), netip.Addr{})

	rotated := newLinks(t, LinkConfig{Keys: [][]byte{keyNew, keyOld}, Now: clock.Now})
	if _, err := rotated.Verify("GET", "media.example.com", "/paid/a.mp4", q, netip.Addr{}); err != nil {
		t.Errorf("a link signed with the old key, after rotation: %v, want valid", err)
	}
	newQ := rotated.Sign("GET", "media.example.com", "/paid/a.mp4", "", clock.t.Add(time.Minute), netip.Addr{})
	if _, err := old.Verify("GET", "media.example.com", "/paid/a.mp4", newQ, netip.Addr{}); !errors.Is(err, ErrLinkSignature) {
		t.Errorf("the rotated signer signs with the old key: %v, want ErrLinkSignature from a signer without the new key", err)
	}
	retired := newLinks(t, LinkConfig{Keys: [][]byte{keyNew}, Now: clock.Now})
	if _, err := retired.Verify("GET", "media.example.com", "/paid/a.mp4", q, netip.Addr{}); !errors.Is(err, ErrLinkSignature) {
		t.Errorf("old key retired: %v, want ErrLinkSignature", err)
	}

	clock.t = clock.t.Add(59 * time.Second)
	if _, err := rotated.Verify("GET", "media.example.com", "/paid/a.mp4", q, netip.Addr{}); err != nil {
		t.Errorf("a second before expiry: %v, want valid", err)
	}
	clock.t = clock.t.Add(time.Second)
	if _, err := rotated.Verify("GET", "media.example.com", "/paid/a.mp4", q, netip.Addr{}); !errors.Is(err, ErrLinkExpired) {
		t.Errorf("at expiry: %v, want ErrLinkExpired", err)
	}
}

func TestLinkSignURL(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 600, time.UTC)}
	l := newLinks(t, LinkConfig{Keys: [][]byte{keyNew}, MaxExpires: 2 * time.Hour, Now: clock.Now})
	bindAll := newLinks(t, LinkConfig{Keys: [][]byte{keyNew}, BindIP: true, Now: clock.Now})
	d := func(v time.Duration) *Duration { x := Duration(v); return &x }
	tests := []struct {
		name      string
		links     *Links
		req       LinkRequest
		allowed   Prefixes
		wantURL   string // prefix of the signed URL
		wantExp   time.Time
		wantErr   string
		wantField string
		forbidden bool
	}{
		{name: "default expiry", links: l, req: LinkRequest{URL: "https://media.example.com/paid/a.mp4"},
			wantURL: "https://media.example.com/paid/a.mp4?gh_expires=1893557045&gh_signature=", wantExp: time.Date(2030, 1, 2, 4, 4, 5, 0, time.UTC)},
		{name: "query kept", links: l, req: LinkRequest{URL: "https://media.example.com/paid/a.mp4?quality=hd", Expires: d(time.Minute)},
			wantURL: "https://media.example.com/paid/a.mp4?quality=hd&gh_expires=1893553505&gh_signature="},
		{name: "bound", links: l, req: LinkRequest{URL: "https://media.example.com/paid/a.mp4", IP: "2001:db8::7"},
			wantURL: "https://media.example.com/paid/a.mp4?gh_expires=1893557045&gh_ip=1&gh_signature="},
		{name: "over the cap", links: l, req: LinkRequest{URL: "https://media.example.com/paid/a.mp4", Expires: d(3 * time.Hour)},
			wantErr: "over the maximum of 2h", wantField: "expires"},
		{name: "bad ip", links: l, req: LinkRequest{URL: "https://media.example.com/paid/a.mp4", IP: "203.0.113.0/24"},
			wantErr: "not an IP address", wantField: "ip"},
		{name: "bind_ip without ip", links: bindAll, req: LinkRequest{URL: "https://media.example.com/paid/a.mp4"},
			wantErr: "bind_ip is on", wantField: "ip"},
		{name: "bad method", links: l, req: LinkRequest{URL: "https://media.example.com/paid/a.mp4", Method: "TRACE"},
			wantErr: `"TRACE" is not one of`, wantField: "method"},
		{name: "already signed", links: l, req: LinkRequest{URL: "https://media.example.com/paid/a.mp4?gh_expires=1"},
			wantErr: "already carries a gh_expires", wantField: "url"},
		{name: "reserved parameter", links: l, req: LinkRequest{URL: "https://media.example.com/paid/a.mp4?a=1&gh_v=2"},
			wantErr: "already carries a gh_v parameter", wantField: "url"},
		{name: "not a parameter of ours", links: l, req: LinkRequest{URL: "https://media.example.com/paid/a.mp4?xgh_expires=1"},
			wantURL: "https://media.example.com/paid/a.mp4?xgh_expires=1&gh_expires="},
		{name: "query with a space", links: l, req: LinkRequest{URL: "https://media.example.com/paid/a.mp4?q=a b"},
			wantErr: `has a byte clients percent-encode (" " at byte 3)`, wantField: "url"},
		{name: "query with a quote", links: l, req: LinkRequest{URL: `https://media.example.com/paid/a.mp4?q="a"`},
			wantErr: `has a byte clients percent-encode`, wantField: "url"},
		{name: "query percent-encoded", links: l, req: LinkRequest{URL: "https://media.example.com/paid/a.mp4?q=a%20b&id=1"},
			wantURL: "https://media.example.com/paid/a.mp4?q=a%20b&id=1&gh_expires="},
		{name: "HEAD link", links: l, req: LinkRequest{URL: "https://media.example.com/paid/a.mp4", Method: "head"},
			wantURL: "https://media.example.com/paid/a.mp4?gh_expires="},
		{name: "PUT link", links: l, req: LinkRequest{URL: "https://media.example.com/paid/a.mp4", Method: "PUT"},
			wantURL: "https://media.example.com/paid/a.mp4?gh_expires="},
		{name: "inside prefixes", links: l, req: LinkRequest{URL: "https://media.example.com/paid/a.mp4"}, allowed: Prefixes{"paid/"},
			wantURL: "https://media.example.com/paid/a.mp4?gh_expires="},
		{name: "outside prefixes", links: l, req: LinkRequest{URL: "https://media.example.com/paid/a.mp4"}, allowed: Prefixes{"free/"},
			wantErr: `"paid/a.mp4" is outside the token's prefixes`, wantField: "url", forbidden: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.req.URL)
			if err != nil {
				t.Fatal(err)
			}
			res, err := tc.links.SignURL(tc.req, u, "media.example.com", u.Path, tc.allowed)
			if tc.wantErr != "" {
				var fe *FieldError
				var pe *PrefixError
				switch {
				case err == nil || !strings.Contains(err.Error(), tc.wantErr):
					t.Fatalf("SignURL = %v, want error containing %q", err, tc.wantErr)
				case tc.forbidden && (!errors.As(err, &pe) || pe.Field != tc.wantField || !errors.Is(err, ErrOutsidePrefixes)):
					t.Fatalf("SignURL = %#v, want a PrefixError for %q", err, tc.wantField)
				case !tc.forbidden && (!errors.As(err, &fe) || fe.Field != tc.wantField):
					t.Fatalf("SignURL = %#v, want a FieldError for %q", err, tc.wantField)
				}
				return
			}
			if err != nil || !strings.HasPrefix(res.URL, tc.wantURL) {
				t.Fatalf("SignURL = %q, %v; want a URL starting %q", res.URL, err, tc.wantURL)
			}
			if !tc.wantExp.IsZero() && !res.ExpiresAt.Equal(tc.wantExp) {
				t.Errorf("ExpiresAt = %v, want %v", res.ExpiresAt, tc.wantExp)
			}
			signed, err := url.Parse(res.URL)
			if err != nil {
				t.Fatal(err)
			}
			client := netip.MustParseAddr("203.0.113.9")
			if tc.req.IP != "" {
				client = netip.MustParseAddr(tc.req.IP)
			}
			method := strings.ToUpper(tc.req.Method)
			if method == "" {
				method = "GET"
			}
			out, err := tc.links.Verify(method, "media.example.com", signed.EscapedPath(), signed.RawQuery, client)
			if err != nil || out != u.RawQuery {
				t.Errorf("Verify(%s SignURL) = %q, %v; want %q, valid", method, out, err, u.RawQuery)
			}
			// The link is for its method only (a GET link also serves
			// HEAD), and for its query only.
			other := map[string]string{"GET": "POST", "HEAD": "GET", "PUT": "GET"}[method]
			if _, err := tc.links.Verify(other, "media.example.com", signed.EscapedPath(), signed.RawQuery, client); !errors.Is(err, ErrLinkSignature) {
				t.Errorf("Verify(%s on a %s link) = %v, want ErrLinkSignature", other, method, err)
			}
			if _, err := tc.links.Verify(method, "media.example.com", signed.EscapedPath(), "admin=1&"+signed.RawQuery, client); !errors.Is(err, ErrLinkSignature) {
				t.Errorf("Verify(SignURL with admin=1 added) = %v, want ErrLinkSignature", err)
			}
		})
	}
}

func BenchmarkLinkVerify(b *testing.B) {
	clock := &fakeClock{t: time.Unix(1_900_000_000, 0)}
	client := netip.MustParseAddr("203.0.113.7")
	for _, bc := range []struct {
		name  string
		keys  [][]byte
		query func(l *Links) string
	}{
		{name: "keys=1/valid", keys: [][]byte{keyNew}, query: func(l *Links) string {
			return "start=10&" + l.Sign("GET", "media.example.com", "/paid/videos/episode-01.mp4", "start=10", clock.t.Add(time.Hour), client)
		}},
		{name: "keys=3/valid", keys: [][]byte{keyNew, keyOld, []byte("third-key-0123456789abcdef012345")}, query: func(l *Links) string {
			return "start=10&" + l.Sign("GET", "media.example.com", "/paid/videos/episode-01.mp4", "start=10", clock.t.Add(time.Hour), client)
		}},
		{name: "keys=1/forged", keys: [][]byte{keyNew}, query: func(*Links) string {
			return "gh_expires=1900003600&gh_signature=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		}},
		{name: "keys=1/missing", keys: [][]byte{keyNew}, query: func(*Links) string { return "start=10" }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l := newLinks(b, LinkConfig{Keys: bc.keys, Now: clock.Now})
			q := bc.query(l)
			b.ReportAllocs()
			for b.Loop() {
				_, _ = l.Verify("GET", "media.example.com", "/paid/videos/episode-01.mp4", q, client)
			}
		})
	}
}

func BenchmarkLinkSign(b *testing.B) {
	clock := &fakeClock{t: time.Unix(1_900_000_000, 0)}
	l := newLinks(b, LinkConfig{Keys: [][]byte{keyNew}, Now: clock.Now})
	b.ReportAllocs()
	for b.Loop() {
		_ = l.Sign("GET", "media.example.com", "/paid/videos/episode-01.mp4", "", clock.t.Add(time.Hour), netip.Addr{})
	}
}
