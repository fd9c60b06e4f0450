package main

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// opsAdmin is an admin section with one token, "ops-token", allowed to
// read and write bans.
const opsAdmin = `admin:
  listen: "127.0.0.1:0"
  tokens:
    - name: ops
      token: sha256:d9310c002af91822beb0b3487d8b04f85bf6bf1f8a5496bff7d35fc7c5a29def
      scopes: [bans:read, bans:write]
`

// TestBansCLI drives `gatehouse bans` against a running gateway's admin
// API: add, list, the ban enforced on the public listener, delete, and
// the API's errors surfacing with exit code 1.
func TestBansCLI(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
`+opsAdmin+`hosts:
  - match: [www.test]
    upstreams: [%s]
`, up.URL()))
	admin := "http://" + g.adminAddr
	run := func(args ...string) (string, string, int) {
		t.Helper()
		return runGatehouse(t, append([]string{"bans"}, append(args, "--admin", admin, "--token", "ops-token")...)...)
	}

	if out, errOut, code := run("add", "127.0.0.1", "--for", "10m", "--reason", "e2e"); code != 0 || !strings.Contains(out, "banned 127.0.0.1 until") {
		t.Fatalf("bans add = %d, %q, %q", code, out, errOut)
	}
	out, errOut, code := run("list")
	if code != 0 || !strings.Contains(out, "127.0.0.1") || !strings.Contains(out, "(manual)") || !strings.Contains(out, "e2e") {
		t.Fatalf("bans list = %d, %q, %q", code, out, errOut)
	}
	hits := up.hits.Load()
	if resp, _ := g.get(t, "www.test", "/"); resp.StatusCode != http.StatusForbidden || up.hits.Load() != hits {
		t.Errorf("banned client: status %d, upstream hit %v, want 403 from the gateway", resp.StatusCode, up.hits.Load() != hits)
	}
	g.waitLog(t, waitTimeout, "audit line", func(log string) bool {
		return strings.Contains(log, `msg="admin call" component=audit token=ops method=POST path=/v1/bans`) &&
			!strings.Contains(log, "ops-token")
	})
	if out, errOut, code := run("del", "127.0.0.1"); code != 0 || !strings.Contains(out, "unbanned") {
		t.Fatalf("bans del = %d, %q, %q", code, out, errOut)
	}
	if resp, _ := g.get(t, "www.test", "/"); resp.StatusCode != http.StatusOK {
		t.Errorf("after unban: status %d, want 200", resp.StatusCode)
	}
	if _, errOut, code := run("del", "127.0.0.1"); code != 1 || errOut != "gatehouse bans del: no ban for 127.0.0.1/32\n" {
		t.Errorf("bans del of nothing = %d, %q, want 1 and the API's reason", code, errOut)
	}
	if _, errOut, code := run("add", "not-an-ip"); code != 2 || !strings.Contains(errOut, `"not-an-ip" is not an IP address or CIDR prefix`) {
		t.Errorf("bans add not-an-ip = %d, %q, want 2 and the argument named", code, errOut)
	}
	if _, errOut, code := runGatehouse(t, "bans", "list", "--admin", admin, "--token", "wrong"); code != 1 || !strings.Contains(errOut, "the admin API refused the token") {
		t.Errorf("bans list with a wrong token = %d, %q, want 1 and the token refused", code, errOut)
	}
	if _, _, code := runGatehouse(t, "bans", "frobnicate"); code != 2 {
		t.Errorf("bans frobnicate = %d, want 2", code)
	}
}

// TestBansSurviveSIGKILL: a jail's ban and an acknowledged manual ban are
// still enforced after the process is killed with SIGKILL and restarted
// on the same state_dir.
func TestBansSurviveSIGKILL(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	cfg := fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
state_dir: %s
`+opsAdmin+`hosts:
  - match: [www.test]
    upstreams: [%s]
probes: {presets: [secrets]}
jails:
  probes: {maxretry: 2, findtime: 1m, bantime: 1h}
log: {level: debug}
`, t.TempDir()+"/state", up.URL())
	g := startGateway(t, cfg)
	if out, errOut, code := runGatehouse(t, "bans", "add", "198.51.100.0/24", "--for", "2h", "--reason", "manual",
		"--admin", "http://"+g.adminAddr, "--token", "ops-token"); code != 0 {
		t.Fatalf("bans add = %d %q %q", code, out, errOut)
	}
	for _, path := range []string{"/.env", "/.aws/credentials"} {
		g.get(t, "www.test", path)
	}
	if resp, _ := g.get(t, "www.test", "/"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("after two probes: status %d, want 403 (banned)", resp.StatusCode)
	}
	// The jail's ban reaches the file with the store's next batch
	// (milliseconds after it is made; a crash in between loses it, see
	// rules/store): wait until the batches written hold both bans. (The
	// batch may be logged before the jail's own "ban" line.)
	batch := regexp.MustCompile(`msg="ban store batch written" [^\n]*changes=(\d+)`)
	g.waitLog(t, waitTimeout, "both bans written", func(log string) bool {
		n := 0
		for _, m := range batch.FindAllStringSubmatch(log, -1) {
			c, _ := strconv.Atoi(m[1])
			n += c
		}
		return n >= 2
	})
	g.kill(t)

	g2 := startGateway(t, cfg)
	g2.waitLog(t, waitTimeout, "bans restored", func(log string) bool {
		return strings.Contains(log, `msg="bans restored"`) && strings.Contains(log, "active=2")
	})
	if resp, _ := g2.get(t, "www.test", "/"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the jail's ban after SIGKILL and restart: status %d, want 403", resp.StatusCode)
	}
	out, errOut, code := runGatehouse(t, "bans", "list", "--admin", "http://"+g2.adminAddr, "--token", "ops-token")
	if code != 0 || !strings.Contains(out, "198.51.100.0/24") || !strings.Contains(out, "127.0.0.1") {
		t.Errorf("bans list after restart = %d %q %q, want both bans", code, out, errOut)
	}
}
