package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProbesAndHotlink drives the probe and hotlink rules through the
// running gateway: status, offences counted and logged with the rule, the
// ACME path never blocked, referer cases, and the upstream receiving the
// path exactly as sent.
func TestProbesAndHotlink(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [www.test]
    upstreams: [%[1]s]
  - match: [media.test]
    upstreams: [%[1]s]
    hotlink:
      paths: [/videos/, "*.jpg"]
      allow: [none, www.test, "*.www.test"]
      action: {status: 403}
      jail: hotlink
probes:
  presets: [common, php, wordpress, phpmyadmin, secrets, vcs, cgi, shells]
  exclude: [/wp-content/uploads/]
  status: 404
jails:
  hotlink: {maxretry: 100}
log: {access: combined, level: debug}
`, up.URL())))

	probes := []struct {
		path string
		want int
	}{
		{"/.env", 404},
		{"//WP-LOGIN.PHP", 404},
		{"/./.git/config", 404},
		{"/.env.", 404},
		{"/phpMyAdmin-2.8.2.3/scripts/setup.php", 404},
		{"/admin;x/../.aws/credentials", 404},
		{"/%2e%2e/etc/passwd", 400},
		{"/a%2fb", 400},
		{"/.well-known/acme-challenge/abc123", 200},
		{"/wp-content/uploads/a.jpg", 200},
		{"/static/app.js", 200},
	}
	for _, tc := range probes {
		hits := up.hits.Load()
		resp, _ := g.get(t, "www.test", tc.path)
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s: status %d, want %d", tc.path, resp.StatusCode, tc.want)
		}
		if reached := up.hits.Load() > hits; reached != (tc.want == 200) {
			t.Errorf("GET %s: upstream reached = %v", tc.path, reached)
		}
	}
	g.waitLog(t, waitTimeout, "probe logged with its rule", func(log string) bool {
		return strings.Contains(log, `msg="probe blocked"`) && strings.Contains(log, "rule=secrets:")
	})

	// The upstream receives the path as sent, not the canonical form.
	_, body := g.get(t, "www.test", "/a//b/./c;v=1/%7Euser")
	if e := decodeEcho(t, body); e.URI != "/a//b/./c;v=1/%7Euser" {
		t.Errorf("upstream URI = %q, want the path as sent", e.URI)
	}

	hotlinks := []struct {
		name, path string
		referer    string
		want       int
	}{
		{"no referer", "/videos/a.mp4", "", 200},
		{"own page", "/videos/a.mp4", "https://www.test/watch", 200},
		{"own subdomain", "/img/b.JPG", "http://m.www.test/", 200},
		{"other site", "/videos/a.mp4", "https://evil.test/", 403},
		{"userinfo trick", "/videos/a.mp4", "https://www.test@evil.test/", 403},
		{"suffix trick", "/img/b.jpg", "https://www.test.evil.test/", 403},
		{"unprotected path", "/page.html", "https://evil.test/", 200},
	}
	for _, tc := range hotlinks {
		req, err := g.newRequest(t.Context(), "GET", "media.test", tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if tc.referer != "" {
			req.Header.Set("Referer", tc.referer)
		}
		resp, _ := g.mustDo(t, req)
		if resp.StatusCode != tc.want {
			t.Errorf("hotlink %s: GET %s (Referer %q): status %d, want %d", tc.name, tc.path, tc.referer, resp.StatusCode, tc.want)
		}
	}
	g.waitMetric(t, 3, "gatehouse_http_requests_total", "host", "media.test", "code", "4xx")
	if resp, _ := g.get(t, "www.test", "/"); resp.StatusCode != http.StatusOK {
		t.Errorf("clean request after probes (no jails configured, nobody banned): %d", resp.StatusCode)
	}
}

// TestProbeBan: a client that probes maxretry times is banned — every
// request then gets 403 from memory without reaching the upstream — and
// the ban ends after bantime.
func TestProbeBan(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [www.test]
    upstreams: [%s]
probes: {presets: [secrets]}
jails:
  probes: {maxretry: 3, findtime: 1m, bantime: 2s}
`, up.URL())))
	for i, path := range []string{"/.env", "/.aws/credentials", "/id_rsa"} {
		if resp, _ := g.get(t, "www.test", path); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("probe %d %s: status %d, want 403", i, path, resp.StatusCode)
		}
	}
	hits := up.hits.Load()
	if resp, _ := g.get(t, "www.test", "/index.html"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("clean request from a banned client: status %d, want 403", resp.StatusCode)
	}
	if up.hits.Load() != hits {
		t.Error("a banned client's request reached the upstream")
	}
	g.waitLog(t, waitTimeout, "ban logged", func(log string) bool {
		return strings.Contains(log, "msg=ban") && strings.Contains(log, "jail=probes") && strings.Contains(log, "prefix=127.0.0.1/32")
	})
	// The ban expires by itself.
	waitGet(t, g, "www.test", "/index.html", http.StatusOK)
}

