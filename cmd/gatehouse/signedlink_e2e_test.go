//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"gatehouse/signer"
)

// The signed-link tests run the real binary: links are
// minted by the admin API, the CLI, or in-process with the signer
// package and the same key (as an attacker holding a leaked key, or an
// old release, would), and followed through the public listener, over raw
// TCP where the exact request-target matters.

// linkKey is the signed-link key of these tests.
const linkKey = "signed-link-e2e-key-0123456789abcdef0123"

// linkGateway starts a gateway with two hosts behind signed links on
// /paid/: media.test signs the query (the default) and app.test ignores
// it. Both allow links of at most 1h. access is log.access.
func linkGateway(t *testing.T, access string) (*gateway, *echoUpstream) {
	t.Helper()
	up := newEchoUpstream(t, "media")
	keys := secretDir(t, map[string]string{"link": linkKey})
	g := startGateway(t, fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
%shosts:
  - match: [media.test]
    upstreams: [%[2]s]
    signed_links:
      paths: ["/paid/"]
      key: file:%[3]s/link
      max_expires: 1h
  - match: [app.test]
    upstreams: [%[2]s]
    signed_links:
      paths: ["/paid/"]
      key: file:%[3]s/link
      max_expires: 1h
      query: ignore
log: {access: %[4]s, level: debug}
`, signAdmin(), up.URL(), keys, access))
	return g, up
}

// signLink asks the gateway's admin API for a link and returns it, or
// fails the test.
func (g *gateway) signLink(t *testing.T, body string) string {
	t.Helper()
	code, v := g.adminPost(t, "/v1/sign/link", signToken, body)
	if code != http.StatusOK {
		t.Fatalf("POST /v1/sign/link %s = %d %v", body, code, v)
	}
	return v["url"].(string)
}

// rawLink sends method and the request-target of link (or target, when
// not empty) as the exact bytes of an HTTP/1.1 request to the public
// listener, and returns the status and, for a 200, what the upstream
// received.
func (g *gateway) rawLink(t *testing.T, method, link, target string) (int, echo) {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	if target == "" {
		target = u.RequestURI()
	}
	as, _ := rawExchange(t, g.httpAddr, method+" "+target+" HTTP/1.1\r\nHost: "+u.Host+"\r\nConnection: close\r\n\r\n", 1, false)
	if len(as) != 1 {
		t.Fatalf("%s %s: no answer", method, target)
	}
	var e echo
	if as[0].status == http.StatusOK && method != http.MethodHead {
		e = decodeEcho(t, []byte(as[0].body))
	}
	return as[0].status, e
}

// TestSignedLinkQuery: a link signs its query. The exact signed query
// reaches the upstream; a changed, added or dropped parameter is 403
// (a link for ?id=1 opened ?id=2&admin=1). On a host with
// signed_links.query: ignore the application's own parameters pass.
func TestSignedLinkQuery(t *testing.T) {
	t.Parallel()
	g, up := linkGateway(t, "json")
	link := g.signLink(t, `{"url":"http://media.test/paid/a.mp4?id=1&t=10"}`)
	if code, e := g.rawLink(t, "GET", link, ""); code != http.StatusOK || e.URI != "/paid/a.mp4?id=1&t=10" {
		t.Fatalf("GET the signed link = %d, upstream got %q; want 200 and exactly the signed query", code, e.URI)
	}
	hits := up.hits.Load()
	for _, tc := range []struct{ name, link string }{
		{"value changed", strings.Replace(link, "id=1", "id=2", 1)},
		{"parameters added", link + "&admin=1"},
		{"parameters added before", strings.Replace(link, "?", "?admin=1&", 1)},
		{"parameter dropped", strings.Replace(link, "id=1&", "", 1)},
		{"parameters reordered", strings.Replace(link, "id=1&t=10", "t=10&id=1", 1)},
		{"the issue's tamper", strings.Replace(link, "id=1&t=10", "id=2&admin=1", 1)},
	} {
		if code, _ := g.rawLink(t, "GET", tc.link, ""); code != http.StatusForbidden {
			t.Errorf("%s: GET %s = %d, want 403", tc.name, tc.link, code)
		}
	}
	if up.hits.Load() != hits {
		t.Errorf("tampered links reached the upstream")
	}

	// query: ignore: the app adds its own parameters; path, method and
	// expiry stay signed.
	appLink := g.signLink(t, `{"url":"http://app.test/paid/a.mp4"}`)
	if code, e := g.rawLink(t, "GET", appLink+"&utm_source=mail&t=10", ""); code != http.StatusOK || e.URI != "/paid/a.mp4?utm_source=mail&t=10" {
		t.Errorf("query: ignore host, extra query = %d, upstream got %q; want 200 and the extra query", code, e.URI)
	}
	if code, _ := g.rawLink(t, "GET", strings.Replace(appLink, "/paid/a.mp4", "/paid/b.mp4", 1), ""); code != http.StatusForbidden {
		t.Errorf("query: ignore host, other path = %d, want 403", code)
	}
	// A link of one host's mode does not open the other host: the host
	// and the mode are both signed.
	if code, _ := g.rawLink(t, "GET", strings.Replace(appLink, "app.test", "media.test", 1)+"&t=10", ""); code != http.StatusForbidden {
		t.Errorf("query: ignore link on the signing host = %d, want 403", code)
	}

	// The signing side refuses what can never verify.
	for _, tc := range []struct{ body, wantErr string }{
		{`{"url":"http://media.test/paid/a.mp4?gh_v=2"}`, "already carries a gh_v parameter"},
		{`{"url":"http://media.test/paid/a.mp4?q=a b"}`, "percent-encode it"},
	} {
		if code, v := g.adminPost(t, "/v1/sign/link", signToken, tc.body); code != http.StatusUnprocessableEntity || !strings.Contains(fmt.Sprint(v["error"]), tc.wantErr) {
			t.Errorf("POST /v1/sign/link %s = %d %v, want 422 with %q", tc.body, code, v, tc.wantErr)
		}
	}
}

// TestSignedLinkMethod: a link authorises its method only; a GET link
// also serves HEAD, a HEAD link never serves GET, through the
// admin API and `gatehouse sign link --method`.
func TestSignedLinkMethod(t *testing.T) {
	t.Parallel()
	g, up := linkGateway(t, "json")
	getLink := g.signLink(t, `{"url":"http://media.test/paid/a.mp4"}`)
	headLink := g.signLink(t, `{"url":"http://media.test/paid/a.mp4","method":"HEAD"}`)
	stdout, stderr, code := runGatehouse(t, "sign", "link", "--url", "http://media.test/paid/b.mp4", "--method", "HEAD", "-c", g.cfgPath)
	if code != 0 {
		t.Fatalf("gatehouse sign link --method HEAD = %d %q %q", code, stdout, stderr)
	}
	cliHead := strings.SplitN(stdout, "\n", 2)[0]
	putLink := g.signLink(t, `{"url":"http://media.test/paid/a.mp4","method":"PUT"}`)
	for _, tc := range []struct {
		name, method, link string
		want               int
	}{
		{"GET link, GET", "GET", getLink, http.StatusOK},
		{"GET link, HEAD", "HEAD", getLink, http.StatusOK},
		{"HEAD link, HEAD", "HEAD", headLink, http.StatusOK},
		{"HEAD link, GET", "GET", headLink, http.StatusForbidden},
		{"CLI HEAD link, HEAD", "HEAD", cliHead, http.StatusOK},
		{"CLI HEAD link, GET", "GET", cliHead, http.StatusForbidden},
		{"PUT link, GET", "GET", putLink, http.StatusForbidden},
		{"GET link, DELETE", "DELETE", getLink, http.StatusForbidden},
	} {
		before := up.hits.Load()
		if code, _ := g.rawLink(t, tc.method, tc.link, ""); code != tc.want {
			t.Errorf("%s: %s = %d, want %d", tc.name, tc.method, code, tc.want)
		}
		if reached := up.hits.Load() != before; reached != (tc.want == http.StatusOK) {
			t.Errorf("%s: reached the upstream = %v", tc.name, reached)
		}
	}
}

// TestSignedLinkRawPath: the signature covers the raw path the upstream
// receives. Other spellings of the signed path, each of which a
// key-value store upstream may read as another object, are 403 with the
// signature of /paid/a.mp4, and the signing API refuses to
// sign a path that is not in canonical form.
func TestSignedLinkRawPath(t *testing.T) {
	t.Parallel()
	g, up := linkGateway(t, "json")
	link := g.signLink(t, `{"url":"http://media.test/paid/a.mp4"}`)
	q := link[strings.Index(link, "?"):]
	if code, e := g.rawLink(t, "GET", link, ""); code != http.StatusOK || e.URI != "/paid/a.mp4" {
		t.Fatalf("the signed link = %d %q, want 200 /paid/a.mp4", code, e.URI)
	}
	hits := up.hits.Load()
	for _, path := range []string{"/paid//a.mp4", "/paid/./a.mp4", "/PAID/a.mp4", "/paid/%61.mp4", "/paid/a.mp4;x=1", "/paid/x/../a.mp4", "//paid/a.mp4"} {
		if code, _ := g.rawLink(t, "GET", link, path+q); code != http.StatusForbidden {
			t.Errorf("GET %s with the signature of /paid/a.mp4 = %d, want 403", path, code)
		}
	}
	if up.hits.Load() != hits {
		t.Errorf("another spelling of the path reached the upstream")
	}
	// A path that needs escaping is signed in its one escaped spelling
	// and works as the client sends it.
	spaced := g.signLink(t, `{"url":"http://media.test/paid/my%20video(1).mp4"}`)
	if code, e := g.rawLink(t, "GET", spaced, ""); code != http.StatusOK || e.URI != "/paid/my%20video(1).mp4" {
		t.Errorf("escaped path = %d %q, want 200 /paid/my%%20video(1).mp4", code, e.URI)
	}
	for _, path := range []string{"/paid//a.mp4", "/paid/%61.mp4", "/paid/./a.mp4"} {
		code, v := g.adminPost(t, "/v1/sign/link", signToken, `{"url":"http://media.test`+path+`"}`)
		if code != http.StatusUnprocessableEntity || !strings.Contains(fmt.Sprint(v["error"]), `not in canonical form; sign "/paid/a.mp4"`) {
			t.Errorf("POST /v1/sign/link %s = %d %v, want 422 naming /paid/a.mp4", path, code, v)
		}
	}
}

// TestSignedLinkMaxExpires: the verifier enforces max_expires. A link
// minted directly with the key (the signer package, in this process)
// for ten years, or just beyond the host's 1h and the minute of clock
// skew, is 403; one within it is 200, so the refusal is the expiry's.
// A link in the v1 format fails closed.
func TestSignedLinkMaxExpires(t *testing.T) {
	t.Parallel()
	g, up := linkGateway(t, "json")
	now := time.Now()
	l, err := signer.NewLinks(signer.LinkConfig{Keys: [][]byte{[]byte(linkKey)}, MaxExpires: 100 * 365 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	minted := func(d time.Duration) string {
		return "http://media.test/paid/a.mp4?" + l.Sign("GET", "media.test", "/paid/a.mp4", "", now.Add(d), netip.Addr{})
	}
	if code, _ := g.rawLink(t, "GET", minted(50*time.Minute), ""); code != http.StatusOK {
		t.Fatalf("a link minted with the key within max_expires = %d, want 200", code)
	}
	hits := up.hits.Load()
	for _, tc := range []struct {
		name string
		d    time.Duration
	}{
		{"ten years", 10 * 365 * 24 * time.Hour},
		{"a day", 24 * time.Hour},
		{"max_expires plus skew plus a minute", time.Hour + signer.LinkClockSkew + time.Minute},
	} {
		if code, _ := g.rawLink(t, "GET", minted(tc.d), ""); code != http.StatusForbidden {
			t.Errorf("link minted with the key for %s = %d, want 403", tc.name, code)
		}
	}
	if up.hits.Load() != hits {
		t.Errorf("a far-future link reached the upstream")
	}
	g.waitLog(t, waitTimeout, "the refusal's reason", func(log string) bool {
		return strings.Contains(log, "signed link expiry is beyond max_expires")
	})
}

// TestSignedLinkLogs: no gh_signature value reaches a log or the
// upstream's Referer. Requests carry a real signature in the
// request-target of a protected path (stripped), of an unprotected path
// and of an unknown host (neither stripped), and in the Referer; each
// access log format must show the marker instead, and the gateway's
// debug log nothing.
func TestSignedLinkLogs(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"json", "combined"} {
		t.Run(format, func(t *testing.T) {
			t.Parallel()
			g, _ := linkGateway(t, format)
			link := g.signLink(t, `{"url":"http://media.test/paid/page.html"}`)
			u, err := url.Parse(link)
			if err != nil {
				t.Fatal(err)
			}
			sig := u.Query().Get(signer.ParamSignature)
			if len(sig) != 43 {
				t.Fatalf("link %q: no signature", link)
			}
			if code, _ := g.rawLink(t, "GET", link, ""); code != http.StatusOK {
				t.Fatalf("GET the link = %d", code)
			}
			if code, _ := g.rawLink(t, "GET", link, "/free/a.mp4?"+u.RawQuery); code != http.StatusOK {
				t.Fatalf("GET an unprotected path with the link's query = %d", code)
			}
			as, _ := rawExchange(t, g.httpAddr, "GET /paid/page.html?"+u.RawQuery+" HTTP/1.1\r\nHost: unknown.test\r\nConnection: close\r\n\r\n", 1, false)
			if len(as) != 1 || as[0].status != http.StatusMisdirectedRequest {
				t.Fatalf("unknown host = %v, want 421", statuses(as))
			}
			// A page opened through the link asks for its media: the
			// Referer is the signed link.
			req, err := g.newRequest(t.Context(), http.MethodGet, "media.test", "/free/style.css", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Referer", link)
			resp, body := g.mustDo(t, req)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET with the link as Referer = %d", resp.StatusCode)
			}
			if ref := decodeEcho(t, body).Header.Get("Referer"); strings.Contains(ref, sig) || !strings.Contains(ref, "gh_signature="+signer.RedactedSignature) {
				t.Errorf("the upstream received Referer %q; want the signature redacted", ref)
			}

			// Four access log lines, one per request.
			deadline := time.Now().Add(waitTimeout)
			for strings.Count(g.stdout.String(), "\n") < 4 {
				if time.Now().After(deadline) {
					t.Fatalf("want 4 access log lines, have:\n%s", g.stdout)
				}
				g.pause(t)
			}
			access := g.stdout.String()
			if strings.Contains(access, sig) {
				t.Errorf("the %s access log carries the signature:\n%s", format, access)
			}
			marker := "gh_signature=" + signer.RedactedSignature
			wantMarked := 3 // the Referer, the unprotected path, the unknown host
			if format == "json" {
				wantMarked = 1 // the json log has the path without its query
				for line := range strings.Lines(access) {
					var v map[string]any
					if err := json.Unmarshal([]byte(line), &v); err != nil {
						t.Errorf("json access line %q: %v", line, err)
					}
				}
			}
			if n := strings.Count(access, marker); n != wantMarked {
				t.Errorf("the %s access log shows %q %d times, want %d:\n%s", format, marker, n, wantMarked, access)
			}
			if log := g.stderr.String(); strings.Contains(log, sig) {
				t.Errorf("the gateway's log carries the signature:\n%s", log)
			}
		})
	}
}
