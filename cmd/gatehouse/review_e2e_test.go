package main

// End-to-end tests of the gaps an outside security review found in path
// prefixes, client identity headers, jails and path hygiene,
// through the real binary.

import (
	"bufio"
	"fmt"
	"gatehouse/rules/testenv"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gatehouse/middleware"
)

// rawGet sends GET with the request target written exactly as rawPath
// (no cleaning, no escaping) and the given headers, on a fresh connection,
// and returns the status and body.
func rawGet(t *testing.T, g *gateway, host, rawPath string, header http.Header) (int, []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", g.httpAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(clientTimeout)); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", rawPath, host)
	for k, vs := range header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, rawPath, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s%s: read body: %v", host, rawPath, err)
	}
	return resp.StatusCode, body
}

// bcryptFile writes an htpasswd file with one bcrypt user, by Apache's
// htpasswd.
func bcryptFile(t *testing.T, user, pass string) string {
	t.Helper()
	htpasswd := testenv.Tool(t, "htpasswd")
	path := filepath.Join(t.TempDir(), "users.htpasswd")
	if out, err := exec.Command(htpasswd, "-cbB", "-C", "5", path, user, pass).CombinedOutput(); err != nil {
		t.Fatalf("htpasswd: %v\n%s", err, out)
	}
	return path
}