// TestFloodJail: a client over its token bucket gets 429, and one that
// keeps at it is banned.
func TestFloodJail(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [www.test]
    upstreams: [%s]
jails:
  flood: {rate: 0.01, burst: 3, maxretry: 2, findtime: 1m, bantime: 1h}
`, up.URL())))
	var codes []int
	for range 6 {
		resp, _ := g.get(t, "www.test", "/")
		codes = append(codes, resp.StatusCode)
	}
	want := []int{200, 200, 200, 429, 429, 403}
	if fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Errorf("statuses = %v, want %v (burst of 3, then 429s, banned after the second)", codes, want)
	}
}

// ---- gatehouse rules test ----

// runGatehouseStdin is runGatehouse with stdin as the process's standard
// input.
func runGatehouseStdin(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runGatehouseWith(t, nil, stdin, args...)
}

// gzipped returns data gzip-compressed.
func gzipped(t *testing.T, data string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// accessLine is one nginx combined access log line on 25 Nov 2026.
func accessLine(ip, clock, target string, status int) string {
	return fmt.Sprintf("%s - - [25/Nov/2026:%s +0000] \"GET %s HTTP/1.1\" %d 0 \"-\" \"x\"\n", ip, clock, target, status)
}

// wantInOrder fails unless out holds every string of want, in order.
func wantInOrder(t *testing.T, what, out string, want ...string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("%s: output lacks %q (after what came before it):\n%s", what, w, out)
			return
		}
		rest = rest[i+len(w):]
	}
}

// TestRulesTestRotatedLogs: the rotated files of one log, listed as a
// shell lists access.log* (newest first, the older ones gzip-compressed,
// one without a .gz name), are replayed oldest first, so a scanner's
// probes spread over three files ban it at its third probe and its next
// request is counted as refused; a gzip log on standard input is read
// too.
func TestRulesTestRotatedLogs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "gatehouse.yaml")
	files := map[string][]byte{
		"gatehouse.yaml": []byte(`hosts:
  - match: [www.example.com]
    upstreams: [http://127.0.0.1:1]
probes: {presets: [secrets, vcs]}
jails:
  probes: {maxretry: 3, findtime: 10m, bantime: 1h}
`),
		"access.log.2.gz": gzipped(t, accessLine("203.0.113.1", "10:00:00", "/.env", 404)),
		// logrotate's delaycompress leaves .1 plain; this one is
		// compressed all the same, and read by its magic bytes.
		"access.log.1": gzipped(t, accessLine("203.0.113.1", "10:00:01", "/.git/config", 404)),
		"access.log": []byte(accessLine("203.0.113.1", "10:00:02", "/.aws/credentials", 404) +
			accessLine("203.0.113.1", "10:00:03", "/", 200)),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	logs := []string{filepath.Join(dir, "access.log"), filepath.Join(dir, "access.log.1"), filepath.Join(dir, "access.log.2.gz")}
	out, errOut, code := runGatehouse(t, append([]string{"rules", "test", "-c", cfg}, logs...)...)
	if code != 0 {
		t.Fatalf("rules test = %d\n%s%s", code, out, errOut)
	}
	wantInOrder(t, "rotated logs", out, "Logs, oldest first: ", "access.log.2.gz, ", "access.log.1, ", "access.log\n",
		"Lines: 4 read", "Probe matches: 3",
		"Bans that would follow: 1", "2026-11-25T10:00:02Z  203.0.113.1/32       probes",
		"Lines from clients banned at the time (403 from memory): 1")

	// Standard input, gzip-compressed, with a plain file after it.
	stdin := bytes.NewReader(gzipped(t, accessLine("203.0.113.1", "10:00:00", "/.env", 404)+accessLine("203.0.113.1", "10:00:01", "/.git/config", 404)))
	out, errOut, code = runGatehouseStdin(t, stdin, "rules", "test", "-c", cfg, "-", filepath.Join(dir, "access.log"))
	if code != 0 {
		t.Fatalf("rules test - = %d\n%s%s", code, out, errOut)
	}
	wantInOrder(t, "stdin", out, "Logs, oldest first: standard input, ", "Lines: 4 read", "Bans that would follow: 1",
		"Lines from clients banned at the time (403 from memory): 1")

	// Standard input twice is a usage error.
	if _, errOut, code := runGatehouseStdin(t, strings.NewReader(""), "rules", "test", "-c", cfg, "-", "-"); code != 2 || !strings.Contains(errOut, "usage:") {
		t.Errorf("rules test - - = %d, %q, want 2 and the usage", code, errOut)
	}
}

// TestRulesTestNothingParsed: a log with no line in a known format (an
// error log given by mistake) or no lines at all is not a clean bill of
// health: a warning naming the formats read, and exit 1.
func TestRulesTestNothingParsed(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, "gatehouse.yaml", `hosts:
  - match: [www.example.com]
    upstreams: [http://127.0.0.1:1]
probes: {presets: [secrets]}
`)
	errorLog := writeFile(t, "error.log", `2026/11/25 10:00:00 [error] 12#12: *1 open() "/usr/share/nginx/html/.env" failed (2: No such file or directory)
2026/11/25 10:00:01 [error] 12#12: *2 open() "/usr/share/nginx/html/.git" failed (2: No such file or directory)
`)
	good := writeFile(t, "access.log", accessLine("192.0.2.1", "10:00:00", "/", 200))
	empty := writeFile(t, "empty.log", "")
	tests := []struct {
		name     string
		logs     []string
		wantCode int
		wantErr  []string
	}{
		{name: "error log", logs: []string{errorLog}, wantCode: 1,
			wantErr: []string{"warning: " + errorLog + ": none of its 2 lines is in a format gatehouse reads", "combined", "json"}},
		{name: "error log beside an access log", logs: []string{good, errorLog}, wantCode: 1,
			wantErr: []string{errorLog + ": none of its 2 lines"}},
		{name: "empty", logs: []string{empty}, wantCode: 1, wantErr: []string{"warning: no lines to replay"}},
		{name: "empty beside an access log", logs: []string{empty, good}, wantCode: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, errOut, code := runGatehouse(t, append([]string{"rules", "test", "-c", cfg}, tc.logs...)...)
			if code != tc.wantCode {
				t.Errorf("rules test %v = %d, want %d\n%s%s", tc.logs, code, tc.wantCode, out, errOut)
			}
			if !strings.Contains(out, "Lines: ") {
				t.Errorf("rules test %v printed no report:\n%s", tc.logs, out)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(errOut, w) {
					t.Errorf("rules test %v: stderr lacks %q:\n%s", tc.logs, w, errOut)
				}
			}
			if tc.wantCode == 0 && errOut != "" {
				t.Errorf("rules test %v: stderr %q, want none", tc.logs, errOut)
			}
		})
	}
}

// TestRulesTestRuleNames: the report and --show-matches name a
// probes.paths pattern and a hotlink pattern by their text.
func TestRulesTestRuleNames(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, "gatehouse.yaml", `hosts:
  - match: [media.example.com]
    upstreams: [http://127.0.0.1:1]
    hotlink: {paths: [/videos/, "*.jpg"], allow: [none, example.com]}
probes:
  paths: [/old-admin/, "re:^/backup-[0-9]+\\.zip$"]
`)
	log := writeFile(t, "access.log", accessLine("192.0.2.1", "10:00:00", "/old-admin/login", 404)+
		accessLine("192.0.2.1", "10:00:01", "/backup-2024.zip", 404)+
		accessLine("192.0.2.1", "10:00:02", "/backup-2024.zip", 404)+
		strings.Replace(accessLine("192.0.2.2", "10:00:03", "/img/cat.jpg", 200), `"-"`, `"https://evil.test/"`, 1))
	out, errOut, code := runGatehouse(t, "rules", "test", "-c", cfg, "--show-matches", log)
	if code != 0 {
		t.Fatalf("rules test = %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"probe paths:/old-admin/\t192.0.2.1 ",
		"probe paths:re:^/backup-[0-9]+\\.zip$\t192.0.2.1 ",
		"hotlink media.example.com *.jpg\t192.0.2.2 ",
		"        2  paths:re:^/backup-[0-9]+\\.zip$\n",
		"        1  paths:/old-admin/\n",
		"        1  media.example.com *.jpg\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rules test output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "paths[") {
		t.Errorf("rules test names a rule by its index:\n%s", out)
	}
}

// TestRulesTestTop: --top N lists the N clients with the most refused
// requests, with their offences, and the N most hit rules; flags may
// follow the log.
func TestRulesTestTop(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, "gatehouse.yaml", `hosts:
  - match: [www.example.com]
    upstreams: [http://127.0.0.1:1]
probes: {presets: [secrets, wordpress]}
jails:
  probes: {maxretry: 100}
`)
	var log strings.Builder
	for i, c := range []struct {
		ip     string
		probes int
	}{{"203.0.113.7", 2}, {"203.0.113.8", 5}, {"203.0.113.9", 1}, {"2001:db8::1", 3}} {
		for j := range c.probes {
			target := "/.env"
			if j%2 == 1 {
				target = "/wp-login.php"
			}
			log.WriteString(accessLine(c.ip, fmt.Sprintf("10:%02d:%02d", i, j), target, 404))
		}
		log.WriteString(accessLine(c.ip, fmt.Sprintf("10:%02d:59", i), "/", 200))
	}
	path := writeFile(t, "access.log", log.String())
	out, errOut, code := runGatehouse(t, "rules", "test", "-c", cfg, path, "--top", "2")
	if code != 0 {
		t.Fatalf("rules test = %d\n%s%s", code, out, errOut)
	}
	wantInOrder(t, "--top 2", out, "Top 2 clients by refused requests:\n",
		"  203.0.113.8/32       refused 5, offences 5\n",
		"  2001:db8::/64        refused 3, offences 3\n",
		"Top 2 rules by refused requests:\n",
		"        7  probe secrets:**/.env*\n",
		"        4  probe wordpress:**/wp-login.php\n")
	if strings.Contains(out, "203.0.113.7/32       refused") {
		t.Errorf("--top 2 lists a third client:\n%s", out)
	}
	if _, errOut, code := runGatehouse(t, "rules", "test", "-c", cfg, "--top", "-1", path); code != 2 || !strings.Contains(errOut, "usage:") {
		t.Errorf("--top -1 = %d, %q, want 2 and the usage", code, errOut)
	}
}

// TestRulesTestAuthAndFlood: 401 answers on a path under basic auth are
// failed logins for the auth jail, as the gateway counts them (an
// upstream's own 401 elsewhere is not); a burst over a flood jail's rate
// is refused with 429 and bans.
func TestRulesTestAuthAndFlood(t *testing.T) {
	t.Parallel()
	users := bcryptFile(t, "alice", "wonderland")
	cfg := writeFile(t, "gatehouse.yaml", fmt.Sprintf(`hosts:
  - match: [app.example.com]
    upstreams: [http://127.0.0.1:1]
    basic_auth: {htpasswd: %s, paths: [/admin/]}
jails:
  auth: {maxretry: 3, findtime: 10m, bantime: 1h}
  flood: {rate: 2, burst: 10, maxretry: 5, findtime: 1m, bantime: 10m}
`, users))
	var log strings.Builder
	for i := range 3 {
		log.WriteString(accessLine("198.51.100.1", fmt.Sprintf("10:00:%02d", i*10), "/admin/", 401))
	}
	log.WriteString(accessLine("198.51.100.1", "10:00:59", "/admin/", 200))
	for i := range 5 {
		log.WriteString(accessLine("198.51.100.2", fmt.Sprintf("10:00:%02d", i*10), "/api/me", 401))
	}
	// A page with 15 assets in one second: 10 within the burst, 5
	// refused, the fifth bans.
	for range 15 {
		log.WriteString(accessLine("198.51.100.3", "10:01:00", "/static/app.css", 200))
	}
	log.WriteString(accessLine("198.51.100.3", "10:01:01", "/", 200))
	path := writeFile(t, "access.log", log.String())
	out, errOut, code := runGatehouse(t, "rules", "test", "-c", cfg, "--host", "app.example.com", path)
	if code != 0 {
		t.Fatalf("rules test = %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"Lines without a host: 25, under the rules of app.example.com",
		"Flood refusals (429) by jail: 5\n        5  flood\n",
		"Failed logins (401 under basic auth) by host or route: 3\n        3  app.example.com\n",
		"Offences by jail: auth 3 flood 5",
		"Bans that would follow: 2",
		"2026-11-25T10:00:20Z  198.51.100.1/32      auth     ban #1 until 2026-11-25T11:00:20Z",
		"2026-11-25T10:01:00Z  198.51.100.3/32      flood    ban #1 until 2026-11-25T10:11:00Z",
		"Lines from clients banned at the time (403 from memory): 2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rules test output lacks %q:\n%s", want, out)
		}
	}
}

// TestRulesTestRoutesAndLimits: the replay goes through the host's
// routes and named rate limits. A login limit (1r/s, burst 5, as
// imported from nginx's limit_req) widened to the whole host shows its
// refusals of a browser's page loads and the ban that follows, before
// it goes live; on its /login route it refuses none. Access lists and
// fixed answers are counted by route, named by their paths.
func TestRulesTestRoutesAndLimits(t *testing.T) {
	t.Parallel()
	const head = `limits:
  rates:
    login: {rate: 1r/s, burst: 5, status: 503, jail: login}
jails:
  login: {maxretry: 5, findtime: 1m, bantime: 1h}
hosts:
  - match: [app.example.com]
    upstreams: [http://127.0.0.1:1]
`
	const routes = `    routes:
      - {paths: [/login], limit: login}
      - {paths: [/admin/], access: ["allow 10.0.0.0/8", "deny all"]}
      - {paths: [/old/], respond: {status: 410}}
`
	// 20 pages 10 s apart, each with 12 stylesheets in the same second.
	var log strings.Builder
	for i := range 20 {
		at := fmt.Sprintf("10:%02d:%02d", i/6, i%6*10)
		log.WriteString(accessLine("198.51.100.20", at, fmt.Sprintf("/page/%d", i), 200))
		for j := range 12 {
			log.WriteString(accessLine("198.51.100.20", at, fmt.Sprintf("/css/%d.css", j), 200))
		}
	}
	log.WriteString(accessLine("203.0.113.9", "10:04:00", "/admin/", 200))
	log.WriteString(accessLine("10.0.0.9", "10:04:00", "/admin/", 200))
	log.WriteString(accessLine("10.0.0.9", "10:04:01", "/old/news", 200))
	path := writeFile(t, "access.log", log.String())

	widened := writeFile(t, "widened.yaml", head+"    limit: login\n"+routes)
	out, errOut, code := runGatehouse(t, "rules", "test", "-c", widened, "--top", "1", path)
	if code != 0 {
		t.Fatalf("rules test (limit on the host) = %d\n%s%s", code, out, errOut)
	}
	// The first page: 13 requests in one second, 6 pass (5 of them late),
	// 5 refused, the fifth refusal bans; the rest of the visit is
	// refused from memory.
	wantInOrder(t, "limit on the host", out,
		"Rate limit refusals by limit: 5\n        5  login\n",
		"Requests delayed within a limit's burst: 5\n",
		"Access denied (403) by host or route: 1\n        1  app.example.com /admin/\n",
		"Offences by jail: login 5",
		"Bans that would follow: 1", "198.51.100.20/32     login    ban #1",
		"Lines from clients banned at the time (403 from memory): 249\n",
		"Top 1 clients by refused requests:\n  198.51.100.20/32     refused 254, offences 5\n",
		"Top 1 rules by refused requests:\n        5  limit login\n")

	scoped := writeFile(t, "scoped.yaml", head+routes)
	out, errOut, code = runGatehouse(t, "rules", "test", "-c", scoped, path)
	if code != 0 {
		t.Fatalf("rules test (limit on /login) = %d\n%s%s", code, out, errOut)
	}
	wantInOrder(t, "limit on /login", out,
		"Answered by a route's respond: 1\n        1  app.example.com /old/\n",
		"Rate limit refusals by limit: 0\n        0  login\n",
		"Access denied (403) by host or route: 1\n",
		"Bans that would follow: 0")
}

// TestRulesTestHostProbes: a host's own probes replace the global ones
// on that host (a WordPress site beside plain ones), lines name their
// host (Apache's vhost_combined), and a host the config does not serve
// is counted as refused with 421.
func TestRulesTestHostProbes(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, "gatehouse.yaml", `hosts:
  - match: [www.example.com]
    upstreams: [http://127.0.0.1:1]
  - match: [blog.example.com]
    upstreams: [http://127.0.0.1:1]
    probes: {presets: [secrets]}
probes: {presets: [wordpress, secrets]}
`)
	log := writeFile(t, "access.log", "www.example.com "+accessLine("192.0.2.1", "10:00:00", "/wp-login.php", 404)+
		"blog.example.com "+accessLine("192.0.2.1", "10:00:01", "/wp-login.php", 200)+
		"blog.example.com "+accessLine("192.0.2.1", "10:00:02", "/.env", 404)+
		"shop.example.com "+accessLine("192.0.2.1", "10:00:03", "/", 200))
	out, errOut, code := runGatehouse(t, "rules", "test", "-c", cfg, "--show-matches", log)
	if code != 0 {
		t.Fatalf("rules test = %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"probe wordpress:**/wp-login.php\twww.example.com 192.0.2.1 ",
		"probe secrets:**/.env*\tblog.example.com 192.0.2.1 ",
		"Lines for hosts the config does not serve (421): 1\n",
		"Probe matches: 2\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("rules test output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\tblog.example.com 192.0.2.1 - - [25/Nov/2026:10:00:01") {
		t.Errorf("the blog's own probes (no wordpress preset) refused its WordPress login:\n%s", out)
	}
}
