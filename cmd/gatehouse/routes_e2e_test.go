package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gatehouse/rules/testenv"
)

// TestRoutes drives every field of hosts[].routes[] through the binary:
// each route's answer is checked against the host's, so a field that is
// not wired shows up as the host's behaviour.
func TestRoutes(t *testing.T) {
	t.Parallel()
	htpasswd := testenv.Tool(t, "htpasswd")
	users := filepath.Join(t.TempDir(), "users")
	if out, err := exec.Command(htpasswd, "-cbB", "-C", "4", users, "alice", "one").CombinedOutput(); err != nil {
		t.Fatalf("htpasswd: %v: %s", err, out)
	}
	app, api := newEchoUpstream(t, "app"), newEchoUpstream(t, "api")
	// stall sends its headers (with a length, so nothing flushes them
	// by itself) and a first chunk, then nothing for 3s.
	stall := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "11")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "first\n")
		http.NewResponseController(w).Flush()
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
		_, _ = io.WriteString(w, "late\n")
	}))
	// slowHeaders answers after 2s.
	slowHeaders := newUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusOK)
	}))
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`trusted_proxies: [127.0.0.1]
jails:
  admin-denied: {maxretry: 2, findtime: 10m, bantime: 1h}
probes: {paths: [/.env]}
hosts:
  - match: [app.test]
    upstreams: [%[1]s]
    basic_auth: {htpasswd: %[3]s}
    max_body: 1MB
    headers: {set: {X-Site: app}}
    routes:
      - {paths: [/api/], upstreams: [%[2]s], basic_auth: off}
      - {paths: ["=/healthz"], basic_auth: off}
      - {paths: [/admin/], access: ["allow 10.0.0.0/8", "deny all"], jail: admin-denied}
      - {paths: [/old/], respond: {status: 410, body: gone for good}}
      - {paths: [/drop/], respond: {status: 444}}
      - {paths: [/moved], respond: {status: 301, location: "https://example.net/new"}}
      - {paths: [/upload/], max_body: 10}
      - {paths: [/ws/], websocket: false}
      - {paths: ["*.css"], headers: {set: {Cache-Control: "max-age=60", X-Site: ""}}}
      - {paths: [/stall/], upstreams: [%[4]s], read_timeout: 1s, basic_auth: off}
      - {paths: [/hdr/], upstreams: [%[5]s], response_header_timeout: 500ms, basic_auth: off}
  - match: [plain.test]
    upstreams: [%[1]s]
    probes: off
`, app.URL(), api.URL(), users, stall.URL, slowHeaders.URL)))

	type result struct {
		status   int
		upstream string
	}
	do := func(method, host, path, client string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, err := g.newRequest(t.Context(), method, host, path, body)
		if err != nil {
			t.Fatal(err)
		}
		if client != "" {
			req.Header.Set("X-Forwarded-For", client)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		return g.mustDo(t, req)
	}
	auth := map[string]string{"Authorization": "Basic YWxpY2U6b25l"} // alice:one
	for _, tc := range []struct {
		name, host, path, client string
		hdr                      map[string]string
		want                     result
	}{
		{"the host asks for a login", "app.test", "/", "", nil, result{401, ""}},
		{"the host with a login", "app.test", "/", "", auth, result{200, "app"}},
		{"upstreams: /api/ goes to its own upstream, auth off", "app.test", "/api/x", "", nil, result{200, "api"}},
		{"upstreams: /api covered by /api/", "app.test", "/api", "", nil, result{200, "api"}},
		{"upstreams: any case", "app.test", "/API/x", "", nil, result{200, "api"}},
		{"basic_auth off: =/healthz", "app.test", "/healthz", "", nil, result{200, "app"}},
		{"basic_auth off is exact: /healthz/x still asks", "app.test", "/healthz/x", "", nil, result{401, ""}},
		{"access: allowed client still logs in", "app.test", "/admin/", "10.1.2.3", auth, result{200, "app"}},
		{"access: allowed client without login", "app.test", "/admin/", "10.1.2.3", nil, result{401, ""}},
		{"access: denied before the login", "app.test", "/admin/x", "192.0.2.10", auth, result{403, ""}},
		{"access: /admin covered by /admin/", "app.test", "/admin", "192.0.2.10", auth, result{403, ""}},
		{"respond: 410", "app.test", "/old/page", "", nil, result{410, ""}},
		{"respond: 301", "app.test", "/moved", "", nil, result{301, ""}},
		{"readings disagree: 400", "app.test", "/admin/../healthz", "", nil, result{400, ""}},
		{"probes: global on app.test", "app.test", "/.env", "", nil, result{403, ""}},
		{"probes: off on plain.test", "plain.test", "/.env", "", nil, result{200, "app"}},
	} {
		resp, body := do(http.MethodGet, tc.host, tc.path, tc.client, nil, tc.hdr)
		got := result{resp.StatusCode, resp.Header.Get("X-Upstream")}
		if got != tc.want {
			t.Errorf("%s: GET %s%s = %+v, want %+v (%s)", tc.name, tc.host, tc.path, got, tc.want, body)
		}
		switch tc.path {
		case "/old/page":
			if string(body) != "gone for good\n" || resp.Header.Get("X-Site") != "app" {
				t.Errorf("respond body %q, X-Site %q: want the route's body and the host's headers", body, resp.Header.Get("X-Site"))
			}
		case "/moved":
			if loc := resp.Header.Get("Location"); loc != "https://example.net/new" {
				t.Errorf("respond 301 Location = %q", loc)
			}
		}
	}

	// access + jail: the second denial bans the client.
	if resp, _ := do(http.MethodGet, "app.test", "/", "192.0.2.10", nil, auth); resp.StatusCode != http.StatusForbidden {
		t.Errorf("after two denied requests with jail: the client is not banned (GET / = %d)", resp.StatusCode)
	}

	// headers: the route's set and removal over the host's.
	resp, _ := do(http.MethodGet, "app.test", "/a/site.css", "", nil, auth)
	if resp.Header.Get("Cache-Control") != "max-age=60" || resp.Header.Get("X-Site") != "" {
		t.Errorf("*.css headers: Cache-Control %q, X-Site %q; want max-age=60 and none", resp.Header.Get("Cache-Control"), resp.Header.Get("X-Site"))
	}
	if resp, _ := do(http.MethodGet, "app.test", "/a/page", "", nil, auth); resp.Header.Get("X-Site") != "app" || resp.Header.Get("Cache-Control") != "" {
		t.Errorf("host headers: X-Site %q, Cache-Control %q", resp.Header.Get("X-Site"), resp.Header.Get("Cache-Control"))
	}

	// max_body: 10 bytes on /upload/, the host's 1MB elsewhere.
	big := strings.Repeat("x", 100)
	if resp, _ := do(http.MethodPost, "app.test", "/upload/f", "", strings.NewReader(big), auth); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("POST 100 bytes to /upload/ = %d, want 413", resp.StatusCode)
	}
	if resp, _ := do(http.MethodPost, "app.test", "/other", "", strings.NewReader(big), auth); resp.StatusCode != http.StatusOK {
		t.Errorf("POST 100 bytes to /other = %d, want 200", resp.StatusCode)
	}

	// websocket: refused on /ws/ only.
	ws := map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Authorization": auth["Authorization"]}
	if resp, _ := do(http.MethodGet, "app.test", "/ws/chat", "", nil, ws); resp.StatusCode != http.StatusForbidden {
		t.Errorf("WebSocket upgrade on /ws/ = %d, want 403", resp.StatusCode)
	}

	// read_timeout: the stalled answer is cut off after its first chunk.
	start := time.Now()
	req, err := g.newRequest(t.Context(), http.MethodGet, "app.test", "/stall/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	sresp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("read_timeout: %v; want the headers and the first chunk before the cut", err)
	}
	sbody, rerr := io.ReadAll(sresp.Body)
	sresp.Body.Close()
	if rerr == nil || string(sbody) != "first\n" || time.Since(start) > 2500*time.Millisecond {
		t.Errorf("read_timeout 1s: body %q, error %v after %v; want the first chunk, then the answer cut off", sbody, rerr, time.Since(start))
	}

	// response_header_timeout: 504 from the route's own transport.
	if resp, _ := do(http.MethodGet, "app.test", "/hdr/x", "", nil, nil); resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("response_header_timeout 500ms against a 2s upstream = %d, want 504", resp.StatusCode)
	}

	// respond 444: the connection closes without an answer, and the
	// access log says 444.
	conn, err := net.Dial("tcp", g.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /drop/x HTTP/1.1\r\nHost: app.test\r\n\r\n")
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := bufio.NewReader(conn).ReadString('\n'); !errors.Is(err, io.EOF) || line != "" {
		t.Errorf("respond 444: read %q, %v; want the connection closed without a byte", line, err)
	}
	waitFor(t, "a 444 line in the access log", func() bool {
		return strings.Contains(g.stdout.String(), `"path":"/drop/x"`) && strings.Contains(g.stdout.String(), `"status":444`)
	})
}

