package main

import (
	"fmt"
	"gatehouse/rules/testenv"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// apacheHtpasswd writes an htpasswd file with Apache's own tools: one user
// per format, each with its own password.
func apacheHtpasswd(t *testing.T) (path string, users map[string]string) {
	t.Helper()
	htpasswd := testenv.Tool(t, "htpasswd")
	mkpasswd := testenv.Tool(t, "mkpasswd")
	openssl := testenv.Tool(t, "openssl")
	path = filepath.Join(t.TempDir(), "staging.htpasswd")
	users = map[string]string{
		"bcrypt": "b-pass", "apr1": "m-pass", "sha1": "s-pass", "sha256": "5-pass", "sha512": "6-pass",
		"sha256rounds": "r-pass",
	}
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).Output()
		if err != nil {
			t.Fatalf("%s %v: %v", name, args, err)
		}
		return strings.TrimSpace(string(out))
	}
	run(htpasswd, "-cbB", "-C", "5", path, "bcrypt", users["bcrypt"])
	run(htpasswd, "-bm", path, "apr1", users["apr1"])
	run(htpasswd, "-bs", path, "sha1", users["sha1"])
	lines := []string{
		"# SHA-crypt lines from glibc's and OpenSSL's implementations",
		"sha256:" + run(mkpasswd, "-m", "sha-256", users["sha256"]),
		"sha512:" + run(openssl, "passwd", "-6", users["sha512"]),
		"sha256rounds:" + run(mkpasswd, "-m", "sha-256", "-R", "7000", users["sha256rounds"]),
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path, users
}

func authGet(t *testing.T, g *gateway, host, path, user, pass string) (*http.Response, echo) {
	t.Helper()
	req, err := g.newRequest(t.Context(), "GET", host, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	req.Header.Set("X-Forwarded-User", "spoofed")
	resp, body := g.mustDo(t, req)
	var e echo
	if resp.StatusCode == http.StatusOK {
		e = decodeEcho(t, body)
	}
	return resp, e
}

// TestBasicAuthApacheFiles: a file written by Apache's htpasswd, mkpasswd
// and openssl authenticates every format through the running gateway, on
// the protected paths of the protected host only.
func TestBasicAuthApacheFiles(t *testing.T) {
	t.Parallel()
	path, users := apacheHtpasswd(t)
	up := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [staging.test]
    upstreams: [%[1]s]
    basic_auth: {realm: Staging, htpasswd: %[2]s, paths: [/admin, /grafana/]}
  - match: [public.test]
    upstreams: [%[1]s]
`, up.URL(), path)))

	for user, pass := range users {
		resp, e := authGet(t, g, "staging.test", "/admin/x", user, pass)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s (Apache-written): status %d, want 200", user, resp.StatusCode)
			continue
		}
		if got := e.Header.Get("X-Forwarded-User"); got != user {
			t.Errorf("%s: upstream X-Forwarded-User = %q, want %q", user, got, user)
		}
		if e.Header.Get("Authorization") != "" {
			t.Errorf("%s: upstream received the Authorization header", user)
		}
		if resp, _ := authGet(t, g, "staging.test", "/admin/x", user, pass+"x"); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s with a wrong password: status %d, want 401", user, resp.StatusCode)
		}
	}

	tests := []struct {
		name, host, path, user, pass string
		want                         int
		wantUser                     string
	}{
		{name: "challenge", host: "staging.test", path: "/admin", want: 401},
		{name: "unknown user", host: "staging.test", path: "/admin", user: "nobody", pass: "x", want: 401},
		{name: "case and dot-segment bypass", host: "staging.test", path: "/x/../ADMIN/", want: 401},
		{name: "double slash bypass", host: "staging.test", path: "//grafana/d", want: 401},
		{name: "unprotected path, spoofed user removed", host: "staging.test", path: "/public", want: 200},
		{name: "other host", host: "public.test", path: "/admin", want: 200},
	}
	for _, tc := range tests {
		resp, e := authGet(t, g, tc.host, tc.path, tc.user, tc.pass)
		if resp.StatusCode != tc.want {
			t.Errorf("%s: GET %s%s: status %d, want %d", tc.name, tc.host, tc.path, resp.StatusCode, tc.want)
			continue
		}
		if tc.want == 401 {
			if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="Staging", charset="UTF-8"` {
				t.Errorf("%s: WWW-Authenticate = %q", tc.name, got)
			}
		}
		if tc.want == 200 && e.Header.Get("X-Forwarded-User") != "" {
			t.Errorf("%s: upstream got X-Forwarded-User %q, want none", tc.name, e.Header.Get("X-Forwarded-User"))
		}
	}
}