// TestPrefixCoversDirectoryWithoutSlash: a path list entry ending in "/"
// covers the path without that slash, in every form the canonical view
// folds, for basic_auth, probes, hotlink and signed links alike.
func TestPrefixCoversDirectoryWithoutSlash(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	users := bcryptFile(t, "alice", "wonderland")
	key := writeFile(t, "link.key", "0123456789abcdef0123456789abcdef0123456789abcdef")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`probes:
  paths: ["/old-admin/"]
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
		{"app.test", "/admin", nil, 401},
		{"app.test", "/admin?x=1", nil, 401},
		{"app.test", "/admin;x", nil, 401},
		{"app.test", "/admin.", nil, 401},
		{"app.test", "/admin%20", nil, 401},
		{"app.test", "/ADMIN", nil, 401},
		{"app.test", "//admin", nil, 401},
		{"app.test", "/x/../admin", nil, 401},
		{"app.test", "/admin/", nil, 401},
		{"app.test", "/administrator", nil, 200},
		{"app.test", "/old-admin", nil, 403},
		{"app.test", "/Old-Admin.", nil, 403},
		{"app.test", "/old-administrator", nil, 200},
		{"media.test", "/videos", foreign, 403},
		{"media.test", "/videos;x", foreign, 403},
		{"media.test", "/videos/a.mp4", foreign, 403},
		{"media.test", "/videos2", foreign, 200},
		{"media.test", "/videos", nil, 200},
		{"media.test", "/paid", nil, 403},
		{"media.test", "/paid?x=1", nil, 403},
		{"media.test", "/PAID.", nil, 403},
		{"media.test", "/paidx", nil, 200},
	} {
		if got, body := rawGet(t, g, tc.host, tc.path, tc.header); got != tc.want {
			t.Errorf("GET %s%s = %d, want %d (%q)", tc.host, tc.path, got, tc.want, body)
		}
	}
	// And with the password, /admin is served.
	req, err := g.newRequest(t.Context(), http.MethodGet, "app.test", "/admin", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("alice", "wonderland")
	if resp, body := g.mustDo(t, req); resp.StatusCode != 200 {
		t.Errorf("GET app.test/admin with a login = %d, want 200 (%q)", resp.StatusCode, body)
	}
}

// TestClientIdentityHeadersStripped: no client identity header reaches an
// upstream, in any spelling, unless the host lists it in pass_client; and
// check refuses a pass_client entry that is not such a header.
func TestClientIdentityHeadersStripped(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [app.test]
    upstreams: [%[1]s]
  - match: [cdn.test]
    upstreams: [%[1]s]
    headers: {pass_client: [CF-Connecting-IP, x-http-method-override]}
`, up.URL())))
	sent := http.Header{}
	for _, name := range middleware.ClientIdentityHeaders {
		sent[http.CanonicalHeaderKey(name)] = []string{"spoofed"}
	}
	// The "_" and "." spellings CGI, PHP and WSGI fold into the same name.
	sent["X_Http_Method_Override"] = []string{"DELETE"}
	sent["Cf.Connecting.Ip"] = []string{"198.51.100.1"}
	sent["Remote_User"] = []string{"root"}
	norm := func(k string) string { return strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(k)) }
	for _, tc := range []struct {
		host string
		pass []string
	}{{"app.test", nil}, {"cdn.test", []string{"cf-connecting-ip", "x-http-method-override"}}} {
		code, body := rawGet(t, g, tc.host, "/", sent)
		if code != 200 {
			t.Fatalf("GET %s/ = %d, want 200 (%q)", tc.host, code, body)
		}
		e := decodeEcho(t, body)
		got := map[string]bool{}
		for k := range e.Header {
			n := norm(k)
			for _, name := range middleware.ClientIdentityHeaders {
				if n == name {
					got[name] = true
				}
			}
		}
		for _, name := range middleware.ClientIdentityHeaders {
			want := false
			for _, p := range tc.pass {
				want = want || p == name
			}
			if got[name] != want {
				t.Errorf("%s: upstream got %s = %v, want %v", tc.host, name, got[name], want)
			}
		}
		if e.Method != http.MethodGet {
			t.Errorf("%s: upstream saw method %q, want GET", tc.host, e.Method)
		}
	}

	bad := writeFile(t, "bad.yaml", fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
hosts:
  - match: [app.test]
    upstreams: [%s]
    headers:
      pass_client: [X-Forwarded-For]
`, up.URL()))
	_, errOut, code := runGatehouse(t, "check", "-c", bad)
	if code != 2 || !strings.Contains(errOut, "bad.yaml:6: hosts[0].headers.pass_client[0]") ||
		!strings.Contains(errOut, "not a client identity header") {
		t.Errorf("check with pass_client [X-Forwarded-For] = %d, %q; want 2 and the field at line 6", code, errOut)
	}
}

// TestTrustedProxyNeverBanned: a request whose X-Forwarded-For names a
// zoned address is attributed to the trusted proxy that sent it, and
// neither its probes nor a manual ban ban the proxy, which would cut off
// every client behind it.
func TestTrustedProxyNeverBanned(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
%strusted_proxies: [127.0.0.0/8]
probes:
  paths: ["/probe"]
jails:
  probes: {maxretry: 2, findtime: 10m, bantime: 1h}
hosts:
  - match: [app.test]
    upstreams: [%s]
`, opsAdmin, up.URL()))
	zoned := http.Header{"X-Forwarded-For": {"2001:db8::9%eth0"}}
	code, body := rawGet(t, g, "app.test", "/", zoned)
	if code != 200 {
		t.Fatalf("GET / with a zoned XFF = %d, want 200 (%q)", code, body)
	}
	if got := decodeEcho(t, body).Header.Get("X-Real-Ip"); got != "127.0.0.1" {
		t.Errorf("X-Real-IP for a zoned XFF entry = %q, want the proxy 127.0.0.1", got)
	}
	for range 4 {
		if code, _ := rawGet(t, g, "app.test", "/probe", zoned); code != 403 {
			t.Fatalf("probe = %d, want 403", code)
		}
		if code, _ := rawGet(t, g, "app.test", "/probe", nil); code != 403 {
			t.Fatalf("probe from the proxy itself = %d, want 403", code)
		}
	}
	if code, body := rawGet(t, g, "app.test", "/", http.Header{"X-Forwarded-For": {"198.51.100.7"}}); code != 200 {
		t.Errorf("a client behind the proxy after its probes = %d, want 200 (%q)", code, body)
	}
	// A client behind it is banned as usual.
	for range 2 {
		rawGet(t, g, "app.test", "/probe", http.Header{"X-Forwarded-For": {"198.51.100.66"}})
	}
	if code, _ := rawGet(t, g, "app.test", "/", http.Header{"X-Forwarded-For": {"198.51.100.66"}}); code != 403 {
		t.Errorf("the probing client behind the proxy = %d, want 403 (banned)", code)
	}
	// The gateway refuses these (exit 1); a zone is refused by the CLI
	// before it asks (exit 2).
	for _, tc := range []struct {
		target string
		code   int
		want   string
	}{
		{"127.0.0.1", 1, "gatehouse bans add: 127.0.0.1/32 overlaps the allow list"},
		{"0.0.0.0/0", 1, "gatehouse bans add: 0.0.0.0/0 would ban every address"},
		{"::/0", 1, "gatehouse bans add: ::/0 would ban every address"},
		{"fe80::1%eth0", 2, `gatehouse bans add: "fe80::1%eth0" has a zone`},
	} {
		_, errOut, code := runGatehouse(t, "bans", "add", tc.target, "--admin", "http://"+g.adminAddr, "--token", "ops-token")
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("bans add %s (a trusted proxy, everyone, a zone) = %d, %q; want %d and %q", tc.target, code, errOut, tc.code, tc.want)
		}
	}
}

