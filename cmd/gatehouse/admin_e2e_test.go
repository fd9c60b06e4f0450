//go:build unix

package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The admin listener's rules, through the real binary: one
// Host rule for every path, cross-origin writes refused, 413 over the
// body bound, a field on every validation error, one duration cap,
// audit lines that name what a ban call asked for, token prefixes and
// S3 keys checked, and one lockout rule — only the admin jail's.

// adminE2EConfig has the ops token (bans and the dashboard), a signing
// token, a probe jail that bans at the first probe, an admin jail that
// bans at the first wrong token, and an allow list that leaves loopback
// out, so the test's own client can be banned.
func adminE2EConfig(t *testing.T, upstream string) string {
	t.Helper()
	dir := secretDir(t, map[string]string{"aws-id": "AKIDGATEHOUSEE2E", "aws-secret": "gatehouse-e2e-secret"})
	return fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
allow: [192.0.2.0/24]
admin:
  listen: "127.0.0.1:0"
  names: [admin.example.com]
  tokens:
    - name: ops
      token: sha256:d9310c002af91822beb0b3487d8b04f85bf6bf1f8a5496bff7d35fc7c5a29def
      scopes: [ui, bans:read, bans:write]
    - name: media
      token: sha256:%s
      scopes: [sign:s3]
      prefixes: [media/public]
hosts:
  - match: [www.test]
    upstreams: [%s]
probes:
  presets: [common, secrets]
jails:
  probes: {maxretry: 1, findtime: 10m, bantime: 1h}
  admin: {maxretry: 1, findtime: 10m, bantime: 1h}
signer:
  s3:
    region: eu-west-1
    endpoint: http://127.0.0.1:1
    path_style: true
    access_key_id: file:%[3]s/aws-id
    secret_access_key: file:%[3]s/aws-secret
`, tokenDigest("media-token"), upstream, dir)
}

// tokenDigest is the sha256: form of an admin token.
func tokenDigest(token string) string {
	d := sha256.Sum256([]byte(token))
	return hex.EncodeToString(d[:])
}

// rawAdmin sends one HTTP/1.1 request over its own TCP connection to the
// admin listener, with exactly the Host and headers given (a DNS
// rebinding page's request carries the attacker's name), and returns the
// status and body.
func (g *gateway) rawAdmin(t *testing.T, method, path, host string, header map[string]string, body string) (int, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", g.adminAddr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial admin listener: %v", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(clientTimeout)); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, path, host)
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	if _, chunked := header["Transfer-Encoding"]; !chunked && (body != "" || method == http.MethodPost) {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatalf("write request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s (Host %q): read response: %v", method, path, host, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, string(data)
}

// adminDo sends a request to the admin listener with the ordinary
// client (Host is the listener's address) and decodes a JSON object
// answer, if any.
func (g *gateway) adminDo(t *testing.T, method, path, token, body string, header map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+g.adminAddr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, b, err := g.do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	var v map[string]any
	if strings.HasPrefix(strings.TrimSpace(string(b)), "{") {
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s %s = %d %q: not JSON: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode, v
}

// TestAdminHostRule: /metrics, /v1 and /ui/ answer only Host headers
// naming the listener; a DNS rebinding page's name gets 421 (so that
// /metrics and /v1 never answer a rebinding page). /healthz and /readyz answer any.
func TestAdminHostRule(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, adminE2EConfig(t, up.URL()))
	_, port, _ := net.SplitHostPort(g.adminAddr)
	auth := map[string]string{"Authorization": "Bearer ops-token"}
	for _, tc := range []struct {
		name, method, path, host string
		header                   map[string]string
		want                     int
	}{
		{"metrics, rebinding name", "GET", "/metrics", "rebind.attacker.example:" + port, nil, http.StatusMisdirectedRequest},
		{"metrics, rebinding name resolving to loopback", "GET", "/metrics", "127.0.0.1.nip.io:" + port, nil, http.StatusMisdirectedRequest},
		{"bans, rebinding name with a token", "GET", "/v1/bans", "rebind.attacker.example:" + port, auth, http.StatusMisdirectedRequest},
		{"ban add, rebinding name with a token", "POST", "/v1/bans", "rebind.attacker.example", auth, http.StatusMisdirectedRequest},
		{"dashboard, rebinding name", "GET", "/ui/login", "rebind.attacker.example:" + port, nil, http.StatusMisdirectedRequest},
		{"metrics, listener address", "GET", "/metrics", g.adminAddr, nil, http.StatusOK},
		{"metrics, localhost on loopback", "GET", "/metrics", "localhost:" + port, nil, http.StatusOK},
		{"metrics, admin.names", "GET", "/metrics", "ADMIN.example.com.:" + port, nil, http.StatusOK},
		{"bans, listener address", "GET", "/v1/bans", g.adminAddr, auth, http.StatusOK},
		{"healthz, load balancer's name", "GET", "/healthz", "lb-target.internal", nil, http.StatusOK},
		{"readyz, rebinding name", "GET", "/readyz", "rebind.attacker.example", nil, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := ""
			if tc.method == http.MethodPost {
				body = `{"ip":"203.0.113.40"}`
			}
			code, answer := g.rawAdmin(t, tc.method, tc.path, tc.host, tc.header, body)
			if code != tc.want {
				t.Fatalf("%s %s with Host %q = %d %q, want %d", tc.method, tc.path, tc.host, code, answer, tc.want)
			}
			if code == http.StatusMisdirectedRequest && (!strings.Contains(answer, `"error"`) || strings.Contains(answer, "go_goroutines")) {
				t.Errorf("421 answer %q is not the JSON error alone", answer)
			}
		})
	}
	if code, body := g.rawAdmin(t, "GET", "/v1/bans", g.adminAddr, auth, ""); code != http.StatusOK || strings.Contains(body, "203.0.113.40") {
		t.Errorf("the rebinding page's ban went through: GET /v1/bans = %d %s", code, body)
	}
	g.waitLog(t, waitTimeout, "the audit line of a refused Host", func(log string) bool {
		return strings.Contains(log, `msg="admin request refused" component=audit method=GET path=/metrics host=rebind.attacker.example:`+port) &&
			strings.Contains(log, "status=421")
	})
}

// TestAdminCrossOrigin: a browser's cross-origin write to the API is
// refused with 403 before anything happens; the same call from curl or
// the CLI (no Origin) works.
func TestAdminCrossOrigin(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, adminE2EConfig(t, up.URL()))
	for _, tc := range []struct {
		name, method, path, body string
		header                   map[string]string
	}{
		{"ban from another origin", "POST", "/v1/bans", `{"ip":"203.0.113.41"}`, map[string]string{"Origin": "http://attacker.example"}},
		{"ban from another port of loopback", "POST", "/v1/bans", `{"ip":"203.0.113.41"}`, map[string]string{"Origin": "http://127.0.0.1:1"}},
		{"ban, cross-site fetch", "POST", "/v1/bans", `{"ip":"203.0.113.41"}`, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"sign from another origin", "POST", "/v1/sign/s3", `{"bucket":"media","key":"public/a"}`, map[string]string{"Origin": "http://attacker.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, v := g.adminDo(t, tc.method, tc.path, "ops-token", tc.body, tc.header)
			if code != http.StatusForbidden || !strings.Contains(fmt.Sprint(v["error"]), "cross-origin") {
				t.Fatalf("%s %s with %v = %d %v, want 403 cross-origin", tc.method, tc.path, tc.header, code, v)
			}
		})
	}
	if code, list := g.adminGetBody(t, "/v1/bans", "ops-token"); code != http.StatusOK || strings.Contains(list, "203.0.113.41") {
		t.Fatalf("GET /v1/bans = %d %s, want 200 without the cross-origin ban", code, list)
	}
	// A same-origin write (the listener's own origin) and one without
	// Origin work.
	if code, v := g.adminDo(t, "POST", "/v1/bans", "ops-token", `{"ip":"203.0.113.42"}`, map[string]string{"Origin": "http://" + g.adminAddr}); code != http.StatusCreated {
		t.Errorf("same-origin ban = %d %v, want 201", code, v)
	}
	if code, v := g.adminDo(t, "DELETE", "/v1/bans/203.0.113.42", "ops-token", "", map[string]string{"Origin": "http://attacker.example"}); code != http.StatusForbidden {
		t.Errorf("cross-origin unban = %d %v, want 403", code, v)
	}
	if code, v := g.adminDo(t, "DELETE", "/v1/bans/203.0.113.42", "ops-token", "", nil); code != http.StatusNoContent {
		t.Errorf("unban without Origin = %d %v, want 204", code, v)
	}
}

// adminGetBody GETs path on the admin listener with token and returns
// status and body.
func (g *gateway) adminGetBody(t *testing.T, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+g.adminAddr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, b := g.mustDo(t, req)
	return resp.StatusCode, string(b)
}

// TestAdminBodyFieldsAndCap: a body over 64 KiB is 413 (it was
// 400); every validation error names its field, an unknown one
// included; a duration over ten years is refused as a string ("100000d"
// slipped past the cap) as it is as a number, through the API and the
// CLI; the audit line of each ban call names its target, duration and
// result, refused ones included.
func TestAdminBodyFieldsAndCap(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, adminE2EConfig(t, up.URL()))
	big := `{"ip":"203.0.113.43","reason":"` + strings.Repeat("x", 70<<10) + `"}`
	for _, tc := range []struct {
		name, path, token, body string
		want                    int
		wantField, wantErr      string
	}{
		{"oversized ban", "/v1/bans", "ops-token", big, 413, "body", "over the limit"},
		{"oversized sign", "/v1/sign/s3", "media-token", `{"bucket":"media","key":"public/` + strings.Repeat("k", 70<<10) + `"}`, 413, "body", "over the limit"},
		{"unknown field", "/v1/bans", "ops-token", `{"ip":"203.0.113.44","forever":true}`, 400, "forever", "unknown field"},
		{"unknown sign field", "/v1/sign/s3", "media-token", `{"bucket":"media","key":"public/a","acl":"public-read"}`, 400, "acl", "unknown field"},
		{"not JSON", "/v1/bans", "ops-token", `ip=203.0.113.44`, 400, "body", "invalid JSON"},
		{"duration string over the cap", "/v1/bans", "ops-token", `{"ip":"203.0.113.45","duration":"100000d"}`, 400, "duration", "maximum ban of 3650d"},
		{"duration number over the cap", "/v1/bans", "ops-token", `{"ip":"203.0.113.45","duration":8640000000}`, 400, "duration", "maximum ban of 3650d"},
		{"allow-listed", "/v1/bans", "ops-token", `{"ip":"192.0.2.7","duration":"2h"}`, 422, "ip", "allow list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, v := g.adminDo(t, "POST", tc.path, tc.token, tc.body, nil)
			if code != tc.want || v["field"] != tc.wantField || !strings.Contains(fmt.Sprint(v["error"]), tc.wantErr) {
				t.Fatalf("POST %s = %d %v, want %d with field %q and an error containing %q", tc.path, code, v, tc.want, tc.wantField, tc.wantErr)
			}
		})
	}
	// A chunked body announces no length: the bound is found while
	// reading, and the answer is 413 all the same.
	chunk := `{"ip":"203.0.113.48","reason":"` + strings.Repeat("x", 70<<10) + `"}`
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(chunk), chunk)
	if code, answer := g.rawAdmin(t, "POST", "/v1/bans", g.adminAddr, map[string]string{"Authorization": "Bearer ops-token", "Transfer-Encoding": "chunked"}, chunked); code != http.StatusRequestEntityTooLarge || !strings.Contains(answer, `"field":"body"`) {
		t.Errorf("chunked oversized ban = %d %q, want 413 with field body", code, answer)
	}
	if _, list := g.adminGetBody(t, "/v1/bans", "ops-token"); strings.Contains(list, "203.0.113.45") || strings.Contains(list, "203.0.113.48") {
		t.Errorf("a ban over the cap went through: %s", list)
	}
	admin := "http://" + g.adminAddr
	if _, errOut, code := runGatehouse(t, "bans", "add", "203.0.113.46", "--for", "100000d", "--admin", admin, "--token", "ops-token"); code != 2 || !strings.Contains(errOut, `gatehouse bans add: --for: "100000d" is more than the maximum ban`) {
		t.Errorf("bans add --for 100000d = %d, %q; want 2 and the gateway's cap on --for", code, errOut)
	}
	if out, errOut, code := runGatehouse(t, "bans", "add", "203.0.113.46", "--for", "3650d", "--admin", admin, "--token", "ops-token"); code != 0 {
		t.Errorf("bans add --for 3650d = %d, %q, %q; want 0", code, out, errOut)
	}
	if code, v := g.adminDo(t, "POST", "/v1/bans", "media-token", `{"ip":"203.0.113.47","duration":"1d"}`, nil); code != http.StatusForbidden {
		t.Errorf("ban with a signing token = %d %v, want 403", code, v)
	}
	if code, v := g.adminDo(t, "DELETE", "/v1/bans/203.0.113.46", "ops-token", "", nil); code != http.StatusNoContent {
		t.Errorf("unban = %d %v, want 204", code, v)
	}

	// The audit lines: add, delete, and the refused calls, each with its
	// target (resource was empty).
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`msg="admin call" component=audit token=ops method=POST path=/v1/bans action=bans:write resource=203\.0\.113\.46/32 ban_duration=3650d .*status=201 result=ok`),
		regexp.MustCompile(`msg="admin call" component=audit token=ops method=DELETE path=/v1/bans/203\.0\.113\.46 action=bans:write resource=203\.0\.113\.46/32 .*status=204 result=ok`),
		regexp.MustCompile(`msg="admin call" component=audit token=ops method=POST path=/v1/bans action=bans:write resource=203\.0\.113\.45/32 ban_duration=100000d .*status=400 result="duration: \\"100000d\\" is more than the maximum ban`),
		regexp.MustCompile(`msg="admin call" component=audit token=ops method=POST path=/v1/bans action=bans:write resource=192\.0\.2\.7/32 ban_duration=2h .*status=422 result="ip: 192\.0\.2\.7/32 overlaps the allow list"`),
		regexp.MustCompile(`msg="admin call" component=audit token=media method=POST path=/v1/bans action=bans:write resource=203\.0\.113\.47/32 ban_duration=1d .*status=403 result="token media lacks scope bans:write"`),
	} {
		g.waitLog(t, waitTimeout, want.String(), want.MatchString)
	}
}

