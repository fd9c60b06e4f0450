package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"gatehouse/rules/testenv"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// End-to-end tests of the credential rules, through the real
// binary: slow hashes, empty passwords, canonical base64 and the
// htpasswd command's file handling.

// apacheRun runs Apache's htpasswd with args, failing the test on error.
func apacheRun(t *testing.T, args ...string) {
	t.Helper()
	bin := testenv.Tool(t, "htpasswd")
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("htpasswd %q: %v: %s", args, err, out)
	}
}

// credsJails keeps the auth jail from banning the test's own address
// while it sends failing logins on purpose.
const credsJails = "jails:\n  auth: {maxretry: 1000, findtime: 1h, bantime: 1h}\n"

// TestCredsSlowHashes: `gatehouse check` refuses an htpasswd file with a
// bcrypt cost-18 entry and one of Apache's SHA-crypt rounds=1000001
// entries, naming the config line, the field and each file:line; with
// basic_auth.allow_slow_hashes it accepts the file and serves it. A
// reload that drops the option fails and the running config keeps
// serving.
func TestCredsSlowHashes(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "users")
	apacheRun(t, "-cbB", "-C", "4", path, "alice", "wonderland")
	// Apache refuses -C 18 itself, so the cost-18 line is written by
	// hand: well-formed, never verified here.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("slowb:$2y$18$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	apacheRun(t, "-b2", "-r", "1000001", path, "slowsha", "pw")

	up := newEchoUpstream(t, "app")
	cfg := func(extra string) string {
		return gatewayConfig(fmt.Sprintf(`hosts:
  - match: [staging.test]
    upstreams: [%s]
    basic_auth:
      htpasswd: %s
%s`, up.URL(), path, extra)) + credsJails
	}
	strict, loose := cfg(""), cfg("      allow_slow_hashes: true\n")

	cfgPath := writeFile(t, "gatehouse.yaml", strict)
	_, stderr, code := runGatehouse(t, "check", "-c", cfgPath)
	line := lineOf(strict, "htpasswd: ")
	for _, want := range []string{
		fmt.Sprintf("%s:%d: hosts[0].basic_auth.htpasswd: %s:2: user \"slowb\": bcrypt cost 18 is above 17", cfgPath, line, path),
		fmt.Sprintf("%s:%d: hosts[0].basic_auth.htpasswd: %s:3: user \"slowsha\": SHA-256-crypt rounds=1000001 is above 1000000", cfgPath, line, path),
		"allow_slow_hashes",
	} {
		if code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("gatehouse check (cost 18, no allow_slow_hashes) = exit %d, stderr:\n%s\nwant exit 2 and %q", code, stderr, want)
		}
	}
	if strings.Contains(stderr, "$2y$18$") {
		t.Errorf("gatehouse check echoed a hash: %s", stderr)
	}
	if err := os.WriteFile(cfgPath, []byte(loose), 0o600); err != nil {
		t.Fatal(err)
	}
	if stdout, stderr, code := runGatehouse(t, "check", "-c", cfgPath); code != 0 {
		t.Fatalf("gatehouse check with allow_slow_hashes = exit %d, %s%s; want 0", code, stdout, stderr)
	}

	g := startGateway(t, loose)
	if resp, _ := authGet(t, g, "staging.test", "/", "alice", "wonderland"); resp.StatusCode != http.StatusOK {
		t.Fatalf("alice with allow_slow_hashes: status %d, want 200", resp.StatusCode)
	}
	if got := g.reload(t, strict); got != "failed" {
		t.Fatalf("reload to a config without allow_slow_hashes = %s, want failed", got)
	}
	g.waitLog(t, waitTimeout, "the reload error naming the file and line", func(log string) bool {
		return strings.Contains(log, path+":2: ") && strings.Contains(log, "bcrypt cost 18 is above 17")
	})
	if resp, _ := authGet(t, g, "staging.test", "/", "alice", "wonderland"); resp.StatusCode != http.StatusOK {
		t.Errorf("alice after the failed reload: status %d, want 200 (old config serving)", resp.StatusCode)
	}
}

// TestCredsEmptyPassword: Apache's `htpasswd -b FILE nopw ”` entry loads
// with a warning naming file, line and user (not the hash), and its
// empty password gets 401 and counts as an auth offence.
func TestCredsEmptyPassword(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "users")
	apacheRun(t, "-cbB", "-C", "4", path, "alice", "wonderland")
	apacheRun(t, "-bB", "-C", "4", path, "nopw", "")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	nopwHash := strings.TrimSpace(strings.SplitN(strings.Split(string(data), "\n")[1], ":", 2)[1])

	up := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [staging.test]
    upstreams: [%s]
    basic_auth: {htpasswd: %s}