// TestBasicAuthFileReload: editing the file on disk takes effect without a
// reload; a broken file keeps the previous users.
func TestBasicAuthFileReload(t *testing.T) {
	t.Parallel()
	htpasswd := testenv.Tool(t, "htpasswd")
	path := filepath.Join(t.TempDir(), "users")
	if out, err := exec.Command(htpasswd, "-cbB", "-C", "4", path, "alice", "one").CombinedOutput(); err != nil {
		t.Fatalf("htpasswd: %v: %s", err, out)
	}
	up := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [staging.test]
    upstreams: [%s]
    basic_auth: {htpasswd: %s}
`, up.URL(), path)))
	if resp, _ := authGet(t, g, "staging.test", "/", "alice", "one"); resp.StatusCode != 200 {
		t.Fatalf("alice before the edit: %d", resp.StatusCode)
	}

	// Our own htpasswd command changes the password and adds bob.
	if code, _, stderr := runHtpasswd(path, "", "-bB", "-C", "4", "FILE", "alice", "two"); code != 0 {
		t.Fatalf("htpasswd -b alice: %d %s", code, stderr)
	}
	if code, _, stderr := runHtpasswd(path, "", "-bB", "-C", "4", "FILE", "bob", "three"); code != 0 {
		t.Fatalf("htpasswd -b bob: %d %s", code, stderr)
	}
	waitStatus(t, g, "alice", "two", 200)
	waitStatus(t, g, "bob", "three", 200)
	if resp, _ := authGet(t, g, "staging.test", "/", "alice", "one"); resp.StatusCode != 401 {
		t.Errorf("alice's old password after the edit (it was cached): status %d, want 401", resp.StatusCode)
	}

	// A broken file: the previous users stay, and the error is logged.
	if err := os.WriteFile(path, []byte("alice:plaintext\nthis line is broken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g.waitLog(t, 10*time.Second, "htpasswd reload failed", func(log string) bool {
		return strings.Contains(log, "htpasswd reload failed") && strings.Contains(log, path)
	})
	if resp, _ := authGet(t, g, "staging.test", "/", "bob", "three"); resp.StatusCode != 200 {
		t.Errorf("bob after a broken edit: status %d, want 200 (previous users kept)", resp.StatusCode)
	}
}

// waitStatus polls until user:pass gets want, within a deadline: the file
// is checked for changes every second.
func waitStatus(t *testing.T, g *gateway, user, pass string, want int) {
	t.Helper()
	poll(t, fmt.Sprintf("%s gets %d", user, want), func() bool {
		resp, _ := authGet(t, g, "staging.test", "/", user, pass)
		return resp.StatusCode == want
	})
}

// waitGet polls until GET host/path answers want.
func waitGet(t *testing.T, g *gateway, host, path string, want int) {
	t.Helper()
	poll(t, fmt.Sprintf("GET %s%s answers %d", host, path, want), func() bool {
		resp, _ := g.get(t, host, path)
		return resp.StatusCode == want
	})
}

// poll retries ok every 100 ms until it holds or 10 s pass: for state
// that changes on the gateway's own clock (file polling, ban expiry),
// where there is no event to wait for.
func poll(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
