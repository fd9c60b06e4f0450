package main

// End-to-end tests, through the real binary, of attacks on the gateway's
// rules and of legitimate clients the rules must not ban.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRedteamOAuth2ProxyHeadersStripped: oauth2-proxy sets
// X-Auth-Request-Groups and X-Auth-Request-Access-Token beside the
// -User, -Email and -Preferred-Username ones gatehouse strips; an app
// that was behind nginx auth_request + oauth2-proxy maps roles from the
// groups header, so a client-sent one is a privilege escalation. Cloudflare
// sends the client address of an IPv6 client in CF-Connecting-IPv6 (pseudo
// IPv4), the sibling of CF-Connecting-IP.
func TestRedteamOAuth2ProxyHeadersStripped(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [app.test]
    upstreams: [%s]
`, up.URL())))
	sent := http.Header{
		"X-Auth-Request-Groups":       {"admins"},
		"X_auth_request_groups":       {"admins"},
		"X-Auth-Request-Access-Token": {"forged"},
		"Cf-Connecting-Ipv6":          {"2001:db8::1"},
	}
	code, body := rawGet(t, g, "app.test", "/", sent)
	if code != 200 {
		t.Fatalf("GET / = %d, want 200 (%q)", code, body)
	}
	for k := range decodeEcho(t, body).Header {
		n := strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(k))
		switch n {
		case "x-auth-request-groups", "x-auth-request-access-token", "cf-connecting-ipv6":
			t.Errorf("upstream got client-sent %s", k)
		}
	}
}

// TestRedteamBrowserPathsAreNotProbes: every Hygiene 400 is an offence
// for the probes jail, but not every refused path is one no
// browser sends. encodeURIComponent puts "%2F" in a path segment
// ("/tags/c%2Fc%2B%2B"), old Latin-1 links carry "%E9" ("/caf%E9.html"),
// and "..." is a file name browsers send as written (only "." and ".."
// are dot segments). A visitor who clicks three such links on a site
// whose probes jail has maxretry 3 (the example config) is banned from
// the whole site. The 400 stays; the ban must not follow.
func TestRedteamBrowserPathsAreNotProbes(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`trusted_proxies: [127.0.0.0/8]
probes:
  presets: [common]
jails:
  probes: {maxretry: 3, findtime: 10m, bantime: 1h}
hosts:
  - match: [app.test]
    upstreams: [%s]
`, up.URL())))
	visitor := http.Header{"X-Forwarded-For": {"198.51.100.60"}}
	for _, p := range []string{"/tags/c%2Fc%2B%2B", "/caf%E9.html", "/wiki/..."} {
		if code, _ := rawGet(t, g, "app.test", p, visitor); code != 400 {
			t.Fatalf("GET %s = %d, want 400", p, code)
		}
	}
	if code, _ := rawGet(t, g, "app.test", "/", visitor); code != 200 {
		t.Errorf("a visitor who followed three links a browser sends as written = %d, want 200 (not banned)", code)
	}
}

// TestRedteamEncodedSlashSignedLinks: hosts[].allow_encoded_slash keeps
// "%2F" inside a segment, so "/paid%2Fmovie.mp4" is not under
// signed_links.paths "/paid/" — and an upstream that decodes %2F (Go's
// ServeMux, Django, Flask, Apache with AllowEncodedSlashes On) serves
// /paid/movie.mp4 without a signature. docs/request-hygiene.md warns against the
// combination only for basic_auth.paths and hotlink, and `gatehouse check`
// accepts it silently. Either the config is refused, or the link rule
// covers the %2F-decoded reading of the path too.
func TestRedteamEncodedSlashSignedLinks(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	key := writeFile(t, "link.key", "0123456789abcdef0123456789abcdef0123456789abcdef")
	cfg := gatewayConfig(fmt.Sprintf(`hosts:
  - match: [media.test]
    upstreams: [%s]
    allow_encoded_slash: true
    signed_links: {paths: ["/paid/"], key: "file:%s"}
`, up.URL(), key))
	if _, _, code := runGatehouse(t, "check", "-c", writeFile(t, "gatehouse.yaml", cfg)); code == 2 {
		return // the combination is refused: fixed that way
	}
	g := startGateway(t, cfg)
	for _, p := range []string{"/paid/movie.mp4", "/paid%2Fmovie.mp4", "/x%2F..%2Fpaid/movie.mp4"} {
		if code, body := rawGet(t, g, "media.test", p, nil); code != 403 {
			t.Errorf("GET media.test%s without a signature = %d, want 403 (%q)", p, code, body)
		}
	}
}

// TestRedteamNetworkPathTarget: "GET //evil/admin" is a legal
// origin-form target whose path is "//evil/admin", and gatehouse matches
// its rules on "/evil/admin". But Node's documented idiom
// new URL(req.url, base), Python's urlsplit and PHP's parse_url read a
// target starting with "//" as a network-path reference: host "evil",
// path "/admin". Such an upstream serves /admin, /.env or /paid/… past
// basic_auth.paths, the probe rules, signed_links.paths and hotlink.paths.
// Every rule must also cover the path after the "//authority".
func TestRedteamNetworkPathTarget(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	users := bcryptFile(t, "alice", "wonderland")
	key := writeFile(t, "link.key", "0123456789abcdef0123456789abcdef0123456789abcdef")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`probes:
  presets: [common, secrets, wordpress]
jails:
  probes: {maxretry: 1000, findtime: 10m, bantime: 1m}
hosts:
  - match: [app.test]
    upstreams: [%[1]s]
    basic_auth: {realm: Admin, htpasswd: %[2]s, paths: ["/admin/"]}
  - match: [media.test]
    upstreams: [%[1]s]
    hotlink: {paths: ["/videos/"], allow: [none, media.test]}
    signed_links: {paths: ["/paid/"], key: "file:%[3]s"}
`, up.URL(), users, key)))
	foreign := http.Header{"Referer": {"https://evil.test/page"}}
	for _, tc := range []struct {
		host, path string
		header     http.Header
		want       int
	}{
		{"app.test", "//evil.test/admin", nil, 401},
		{"app.test", "//evil.test/admin/users", nil, 401},
		{"app.test", "///evil.test/admin", nil, 401},
		{"app.test", "//u@evil.test:1/ADMIN", nil, 401},
		{"app.test", "//evil.test/.env", nil, 403},
		{"app.test", "//evil.test/wp-login.php", nil, 403},
		{"app.test", "//evil.test/old/../wp-login.php", nil, 403},
		{"media.test", "//evil.test/paid/movie.mp4", nil, 403},
		{"media.test", "//evil.test/videos/a.mp4", foreign, 403},
		// What no reader serves as a protected path stays open.
		{"app.test", "//evil.test/public", nil, 200},
		{"app.test", "//static/css/site.css", nil, 200},
	} {
		if got, body := rawGet(t, g, tc.host, tc.path, tc.header); got != tc.want {
			t.Errorf("GET %s%s = %d, want %d (%q)", tc.host, tc.path, got, tc.want, body)
		}
	}
}

// sendFrom writes req on a new TCP connection from the loopback address
// from to addr and returns the answer's status (0: no answer).
func sendFrom(t *testing.T, from, addr, req string) int {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(clientTimeout)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRedteamAdminLockoutSurvivesOtherBans: a client the admin jail
// banned for guessing tokens is locked out of the admin listener only
// while the one ban the ban list holds for its address is the admin
// jail's. Any later ban of the same address replaces it: one
// framing refusal on the public listener (counted before the ban guard)
// has the probes jail ban it, or the operator bans the attacker by hand
// for longer — and either lifts the lockout, while the admin jail, seeing
// a client "serving a ban", no longer counts its guesses. The token
// guessing goes on unbounded.
func TestRedteamAdminLockoutSurvivesOtherBans(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
allow: [192.0.2.0/24]
admin:
  listen: "127.0.0.1:0"
  tokens:
    - name: ops
      token: sha256:%s
      scopes: [bans:read, bans:write]
hosts:
  - match: [www.test]
    upstreams: [%s]
probes:
  presets: [common]
jails:
  probes: {maxretry: 1, findtime: 10m, bantime: 1h}
  admin: {maxretry: 1, findtime: 10m, bantime: 1h}
`, tokenDigest("ops-token"), up.URL()))
	guess := func(from string) int {
		t.Helper()
		return sendFrom(t, from, g.adminAddr, "GET /v1/bans HTTP/1.1\r\nHost: "+g.adminAddr+
			"\r\nAuthorization: Bearer guessed-token\r\nConnection: close\r\n\r\n")
	}
	lockOut := func(from string) {
		t.Helper()
		if code := guess(from); code != http.StatusUnauthorized {
			t.Fatalf("%s: first wrong token = %d, want 401", from, code)
		}
		g.waitLog(t, waitTimeout, from+" banned by the admin jail", func(log string) bool {
			return strings.Contains(log, "ip="+from) && strings.Contains(log, "jail=admin")
		})
		if code := guess(from); code != http.StatusForbidden {
			t.Fatalf("%s: after the admin jail's ban = %d, want 403", from, code)
		}
	}

	// A framing refusal has the probes jail ban the attacker again.
	lockOut("127.0.0.7")
	smuggle := "POST / HTTP/1.1\r\nHost: www.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
	if code := sendFrom(t, "127.0.0.7", g.httpAddr, smuggle); code != http.StatusBadRequest {
		t.Fatalf("CL+TE = %d, want 400", code)
	}
	g.waitLog(t, waitTimeout, "127.0.0.7 banned by the probes jail", func(log string) bool {
		return strings.Contains(log, "ip=127.0.0.7") && strings.Contains(log, "jail=probes")
	})
	for i := range 3 {
		if code := guess("127.0.0.7"); code != http.StatusForbidden {
			t.Errorf("guess %d after a probes-jail ban on top of the admin jail's = %d, want 403 (still locked out)", i, code)
		}
	}

	// The operator bans the attacker by hand for a week.
	lockOut("127.0.0.8")
	if code, v := g.adminDo(t, "POST", "/v1/bans", "ops-token", `{"ip":"127.0.0.8","duration":"168h","reason":"token guessing"}`,
		map[string]string{"Content-Type": "application/json"}); code != http.StatusCreated {
		t.Fatalf("manual ban = %d %v, want 201", code, v)
	}
	for i := range 3 {
		if code := guess("127.0.0.8"); code != http.StatusForbidden {
			t.Errorf("guess %d after a manual ban on top of the admin jail's = %d, want 403 (still locked out)", i, code)
		}
	}
}