// TestCheckRoutes: check refuses a pattern given twice with its line and
// warns of a route no path reaches, exiting 0.
func TestCheckRoutes(t *testing.T) {
	t.Parallel()
	warn := writeFile(t, "warn.yaml", `hosts:
  - match: [a.test]
    upstreams: ["http://127.0.0.1:1"]
    routes:
      - {paths: ["re:^/"], respond: {status: 404}}
      - {paths: [/admin/], access: ["deny all"]}
`)
	stdout, stderr, code := runGatehouse(t, "check", "-c", warn)
	if code != 0 || !strings.Contains(stdout, ": ok: ") ||
		!strings.Contains(stderr, warn+`:6: hosts[0].routes[1]: warning: no path reaches this route`) {
		t.Errorf("check with an unreachable route: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	// serve logs it too: a config reloaded without check shows it.
	g := startGateway(t, gatewayConfig(`hosts:
  - match: [a.test]
    upstreams: ["http://127.0.0.1:1"]
    routes:
      - {paths: ["re:^/"], respond: {status: 404}}
      - {paths: [/admin/], access: ["deny all"]}
`))
	g.waitLog(t, waitTimeout, "the config warning", func(log string) bool {
		return strings.Contains(log, `msg="config warning"`) && strings.Contains(log, "field=hosts[0].routes[1]")
	})
	dup := writeFile(t, "dup.yaml", `hosts:
  - match: [a.test]
    upstreams: ["http://127.0.0.1:1"]
    routes:
      - {paths: [/admin/]}
      - {paths: [/x, /Admin/]}
`)
	_, stderr, code = runGatehouse(t, "check", "-c", dup)
	if code != 2 || !strings.Contains(stderr, dup+`:6: hosts[0].routes[1].paths[1]: already given at routes[0].paths[0]`) {
		t.Errorf("check with a pattern given twice: exit %d\nstderr %s", code, stderr)
	}
}

// TestRouteLogins: a login made for one part of a host — the host's, or
// a route's own — never reaches another part's upstream, and sent
// unasked to a route with a login of its own it is asked for again, not
// counted as a guess.
func TestRouteLogins(t *testing.T) {
	t.Parallel()
	htpasswd := testenv.Tool(t, "htpasswd")
	dir := t.TempDir()
	users, ops := filepath.Join(dir, "users"), filepath.Join(dir, "ops")
	for _, c := range [][]string{{"-cbB", "-C", "4", users, "alice", "one"}, {"-cbB", "-C", "4", ops, "bob", "two"}} {
		if out, err := exec.Command(htpasswd, c...).CombinedOutput(); err != nil {
			t.Fatalf("htpasswd: %v: %s", err, out)
		}
	}
	app := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`jails:
  auth: {maxretry: 3, findtime: 10m, bantime: 1h}
hosts:
  - match: [app.test]
    upstreams: [%[1]s]
    basic_auth: {htpasswd: %[2]s}
    routes:
      - {paths: [/ops/], basic_auth: {realm: Ops, htpasswd: %[3]s}}
      - {paths: ["=/healthz"], basic_auth: off}
  - match: [open.test]
    upstreams: [%[1]s]
    routes:
      - {paths: [/admin/], basic_auth: {htpasswd: %[3]s}}
`, app.URL(), users, ops)))
	alice, bob := "Basic YWxpY2U6b25l", "Basic Ym9iOnR3bw==" // alice:one, bob:two
	get := func(host, path, auth string) (int, echo) {
		t.Helper()
		req, err := g.newRequest(t.Context(), http.MethodGet, host, path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", auth)
		resp, body := g.mustDo(t, req)
		var e echo
		if resp.StatusCode == http.StatusOK {
			e = decodeEcho(t, body)
		}
		return resp.StatusCode, e
	}
	for _, tc := range []struct {
		host, path, auth string
		want             int
	}{
		{"app.test", "/healthz", alice, 200}, // off: the host's login is removed
		{"open.test", "/", bob, 200},         // a route's login never reaches the host's upstream
		{"open.test", "/admin/x", bob, 200},  // where it is the login: passed as checked
		{"app.test", "/ops/x", alice, 401},   // the host's login at the route's own: asked again
		{"app.test", "/ops/x", alice, 401},   // …without an offence
		{"app.test", "/ops/x", alice, 401},   //
		{"app.test", "/ops/x", alice, 401},   // (maxretry 3: a fourth offence would ban)
		{"app.test", "/x", alice, 200},       // alice is not banned
		{"app.test", "/x", bob, 401},         // the route's login at the host: asked again
		{"app.test", "/ops/x", bob, 200},     //
	} {
		code, e := get(tc.host, tc.path, tc.auth)
		if code != tc.want {
			t.Errorf("GET %s%s as %s = %d, want %d", tc.host, tc.path, tc.auth, code, tc.want)
		}
		if code == 200 && e.Header.Get("Authorization") != "" {
			t.Errorf("GET %s%s: the upstream got Authorization %q", tc.host, tc.path, e.Header.Get("Authorization"))
		}
	}
	if n := g.metric(t, "gatehouse_jail_offences_total", "jail", "auth"); n != 0 {
		t.Errorf("auth offences = %v, want 0: every login was good somewhere on the host", n)
	}
}
