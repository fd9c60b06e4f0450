package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestBansTokenFile: --token-file reads the token from a file, less its
// trailing newline, for bans and sign alike; a wrong, empty or
// several-line file, or both --token and --token-file, are refused.
func TestBansTokenFile(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
`+opsAdmin+`hosts:
  - match: [www.test]
    upstreams: [%s]
`, up.URL()))
	admin := "http://" + g.adminAddr
	dir := t.TempDir()
	file := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := file("token", "ops-token\n")
	crlf := file("token-crlf", "ops-token\r\n")

	for _, tf := range []string{good, crlf} {
		if out, errOut, code := runGatehouse(t, "bans", "add", "203.0.113.9", "--for", "10m", "--admin", admin, "--token-file", tf); code != 0 || !strings.Contains(out, "banned 203.0.113.9 until") {
			t.Fatalf("bans add --token-file %s = %d, %q, %q; want 0", filepath.Base(tf), code, out, errOut)
		}
	}
	// $GATEHOUSE_TOKEN is only --token's default: --token-file wins over it.
	if out, errOut, code := runGatehouseEnv(t, []string{"GATEHOUSE_TOKEN=wrong"}, "bans", "list", "--admin", admin, "--token-file", good); code != 0 || !strings.Contains(out, "203.0.113.9") {
		t.Errorf("bans list --token-file with a wrong $GATEHOUSE_TOKEN = %d, %q, %q; want 0 and the ban", code, out, errOut)
	}
	// Without --admin, -c FILE (or $GATEHOUSE_CONFIG) names the gateway by
	// its admin.listen, as healthcheck does.
	cfg := file("gatehouse.yaml", fmt.Sprintf("admin:\n  listen: %q\n", g.adminAddr))
	for _, args := range [][]string{{"-c", cfg}, nil} {
		out, errOut, code := runGatehouseEnv(t, []string{"GATEHOUSE_CONFIG=" + cfg}, append([]string{"bans", "list", "--token-file", good}, args...)...)
		if code != 0 || !strings.Contains(out, "203.0.113.9") {
			t.Errorf("bans list --token-file %v (admin.listen from the config) = %d, %q, %q; want 0 and the ban", args, code, out, errOut)
		}
	}
	// sign takes it too; this token lacks sign:link, so the gateway's
	// refusal proves the token was sent and read.
	if _, errOut, code := runGatehouse(t, "sign", "link", "--url", "http://www.test/a", "--admin", admin, "--token-file", good); code != 1 || !strings.Contains(errOut, "refused by the admin API: token ops lacks scope sign:link") {
		t.Errorf("sign link --token-file = %d, %q; want 1 and the missing scope", code, errOut)
	}

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"wrong token", []string{"--token-file", file("wrong", "nope\n")}, 1, "gatehouse bans list: the admin API refused the token (unknown token)"},
		{"empty file", []string{"--token-file", file("empty", "\n")}, 2, "is empty"},
		{"two lines", []string{"--token-file", file("two", "ops-token\nmore\n")}, 2, "has more than one line"},
		{"missing file", []string{"--token-file", filepath.Join(dir, "absent")}, 2, "--token-file " + filepath.Join(dir, "absent") + ": no such file"},
		// Read as the config reads a file: reference: bounded, regular files only.
		{"device", []string{"--token-file", "/dev/zero"}, 2, "--token-file /dev/zero: not a regular file"},
		// HTTP strips these from a header: such a token could never match.
		{"trailing space", []string{"--token-file", file("space", "ops-token  \n")}, 2, "starts or ends with a space or tab"},
		{"control byte", []string{"--token-file", file("esc", "ops\x1btoken\n")}, 2, "control character"},
		{"both flags", []string{"--token-file", good, "--token", "ops-token"}, 2, "give --token or --token-file, not both"},
		{"no token", nil, 2, "the admin API needs a token: give --token, --token-file or $GATEHOUSE_TOKEN"},
	} {
		_, errOut, code := runGatehouse(t, append([]string{"bans", "list", "--admin", admin}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "{") {
			t.Errorf("%s: bans list = %d, %q; want %d and %q", tc.name, code, errOut, tc.code, tc.want)
		}
	}
}

// TestCLIErrorsBeforeContact: a malformed argument of bans or sign is a
// usage error (exit 2) said in the CLI's terms, found before the gateway
// is asked: the admin API standing in here must see no request.
func TestCLIErrorsBeforeContact(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, `{"error":"should not be asked"}`, http.StatusTeapot)
	}))
	t.Cleanup(api.Close)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bans", "add", "1.2.3.4", "--for", "1x"}, `gatehouse bans add: invalid duration "1x" for --for: unknown unit "x"`},
		{[]string{"bans", "add", "1.2.3.4", "--for", "-5m"}, `invalid duration "-5m" for --for: negative durations are not allowed`},
		{[]string{"bans", "add", "not-an-ip"}, `gatehouse bans add: "not-an-ip" is not an IP address or CIDR prefix`},
		{[]string{"bans", "add", "fe80::1%eth0"}, `has a zone`},
		{[]string{"bans", "del", "10.0.0.0/33"}, `gatehouse bans del: "10.0.0.0/33" is not an IP address or CIDR prefix`},
		{[]string{"bans", "list", "--admin", "ftp://x"}, `--admin "ftp://x" is not an http(s) URL`},
		{[]string{"sign", "link", "--url", "http://www.test/a", "--expires", "2q"}, `gatehouse sign link: invalid duration "2q" for --expires:`},
	} {
		args := append(tc.args, "--token", "t")
		if !strings.Contains(strings.Join(tc.args, " "), "--admin") {
			args = append(args, "--admin", api.URL)
		}
		out, errOut, code := runGatehouse(t, args...)
		if code != 2 || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("gatehouse %s = %d, %q, %q; want 2 and %q", strings.Join(tc.args, " "), code, out, errOut, tc.want)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the admin API was asked %d times; want 0", n)
	}

	// A gateway that is not there is named, without Go's request dump.
	addr := closedAddr(t)
	_, errOut, code := runGatehouse(t, "bans", "list", "--admin", "http://"+addr, "--token", "t")
	if code != 1 || !strings.Contains(errOut, "cannot reach the admin API at http://"+addr) || strings.Contains(errOut, `Get "`) {
		t.Errorf("bans list against a closed port = %d, %q; want 1 and the address", code, errOut)
	}
}