// TestRedteamJavaHTTPClientNotBanned: the JDK's java.net.http.HttpClient
// (Java 11+) defaults to HTTP/2 and, for an http:// URL, asks for it with
// "Upgrade: h2c" on its first request to a host; so does curl --http2.
// gatehouse answers 400 (h2c smuggling), and every Hygiene 400 is a
// probes offence: an internal Java service calling an API
// through the gateway's http listener is banned after maxretry calls.
// An h2c upgrade offer is a client library's default, not a probe.
func TestRedteamJavaHTTPClientNotBanned(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`probes:
  presets: [common]
jails:
  probes: {maxretry: 3, findtime: 10m, bantime: 1h}
hosts:
  - match: [api.test]
    upstreams: [%s]
`, up.URL())))
	jdk := "GET /v1/orders HTTP/1.1\r\nConnection: Upgrade, HTTP2-Settings\r\nContent-Length: 0\r\nHost: api.test\r\n" +
		"HTTP2-Settings: AAEAAEAAAAIAAAABAAMAAABkAAQBAAAAAAUAAEAA\r\nUpgrade: h2c\r\nUser-Agent: Java-http-client/21.0.5\r\n\r\n"
	for range 3 {
		if code := sendFrom(t, "127.0.0.9", g.httpAddr, jdk); code == 0 {
			t.Fatal("no answer to the JDK's request")
		}
	}
	plain := "GET /v1/orders HTTP/1.1\r\nHost: api.test\r\nUser-Agent: Java-http-client/21.0.5\r\nConnection: close\r\n\r\n"
	if code := sendFrom(t, "127.0.0.9", g.httpAddr, plain); code != http.StatusOK {
		t.Errorf("after three requests of the JDK's HttpClient = %d, want 200 (not banned)", code)
	}
}

