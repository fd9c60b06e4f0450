package main

import (
	"fmt"
	"net/http"
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