// TestHealthcheck: `gatehouse healthcheck` exits 0 against a ready
// gateway found by --admin, $GATEHOUSE_ADMIN or the config's admin.listen,
// and 1 with one line on stderr otherwise.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`hosts:
  - match: [www.test]
    upstreams: [%s]
`, up.URL())))
	admin := "http://" + g.adminAddr
	// A config naming the running gateway's admin port on the wildcard
	// address: healthcheck dials loopback. Another key is broken: only
	// admin.listen is read.
	_, port, _ := net.SplitHostPort(g.adminAddr)
	cfg := writeFile(t, "gatehouse.yaml", fmt.Sprintf("admin:\n  listen: \"0.0.0.0:%s\"\nnot_a_key: 1\n", port))

	for _, tc := range []struct {
		name string
		env  []string
		args []string
	}{
		{"--admin", nil, []string{"--admin", admin}},
		{"$GATEHOUSE_ADMIN", []string{"GATEHOUSE_ADMIN=" + admin}, nil},
		{"-c", nil, []string{"-c", cfg}},
		{"$GATEHOUSE_CONFIG", []string{"GATEHOUSE_CONFIG=" + cfg}, nil},
	} {
		out, errOut, code := runGatehouseEnv(t, tc.env, append([]string{"healthcheck"}, tc.args...)...)
		if code != 0 || out != "" || errOut != "" {
			t.Errorf("healthcheck by %s = %d, %q, %q; want 0 and no output", tc.name, code, out, errOut)
		}
	}

	closed := closedAddr(t)
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"status":"not ready"}`, http.StatusServiceUnavailable)
	}))
	t.Cleanup(notReady.Close)
	// A redirect is not the gateway saying it is ready: not followed.
	redirect := httptest.NewServer(http.RedirectHandler(admin+"/readyz", http.StatusFound))
	t.Cleanup(redirect.Close)
	off := writeFile(t, "off.yaml", "admin:\n  listen: \"off\"\n")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"nothing listening", []string{"--admin", "http://" + closed}, "http://" + closed + "/readyz: dial tcp " + closed},
		{"not ready", []string{"--admin", notReady.URL}, notReady.URL + "/readyz answered 503 Service Unavailable"},
		{"admin off", []string{"-c", off}, "admin.listen is off"},
		{"missing config", []string{"-c", filepath.Join(t.TempDir(), "absent.yaml")}, "read config: open "},
		{"bad flag", []string{"--frobnicate"}, "flag provided but not defined"},
		{"redirect", []string{"--admin", redirect.URL}, redirect.URL + "/readyz answered 302 Found"},
		// /metrics answers 200 too: a query must not turn /readyz into
		// part of another path's query string.
		{"query", []string{"--admin", admin + "/metrics?"}, "without a query or fragment"},
		{"fragment", []string{"--admin", admin + "/metrics#"}, "without a query or fragment"},
		// A password in the URL is never printed.
		{"password", []string{"--admin", "http://ops:s3cr3t@" + closed}, "http://ops:xxxxx@" + closed + "/readyz: dial tcp"},
	} {
		out, errOut, code := runGatehouse(t, append([]string{"healthcheck"}, tc.args...)...)
		if strings.Contains(errOut, "s3cr3t") {
			t.Errorf("healthcheck, %s printed the URL's password: %q", tc.name, errOut)
		}
		if code != 1 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("healthcheck, %s = %d, %q, %q; want 1 and %q", tc.name, code, out, errOut, tc.want)
		}
		if tc.name != "bad flag" && strings.Count(errOut, "\n") != 1 {
			t.Errorf("healthcheck, %s: stderr %q; want one line", tc.name, errOut)
		}
	}
}