// TestRedteamHTTP10WithoutHostNotBanned: HTTP/1.0 does not require Host
// (RFC 9112 §3.2 asks it of HTTP/1.1 clients), and monitoring checks send
// none: Nagios/Icinga check_http without -H, HAProxy's option httpchk.
// nginx answers them from its default server. gatehouse refuses them
// with 400, which is a probes offence: the monitoring
// host is banned after maxretry checks, and then sees 403 everywhere.
func TestRedteamHTTP10WithoutHostNotBanned(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`probes:
  presets: [common]
jails:
  probes: {maxretry: 3, findtime: 10m, bantime: 1h}
hosts:
  - match: [www.test]
    upstreams: [%s]
`, up.URL())))
	check := "GET / HTTP/1.0\r\nUser-Agent: check_http/v2.3.3 (monitoring-plugins 2.3.3)\r\nConnection: close\r\n\r\n"
	for range 3 {
		if code := sendFrom(t, "127.0.0.10", g.httpAddr, check); code == 0 {
			t.Fatal("no answer to an HTTP/1.0 check without Host")
		}
	}
	plain := "GET / HTTP/1.1\r\nHost: www.test\r\nConnection: close\r\n\r\n"
	if code := sendFrom(t, "127.0.0.10", g.httpAddr, plain); code != http.StatusOK {
		t.Errorf("after three HTTP/1.0 checks without Host = %d, want 200 (not banned)", code)
	}
}