`, up.URL(), path))+credsJails)
	log := g.waitLog(t, waitTimeout, "the empty-password warning", func(log string) bool {
		return strings.Contains(log, "empty password")
	})
	warning := log[strings.LastIndex(log[:strings.Index(log, "empty password")], "\n")+1:]
	warning = warning[:strings.Index(warning, "\n")]
	for _, want := range []string{"level=WARN", "path=" + path, "line=2", "user=nopw"} {
		if !strings.Contains(warning, want) {
			t.Errorf("warning %q lacks %q", warning, want)
		}
	}
	if strings.Contains(log, nopwHash) {
		t.Errorf("the log holds nopw's hash:\n%s", log)
	}

	before := g.metric(t, "gatehouse_jail_offences_total", "jail", "auth")
	resp, _ := authGet(t, g, "staging.test", "/", "nopw", "")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("nopw with its (empty) password: status %d, want 401", resp.StatusCode)
	}
	g.waitMetric(t, before+1, "gatehouse_jail_offences_total", "jail", "auth")
	if resp, _ := authGet(t, g, "staging.test", "/", "alice", "wonderland"); resp.StatusCode != http.StatusOK {
		t.Errorf("alice: status %d, want 200", resp.StatusCode)
	}
}

// rawAuthStatus sends one request with exactly auth as its Authorization
// value, over a raw connection so nothing re-encodes it, and returns the
// status.
func rawAuthStatus(t *testing.T, g *gateway, auth string) int {
	t.Helper()
	conn, err := net.Dial("tcp", g.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatal(err)
	}
	req := "GET / HTTP/1.1\r\nHost: staging.test\r\nAuthorization: " + auth + "\r\nConnection: close\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response to Authorization %q: %v", auth, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestCredsCanonicalBase64: only the canonical padded standard base64 of
// "user:password" logs in; every other encoding of the same credentials
// gets 401 and an auth offence.
func TestCredsCanonicalBase64(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "users")
	// "~~~>" makes the standard and URL alphabets differ.
	const user, pass = "alice", "won~~~>der"
	apacheRun(t, "-cbB", "-C", "4", path, user, pass)
	up := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [staging.test]
    upstreams: [%s]
    basic_auth: {htpasswd: %s}
`, up.URL(), path))+credsJails)

	canonical := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	if !strings.HasSuffix(canonical, "=") || !strings.ContainsAny(canonical, "+/") {
		t.Fatalf("canonical %q: want padding and a +/ character, so the variants differ", canonical)
	}
	if got := rawAuthStatus(t, g, "Basic "+canonical); got != http.StatusOK {
		t.Fatalf("canonical Basic %s: status %d, want 200", canonical, got)
	}
	if got := rawAuthStatus(t, g, "bASIC   "+canonical); got != http.StatusOK {
		t.Errorf("scheme in another case, several spaces: status %d, want 200", got)
	}
	mid := len(canonical) / 2
	variants := map[string]string{
		"unpadded":         strings.TrimRight(canonical, "="),
		"stray byte":       canonical + "A",
		"stray padding":    canonical + "=",
		"space inside":     canonical[:mid] + " " + canonical[mid:],
		"tab inside":       canonical[:mid] + "\t" + canonical[mid:],
		"URL alphabet":     base64.URLEncoding.EncodeToString([]byte(user + ":" + pass)),
		"non-zero padding": canonical[:len(canonical)-2] + string(canonical[len(canonical)-2]+1) + "=",
	}
	before := g.metric(t, "gatehouse_jail_offences_total", "jail", "auth")
	for name, v := range variants {
		if got := rawAuthStatus(t, g, "Basic "+v); got != http.StatusUnauthorized {
			t.Errorf("%s (Basic %s): status %d, want 401", name, v, got)
		}
	}
	g.waitMetric(t, before+float64(len(variants)), "gatehouse_jail_offences_total", "jail", "auth")
	// Another scheme is a challenge, not an offence.
	if got := rawAuthStatus(t, g, "Bearer "+canonical); got != http.StatusUnauthorized {
		t.Errorf("Bearer: status %d, want 401", got)
	}
	if got := rawAuthStatus(t, g, "Basic "+canonical); got != http.StatusOK {
		t.Errorf("canonical again: status %d, want 200", got)
	}
	if got := g.metric(t, "gatehouse_jail_offences_total", "jail", "auth"); got != before+float64(len(variants)) {
		t.Errorf("auth offences = %v after a Bearer request, want %v", got, before+float64(len(variants)))
	}
}