// TestReloadKeepsJailCounts: a reload that changes a jail's settings
// keeps the offences counted so far, judged under the new settings.
func TestReloadKeepsJailCounts(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	cfg := func(maxretry int, bantime string) string {
		return gatewayConfig(fmt.Sprintf(`trusted_proxies: [127.0.0.0/8]
probes:
  paths: ["/probe"]
jails:
  probes: {maxretry: %d, findtime: 10m, bantime: %s}
hosts:
  - match: [app.test]
    upstreams: [%s]
`, maxretry, bantime, up.URL()))
	}
	g := startGateway(t, cfg(3, "1h"))
	client := http.Header{"X-Forwarded-For": {"198.51.100.20"}}
	for range 2 {
		rawGet(t, g, "app.test", "/probe", client)
	}
	if got := g.reload(t, cfg(4, "2h")); got != "ok" {
		t.Fatalf("reload = %s, want ok", got)
	}
	if code, _ := rawGet(t, g, "app.test", "/", client); code != 200 {
		t.Fatalf("after two probes and the reload = %d, want 200 (not banned yet)", code)
	}
	for range 2 {
		rawGet(t, g, "app.test", "/probe", client)
	}
	if code, _ := rawGet(t, g, "app.test", "/", client); code != 403 {
		t.Errorf("after 2 probes, a reload to maxretry 4 and 2 more probes = %d, want 403 (banned)", code)
	}
}

// TestMalformedPathIsProbe: a request refused for its path costs an
// offence in the probes jail, so a scanner sending only malformed paths is
// banned too.
func TestMalformedPathIsProbe(t *testing.T) {
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
	client := http.Header{"X-Forwarded-For": {"198.51.100.30"}}
	for _, p := range []string{"/a%00", "/../../etc/passwd", "/..%2F..%2Fetc/passwd"} {
		if code, _ := rawGet(t, g, "app.test", p, client); code != 400 {
			t.Fatalf("GET %s = %d, want 400", p, code)
		}
	}
	if code, _ := rawGet(t, g, "app.test", "/", client); code != 403 {
		t.Errorf("after three malformed paths = %d, want 403 (banned by the probes jail)", code)
	}
	if code, _ := rawGet(t, g, "app.test", "/", http.Header{"X-Forwarded-For": {"198.51.100.31"}}); code != 200 {
		t.Errorf("another client = %d, want 200", code)
	}
}

// TestNTFSStreamPaths: paths with NTFS alternate data stream syntax are
// refused unless the host allows it.
func TestNTFSStreamPaths(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`probes:
  presets: [vcs, secrets]
jails:
  probes: {maxretry: 1000, findtime: 10m, bantime: 1m}
hosts:
  - match: [app.test]
    upstreams: [%[1]s]
  - match: [legacy.test]
    upstreams: [%[1]s]
    allow_stream_syntax: true
`, up.URL())))
	for _, p := range []string{"/.git::$INDEX_ALLOCATION/config", "/web.config::$DATA", "/web.config:x:$DATA",
		"/web.config%3A%3A%24DATA", "/a/web.config;p::$DATA"} {
		if code, body := rawGet(t, g, "app.test", p, nil); code != 400 {
			t.Errorf("GET app.test%s = %d, want 400 (%q)", p, code, body)
		}
	}
	code, body := rawGet(t, g, "legacy.test", "/price::$5", nil)
	if code != 200 {
		t.Fatalf("GET legacy.test/price::$5 = %d, want 200 (%q)", code, body)
	}
	if got := decodeEcho(t, body).URI; got != "/price::$5" {
		t.Errorf("upstream got %q, want /price::$5", got)
	}
	// The loosening is only for what it names.
	if code, _ := rawGet(t, g, "legacy.test", "/a%00", nil); code != 400 {
		t.Errorf("GET legacy.test/a%%00 = %d, want 400", code)
	}
}