// TestRedteamRulesTestCountsMalformedPaths: `gatehouse rules test`
// (fail2ban-regex for gatehouse) must predict the bans the gateway would
// make. A path the gateway refuses with 400 that no
// browser sends is a probes offence, and a probe behind a "//authority"
// is a probe; the
// replay counted neither, so an admin tuning maxretry on a real log saw
// "Bans that would follow: 0" for clients the gateway bans.
func TestRedteamRulesTestCountsMalformedPaths(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, "gatehouse.yaml", `hosts:
  - match: [www.example.com]
    upstreams: [http://127.0.0.1:1]
probes: {presets: [wordpress]}
jails:
  probes: {maxretry: 3, findtime: 10m, bantime: 1h}
`)
	log := writeFile(t, "access.log", ""+
		`203.0.113.1 - - [25/Nov/2026:10:00:00 +0000] "GET /a%00 HTTP/1.1" 400 0 "-" "x"`+"\n"+
		`203.0.113.1 - - [25/Nov/2026:10:00:01 +0000] "GET /../../etc/passwd HTTP/1.1" 400 0 "-" "x"`+"\n"+
		`203.0.113.1 - - [25/Nov/2026:10:00:02 +0000] "GET /..%2F..%2Fetc/passwd HTTP/1.1" 400 0 "-" "x"`+"\n"+
		// Refused, but a link can carry it as written: no offence.
		`203.0.113.3 - - [25/Nov/2026:10:00:02 +0000] "GET /tags/c%2Fc HTTP/1.1" 400 0 "-" "x"`+"\n"+
		`203.0.113.3 - - [25/Nov/2026:10:00:03 +0000] "GET /caf%E9.html HTTP/1.1" 400 0 "-" "x"`+"\n"+
		`203.0.113.3 - - [25/Nov/2026:10:00:04 +0000] "GET /wiki/... HTTP/1.1" 400 0 "-" "x"`+"\n"+
		`203.0.113.2 - - [25/Nov/2026:10:00:00 +0000] "GET //x/wp-login.php HTTP/1.1" 404 0 "-" "x"`+"\n"+
		`203.0.113.2 - - [25/Nov/2026:10:00:01 +0000] "GET //x/wp-login.php HTTP/1.1" 404 0 "-" "x"`+"\n"+
		`203.0.113.2 - - [25/Nov/2026:10:00:02 +0000] "GET //x/wp-login.php HTTP/1.1" 404 0 "-" "x"`+"\n")
	out, errOut, code := runGatehouse(t, "rules", "test", "-c", cfg, log)
	if code != 0 {
		t.Fatalf("rules test = %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"Bans that would follow: 2", "203.0.113.1/32", "203.0.113.2/32"} {
		if !strings.Contains(out, want) {
			t.Errorf("rules test output lacks %q:\n%s", want, out)
		}
	}
}

// TestRedteamBasicCredentialsNotLeakedOutsidePaths: with
// basic_auth.paths ["/admin/"] a browser that opens /admin (which the rule
// covers) and logs in caches the credentials for the directory of
// "/admin", which is "/" (RFC 7617 §2.2), and sends them preemptively with
// every request to the host. On paths outside basic_auth.paths gatehouse
// passes that Authorization header on, so with pass_authorization false
// the upstream still receives the user's password in clear, on every
// request but those under /admin/.
func TestRedteamBasicCredentialsNotLeakedOutsidePaths(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	users := bcryptFile(t, "alice", "wonderland")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [app.test]
    upstreams: [%s]
    basic_auth: {realm: Admin, htpasswd: %s, paths: ["/admin/"]}
`, up.URL(), users)))
	login := http.Header{"Authorization": {"Basic YWxpY2U6d29uZGVybGFuZA=="}} // alice:wonderland
	if code, body := rawGet(t, g, "app.test", "/admin", login); code != 200 {
		t.Fatalf("GET /admin with the login = %d, want 200 (%q)", code, body)
	}
	code, body := rawGet(t, g, "app.test", "/public/page", login)
	if code != 200 {
		t.Fatalf("GET /public/page = %d, want 200 (%q)", code, body)
	}
	if got := decodeEcho(t, body).Header.Get("Authorization"); got != "" {
		t.Errorf("upstream got the browser's cached gatehouse login on /public/page: Authorization %q", got)
	}
}