// TestCredsHtpasswdFiles: the real binary's `gatehouse htpasswd` refuses
// a symlink (exit 1) unless --follow, refuses to edit or replace (-c) a
// file that is not an htpasswd file (exit 7) where Apache's htpasswd
// appends to it, and -c replaces an empty file.
func TestCredsHtpasswdFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	real, link := filepath.Join(dir, "real.htpasswd"), filepath.Join(dir, "link.htpasswd")
	if _, _, code := runGatehouse(t, "htpasswd", "-cbC", "4", real, "alice", "one"); code != 0 {
		t.Fatalf("htpasswd -c: exit %d", code)
	}
	if err := os.Symlink("real.htpasswd", link); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(real)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-bC", "4", link, "bob", "two"},
		{"-cbC", "4", link, "bob", "two"},
		{"-D", link, "alice"},
	} {
		_, stderr, code := runGatehouse(t, append([]string{"htpasswd"}, args...)...)
		if code != 1 || !strings.Contains(stderr, link+" is a symbolic link; refusing to follow it (use --follow") {
			t.Errorf("gatehouse htpasswd %q = exit %d, stderr %q; want exit 1 and the symlink refusal", args, code, stderr)
		}
	}
	if after, _ := os.ReadFile(real); string(after) != string(before) {
		t.Errorf("the link's target changed though every edit was refused: %q", after)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("%s is no longer a symlink (%v)", link, err)
	}
	if _, stderr, code := runGatehouse(t, "htpasswd", "--follow", "-bC", "4", link, "bob", "two"); code != 0 {
		t.Fatalf("htpasswd --follow -b: exit %d, %s", code, stderr)
	}
	if _, stderr, code := runGatehouse(t, "htpasswd", "-vb", real, "bob", "two"); code != 0 {
		t.Errorf("bob in the target after --follow: exit %d, %s", code, stderr)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Errorf("after --follow, %s is no longer a symlink (%v)", link, err)
	}

	const yaml = "listen:\n  http: :80\nhosts: []\n"
	for _, args := range [][]string{{"-bC", "4"}, {"-cbC", "4"}} {
		cfg := writeFile(t, "gatehouse.yaml", yaml)
		_, stderr, code := runGatehouse(t, append(append([]string{"htpasswd"}, args...), cfg, "bob", "two")...)
		if code != 7 || !strings.Contains(stderr, cfg+":1: user \"listen\": not an htpasswd entry") ||
			!strings.Contains(stderr, cfg+" is not a valid htpasswd file") {
			t.Errorf("gatehouse htpasswd %q on a YAML file = exit %d, stderr %q; want exit 7 naming %s:1", args, code, stderr, cfg)
		}
		if got, _ := os.ReadFile(cfg); string(got) != yaml {
			t.Errorf("gatehouse htpasswd %q changed the YAML file to %q", args, got)
		}
	}
	// Apache's htpasswd, by contrast, appends to the same file: the
	// refusal above is ours, not an accident of the file's shape.
	apacheYAML := writeFile(t, "apache.yaml", yaml)
	apacheRun(t, "-bB", "-C", "4", apacheYAML, "bob", "two")
	if got, _ := os.ReadFile(apacheYAML); !strings.HasPrefix(string(got), yaml+"bob:") {
		t.Errorf("Apache's htpasswd on a YAML file wrote %q; the comparison no longer holds", got)
	}

	empty := writeFile(t, "empty.htpasswd", "")
	if _, stderr, code := runGatehouse(t, "htpasswd", "-cbC", "4", empty, "carol", "three"); code != 0 {
		t.Errorf("htpasswd -c on an empty file: exit %d, %s; want 0", code, stderr)
	}
	if _, stderr, code := runGatehouse(t, "htpasswd", "-vb", empty, "carol", "three"); code != 0 {
		t.Errorf("carol after -c on an empty file: exit %d, %s", code, stderr)
	}
}

// TestCredsSharedFileSettings: two hosts share one htpasswd file, one
// with allow_slow_hashes. When a slow entry and a new user are added to
// the file, the allowing host reloads it and lets the new user in; the
// strict host refuses the new version, logs why, and keeps the previous
// users — each host gets exactly the rule it configured.
func TestCredsSharedFileSettings(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "users")
	apacheRun(t, "-cbB", "-C", "4", path, "alice", "one")
	up := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [loose.test]
    upstreams: [%[1]s]
    basic_auth: {htpasswd: %[2]s, allow_slow_hashes: true}
  - match: [strict.test]
    upstreams: [%[1]s]
    basic_auth: {htpasswd: %[2]s}
`, up.URL(), path))+credsJails)
	for _, host := range []string{"loose.test", "strict.test"} {
		if resp, _ := authGet(t, g, host, "/", "alice", "one"); resp.StatusCode != http.StatusOK {
			t.Fatalf("alice on %s: status %d, want 200", host, resp.StatusCode)
		}
	}

	apacheRun(t, "-bB", "-C", "4", path, "bob", "two")
	apacheRun(t, "-b2", "-r", "1000001", path, "slowsha", "pw")
	poll(t, "bob logs in on loose.test", func() bool {
		resp, _ := authGet(t, g, "loose.test", "/", "bob", "two")
		return resp.StatusCode == http.StatusOK
	})
	g.waitLog(t, waitTimeout, "the strict store's reload failure", func(log string) bool {
		return strings.Contains(log, "htpasswd reload failed") && strings.Contains(log, path+":3: ")
	})
	if resp, _ := authGet(t, g, "strict.test", "/", "bob", "two"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("bob on strict.test: status %d, want 401 (the file with a slow hash was refused there)", resp.StatusCode)
	}
	if resp, _ := authGet(t, g, "strict.test", "/", "alice", "one"); resp.StatusCode != http.StatusOK {
		t.Errorf("alice on strict.test: status %d, want 200 (previous users kept)", resp.StatusCode)
	}
}
