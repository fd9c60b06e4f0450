package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// combinedHostLine is one combined_host line: $host, then nginx's
// combined format.
var combinedHostLine = regexp.MustCompile(`^(\S+) (\S+) - (\S+) \[[^\]]+\] "(\S+) (\S+) HTTP/1\.1" (\d{3}) \d+ "[^"]*" "[^"]*"$`)

// TestPerHostAccessLogs: two hosts with their own access log files next to
// the global one, in their own formats; a probe for a host is logged in its
// file; the JSON format names the basic-auth user; SIGHUP reopens every
// file (logrotate) and a reload can give another host its own file.
func TestPerHostAccessLogs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	global, shop, blog := filepath.Join(dir, "access.log"), filepath.Join(dir, "shop.log"), filepath.Join(dir, "blog.log")
	users := filepath.Join(dir, "users.htpasswd")
	if code, _, stderr := runHtpasswd(users, "", "-cbB", "-C", "4", "FILE", "alice", "secret"); code != 0 {
		t.Fatalf("htpasswd: %d %s", code, stderr)
	}
	up := newEchoUpstream(t, "app")
	cfg := func(blogLog string) string {
		return gatewayConfig(fmt.Sprintf(`probes: {paths: [/.env]}
log: {access: json, access_file: %[2]s}
hosts:
  - match: [shop.test, "*.shop.test"]
    upstreams: [%[1]s]
    log: {access: combined_host, access_file: %[3]s}
  - match: [staging.test]
    upstreams: [%[1]s]
    basic_auth: {htpasswd: %[4]s}
    log: {access_file: %[2]s}
  - match: [blog.test]
    upstreams: [%[1]s]
%[5]s`, up.URL(), global, shop, users, blogLog))
	}
	g := startGateway(t, cfg(""))

	g.get(t, "www.shop.test", "/cart")
	g.get(t, "shop.test", "/.env") // refused before routing: still shop's
	if resp, _ := authGet(t, g, "staging.test", "/stage", "alice", "secret"); resp.StatusCode != 200 {
		t.Fatalf("staging as alice: %d", resp.StatusCode)
	}
	g.get(t, "staging.test", "/anon") // 401: no user
	g.get(t, "blog.test", "/post")

	shopLine := func(path, status string) {
		t.Helper()
		waitFileLine(t, shop, func(line string) bool {
			m := combinedHostLine.FindStringSubmatch(line)
			return m != nil && m[5] == path && m[6] == status
		})
	}
	shopLine("/cart", "200")
	line := waitFileLine(t, shop, func(line string) bool { return strings.Contains(line, "/.env") })
	if m := combinedHostLine.FindStringSubmatch(line); m == nil || m[1] != "shop.test" || m[6] != "403" {
		t.Errorf("probe line in shop.log = %q, want host shop.test and 403", line)
	}
	jsonEntry := func(file, path string) map[string]any {
		t.Helper()
		var e map[string]any
		waitFileLine(t, file, func(line string) bool {
			e = nil // a fresh map per line: Unmarshal would merge into it
			return json.Unmarshal([]byte(line), &e) == nil && e["path"] == path
		})
		return e
	}
	if e := jsonEntry(global, "/stage"); e["user"] != "alice" {
		t.Errorf("JSON line of alice's request: user = %v, want alice", e["user"])
	}
	if e := jsonEntry(global, "/anon"); e["user"] != nil {
		t.Errorf("JSON line of an anonymous request: user = %v, want no user key", e["user"])
	}
	jsonEntry(global, "/post")
	data, err := os.ReadFile(global)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "/cart") || strings.Contains(string(data), "/.env") {
		t.Errorf("shop's requests reached the global log:\n%s", data)
	}

	// logrotate: move the files away, then SIGHUP (a reload that also
	// gives blog.test its own file, inheriting the json format).
	for _, f := range []string{global, shop} {
		if err := os.Rename(f, f+".1"); err != nil {
			t.Fatal(err)
		}
	}
	if got := g.reload(t, cfg("    log: {access_file: "+blog+"}\n")); got != "ok" {
		t.Fatalf("reload = %s, want ok", got)
	}
	g.get(t, "shop.test", "/after")
	g.get(t, "blog.test", "/after-blog")
	g.get(t, "staging.test", "/after-anon")
	shopLine("/after", "200")
	jsonEntry(blog, "/after-blog")
	jsonEntry(global, "/after-anon")
	for _, f := range []string{global + ".1", shop + ".1"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "/after") {
			t.Errorf("%s was written after the reopen:\n%s", filepath.Base(f), data)
		}
	}
}

// TestCheckHostLog: gatehouse check names the file, line and field of a
// bad hosts[].log.
func TestCheckHostLog(t *testing.T) {
	t.Parallel()
	path := writeFile(t, "gatehouse.yaml", `hosts:
  - match: [www.example.com]
    upstreams: [http://127.0.0.1:3000]
    log:
      access: vcombined
      access_file: /nonexistent-gatehouse-dir/www.log
`)
	_, stderr, code := runGatehouse(t, "check", "-c", path)
	for _, want := range []string{
		path + `:5: hosts[0].log.access: "vcombined" is not one of json, combined, combined_host, off`,
		path + ":6: hosts[0].log.access_file: directory /nonexistent-gatehouse-dir: no such file or directory",
	} {
		if code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("check = %d, stderr %q; want 2 and %q", code, stderr, want)
		}
	}
}