// TestReloadKeepsFloodBuckets: a reload that leaves a flood jail's limits
// alone gives a client that used up its burst no fresh one.
func TestReloadKeepsFloodBuckets(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	cfg := func(extraHost string) string {
		return gatewayConfig(fmt.Sprintf(`trusted_proxies: [127.0.0.0/8]
jails:
  flood: {rate: 0.01, burst: 2, maxretry: 1000, findtime: 10m, bantime: 1m}
hosts:
  - match: [app.test]
    upstreams: [%[1]s]
%[2]s`, up.URL(), extraHost))
	}
	g := startGateway(t, cfg(""))
	client := http.Header{"X-Forwarded-For": {"198.51.100.40"}}
	for range 2 {
		if code, _ := rawGet(t, g, "app.test", "/", client); code != 200 {
			t.Fatalf("within the burst = %d, want 200", code)
		}
	}
	if code, _ := rawGet(t, g, "app.test", "/", client); code != 429 {
		t.Fatalf("over the burst = %d, want 429", code)
	}
	if got := g.reload(t, cfg("  - match: [other.test]\n    upstreams: ["+up.URL()+"]\n")); got != "ok" {
		t.Fatalf("reload = %s, want ok", got)
	}
	if code, _ := rawGet(t, g, "app.test", "/", client); code != 429 {
		t.Errorf("after a reload that kept the flood limits = %d, want 429 (no fresh burst)", code)
	}
}

// TestFramingRefusalIsProbe: a request the framing guard refuses
// (Content-Length with Transfer-Encoding, a malformed chunked body) is an
// offence against its peer in the probes jail, like Hygiene's 400s.
func TestFramingRefusalIsProbe(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`probes:
  presets: [common]
jails:
  probes: {maxretry: 2, findtime: 10m, bantime: 1h}
hosts:
  - match: [app.test]
    upstreams: [%s]
`, up.URL())))
	send := func(from, req string) int { return sendFrom(t, from, g.httpAddr, req) }
	const (
		smuggle = "POST / HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
		badBody = "POST / HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n"
		plain   = "GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n"
	)
	if code := send("127.0.0.5", smuggle); code != 400 {
		t.Fatalf("CL+TE = %d, want 400", code)
	}
	// The guard reads the body ahead of the handler, so the second
	// offence may ban the peer before its request is answered: 403.
	if code := send("127.0.0.5", badBody); code != 400 && code != 403 {
		t.Fatalf("0x chunk size = %d, want 400 or 403", code)
	}
	if code := send("127.0.0.5", plain); code != 403 {
		t.Errorf("after two framing refusals = %d, want 403 (banned by the probes jail)", code)
	}
	if code := send("127.0.0.6", plain); code != 200 {
		t.Errorf("another peer = %d, want 200", code)
	}
}

// TestReloadSoakKeepsCounts: scanners probing while the config is
// reloaded with new jail settings, reloads racing the probes, are all
// banned (without the hand-over of counts, 12 of 300 scanners ended
// unbanned under 18 reloads).
func TestReloadSoakKeepsCounts(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	cfg := func(bantime int) string {
		return gatewayConfig(fmt.Sprintf(`trusted_proxies: [127.0.0.0/8]
probes:
  paths: ["/probe"]
jails:
  probes: {maxretry: 3, findtime: 10m, bantime: %dh}
hosts:
  - match: [app.test]
    upstreams: [%s]
`, bantime, up.URL()))
	}
	g := startGateway(t, cfg(1))
	const scanners = 60
	xff := func(i int) http.Header {
		return http.Header{"X-Forwarded-For": {fmt.Sprintf("198.51.100.%d", 100+i)}}
	}
	for round := range 3 {
		if err := os.WriteFile(g.cfgPath, []byte(cfg(2+round)), 0o600); err != nil {
			t.Fatal(err)
		}
		g.signal(syscall.SIGHUP) // not waited for: the reload races the probes
		for i := range scanners {
			if code, _ := rawGet(t, g, "app.test", "/probe", xff(i)); code != 403 {
				t.Fatalf("round %d, scanner %d: probe = %d, want 403", round, i, code)
			}
		}
	}
	unbanned := 0
	for i := range scanners {
		if code, _ := rawGet(t, g, "app.test", "/", xff(i)); code != 403 {
			unbanned++
		}
	}
	if unbanned > 0 {
		t.Errorf("%d of %d scanners unbanned after 3 probes each across 3 reloads, want 0", unbanned, scanners)
	}
	if ok, failed := g.reloads(t); ok == 0 || failed != 0 {
		t.Errorf("reloads ok %v, failed %v; want some ok and none failed", ok, failed)
	}
}