// TestAdminTokenPrefixesCheck: `gatehouse check` refuses token prefixes
// that silently meant everything ("/", "") or could never match (a
// leading "/"), naming file:line and the field.
func TestAdminTokenPrefixesCheck(t *testing.T) {
	t.Parallel()
	cfg := gatewayConfig(`  tokens:
    - name: media
      token: sha256:` + tokenDigest("media-token") + `
      scopes: [sign:s3, sign:link]
      prefixes:
        - media/public/
        - /
        - /paid/
        - ""
        - media/*/x
hosts:
  - match: [www.test]
    upstreams: [http://127.0.0.1:1]
`)
	path := writeFile(t, "gatehouse.yaml", cfg)
	_, errOut, code := runGatehouse(t, "check", "-c", path)
	if code != 2 {
		t.Fatalf("check = %d, want 2; stderr %q", code, errOut)
	}
	for _, tc := range []struct{ line, field, msg string }{
		{"        - /\n", "admin.tokens[0].prefixes[1]", `"/" would allow every resource; omit prefixes to allow everything`},
		{"        - /paid/\n", "admin.tokens[0].prefixes[2]", `"/paid/" starts with "/", but resources have no leading slash`},
		{"        - \"\"\n", "admin.tokens[0].prefixes[3]", `"" would allow every resource; omit prefixes to allow everything`},
		{"        - media/*/x\n", "admin.tokens[0].prefixes[4]", `"media/*/x" has a "*" before its end`},
	} {
		want := path + ":" + strconv.Itoa(lineOfExact(cfg, tc.line)) + ": " + tc.field + ": " + tc.msg
		if !strings.Contains(errOut, want) {
			t.Errorf("check output lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "prefixes[0]") {
		t.Errorf("check refused the good prefix media/public/:\n%s", errOut)
	}
}

// lineOfExact is the 1-based number of the line of text equal to line
// (with its newline), or 0.
func lineOfExact(text, line string) int {
	n := 0
	for l := range strings.Lines(text) {
		n++
		if l == line {
			return n
		}
	}
	return 0
}

// TestAdminSignS3Keys: keys an S3-compatible server storing files could
// resolve outside the token's prefix are refused with 422 and field
// key, and a token prefix without "/" matches on a segment boundary.
func TestAdminSignS3Keys(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, adminE2EConfig(t, up.URL()))
	for _, key := range []string{
		"public/../private/a.mp4",
		"public/.../private/a.mp4",
		"public/.. /private/a.mp4",
		`public\..\private\a.mp4`,
		"public/%2e%2e/private/a.mp4",
		"public/%2E%2E/private/a.mp4",
		"public/.%2e/private/a.mp4",
		"public/%252e%252e/private/a.mp4",
		"public/..%2fprivate/a.mp4",
	} {
		body, _ := json.Marshal(map[string]string{"bucket": "media", "key": key})
		code, v := g.adminDo(t, "POST", "/v1/sign/s3", "media-token", string(body), nil)
		if code != http.StatusUnprocessableEntity || v["field"] != "key" {
			t.Errorf("sign s3 key %q = %d %v, want 422 with field key", key, code, v)
		}
	}
	for _, tc := range []struct {
		key  string
		want int
	}{
		{"public/a.mp4", http.StatusOK},
		{"public", http.StatusOK},
		{"public-private/a.mp4", http.StatusForbidden}, // the prefix is media/public, not media/public*
		{"publicity/a.mp4", http.StatusForbidden},
	} {
		body, _ := json.Marshal(map[string]string{"bucket": "media", "key": tc.key})
		code, v := g.adminDo(t, "POST", "/v1/sign/s3", "media-token", string(body), nil)
		if code != tc.want {
			t.Errorf("sign s3 key %q with prefix media/public = %d %v, want %d", tc.key, code, v, tc.want)
		}
	}
	g.waitLog(t, waitTimeout, "the audit line of a refused key", func(log string) bool {
		return strings.Contains(log, `token=media method=POST path=/v1/sign/s3 action=sign:s3 resource=s3://media/public-private/a.mp4`) &&
			strings.Contains(log, `status=403`)
	})
}

// TestAdminDashboardAfterProbeBan: a client banned by the probe jail —
// here the operator's own 127.0.0.1 — can still sign in to the
// dashboard and use the API to lift the ban (/ui/ answered
// "403 banned" to a ban by any jail). A ban by the admin jail, for wrong
// tokens, locks it out of the whole listener, dashboard included.
func TestAdminDashboardAfterProbeBan(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, adminE2EConfig(t, up.URL()))
	if resp, _ := g.get(t, "www.test", "/.env"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("probe = %d, want 403", resp.StatusCode)
	}
	if resp, _ := g.get(t, "www.test", "/"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("after the probe: GET / = %d, want 403 (banned by the probe jail)", resp.StatusCode)
	}
	_, list := g.adminGetBody(t, "/v1/bans", "ops-token")
	if !strings.Contains(list, `"ip":"127.0.0.1","jail":"probes"`) {
		t.Fatalf("GET /v1/bans = %s, want 127.0.0.1 banned by the probes jail", list)
	}

	// The dashboard: sign in with the token, see the overview and the
	// bans page.
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	browser := newClient()
	browser.Jar = jar
	base := "http://" + g.adminAddr
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := browser.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	code, page := get("/ui/login")
	if code != http.StatusOK {
		t.Fatalf("GET /ui/login from a client the probe jail banned = %d %q, want 200", code, page)
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field on the sign-in page:\n%s", page)
	}
	resp, err := browser.PostForm(base+"/ui/login", url.Values{"csrf": {m[1]}, "token": {"ops-token"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("POST /ui/login = %d to %q, want 303 to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, page := get("/ui/"); code != http.StatusOK || !strings.Contains(page, `data-page="overview"`) {
		t.Fatalf("GET /ui/ signed in = %d, want the overview", code)
	}
	if code, page := get("/ui/bans"); code != http.StatusOK || !strings.Contains(page, "127.0.0.1") {
		t.Fatalf("GET /ui/bans signed in = %d, want the bans page listing 127.0.0.1", code)
	}

	// The API lifts the ban.
	if code, v := g.adminDo(t, "DELETE", "/v1/bans/127.0.0.1", "ops-token", "", nil); code != http.StatusNoContent {
		t.Fatalf("DELETE /v1/bans/127.0.0.1 = %d %v, want 204", code, v)
	}
	if resp, _ := g.get(t, "www.test", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the unban: GET / = %d, want 200", resp.StatusCode)
	}

	// A wrong token: the admin jail bans 127.0.0.1, which is now locked
	// out of the API, /metrics and the dashboard, its session too.
	if code, _ := g.adminDo(t, "GET", "/v1/bans", "guessed-token", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("wrong token = %d, want 401", code)
	}
	g.waitLog(t, waitTimeout, "the admin jail's ban", func(log string) bool {
		return strings.Contains(log, "jail=admin")
	})
	if code, v := g.adminDo(t, "GET", "/v1/bans", "ops-token", "", nil); code != http.StatusForbidden || v["error"] != "banned" {
		t.Errorf("API after an admin-jail ban = %d %v, want 403 banned", code, v)
	}
	for _, path := range []string{"/ui/", "/ui/login", "/metrics"} {
		if code, _ := get(path); code != http.StatusForbidden {
			t.Errorf("GET %s after an admin-jail ban = %d, want 403", path, code)
		}
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz after an admin-jail ban = %d, want 200", code)
	}
}
