package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/rules/testenv"
)

// authLine is an auth.log line of sshd at t, each of another connection
// (process).
func authLine(t time.Time, msg string) string {
	return t.Format("Jan _2 15:04:05") + " bastion sshd[" + strconv.FormatInt(authPID.Add(1), 10) + "]: " + msg + "\n"
}

var authPID atomic.Int64

func appendFile(t *testing.T, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestWatchFileRestart: a watch-only config (no hosts, no public port)
// follows an auth.log with the built-in sshd filter; failed logins count,
// a successful one, an old line and a host name do not; the count
// survives a restart without any line read twice, and the third failure
// after it bans.
func TestWatchFileRestart(t *testing.T) {
	t.Parallel()
	hook, got := webhookReceiver(t)
	dir := t.TempDir()
	log := filepath.Join(dir, "auth.log")
	now := time.Now()
	appendFile(t, log, authLine(now.Add(-2*time.Hour), "Failed password for root from 198.51.100.7 port 40000 ssh2"))
	cfg := gatewayConfig(fmt.Sprintf(`state_dir: %s
watch:
  - name: sshd
    filter: sshd
    files: [%s]
jails:
  sshd: {maxretry: 3, findtime: 10m, bantime: 1h}
notify:
  webhook: %s/hook
`, filepath.Join(dir, "state"), log, hook))
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGatewayIn(t, "", cfgPath)
	if g.httpAddr != "" {
		t.Fatalf("a config without hosts listens on %s", g.httpAddr)
	}
	appendFile(t, log, authLine(time.Now(), "Failed password for root from 198.51.100.7 port 40001 ssh2")+
		authLine(time.Now(), "Accepted password for alice from 198.51.100.7 port 40002 ssh2")+
		authLine(time.Now(), "Failed password for invalid user admin from attacker.example port 40003 ssh2")+
		authLine(time.Now(), "Failed password for root from 198.51.100.7 port 40004 ssh2"))
	g.waitMetric(t, 2, "gatehouse_watch_lines_total", "source", "sshd", "result", "fail")
	g.waitMetric(t, 1, "gatehouse_watch_lines_total", "source", "sshd", "result", "unresolved")
	g.waitMetric(t, 1, "gatehouse_watch_lines_total", "source", "sshd", "result", "old")
	if n := g.metric(t, "gatehouse_bans_active", "jail", "sshd"); n != 0 {
		t.Fatalf("banned after 2 failures of maxretry 3 (%v)", n)
	}
	g.stop()
	if code := g.exitCode(); code != 0 {
		t.Fatalf("exit code %d", code)
	}

	g = startGatewayIn(t, "", cfgPath)
	g.waitLog(t, waitTimeout, "counts restored", func(l string) bool { return strings.Contains(l, "msg=\"offence counts restored\"") })
	// A line after the restart is judged after any line read again
	// would have been: it being judged shows none was.
	appendFile(t, log, authLine(time.Now(), "Accepted publickey for bob from 203.0.113.9 port 50000 ssh2"))
	g.waitMetric(t, 1, "gatehouse_watch_lines_total", "source", "sshd", "result", "nomatch")
	if n := g.metric(t, "gatehouse_watch_lines_total", "source", "sshd", "result", "fail"); n != 0 {
		t.Fatalf("%v lines judged again after the restart", n)
	}
	appendFile(t, log, authLine(time.Now(), "Failed password for root from 198.51.100.7 port 40005 ssh2"))
	g.waitMetric(t, 1, "gatehouse_bans_active", "jail", "sshd")
	// The notification says which source and which line.
	select {
	case p := <-got:
		want := "watch sshd " + log + ": "
		if len(p.Bans) != 1 || p.Bans[0].IP != "198.51.100.7" || p.Bans[0].Jail != "sshd" ||
			!slices.ContainsFunc(p.Bans[0].Requests, func(l string) bool {
				return strings.HasPrefix(l, want) && strings.Contains(l, "port 40005")
			}) {
			t.Fatalf("webhook payload = %+v, want the ban of 198.51.100.7 quoting %q…port 40005", p, want)
		}
	case <-time.After(waitTimeout):
		t.Fatal("no webhook call within the deadline")
	}
}

// TestWatchCrash: after kill -9, the lines judged since the last
// checkpoint are read again and counted against that checkpoint's
// counts: once, never twice, and none lost.
func TestWatchCrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := filepath.Join(dir, "auth.log")
	appendFile(t, log, "")
	state := filepath.Join(dir, "state")
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	cfg := fmt.Sprintf(`admin: {listen: 127.0.0.1:0}
state_dir: %s
watch:
  - {name: sshd, filter: sshd, files: [%s]}
jails:
  sshd: {maxretry: 4, findtime: 10m, bantime: 1h}
`, state, log)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	fail := func(port int) string {
		return authLine(time.Now(), fmt.Sprintf("Failed password for root from 198.51.100.8 port %d ssh2", port))
	}
	started := time.Now()
	g := startGatewayIn(t, "", cfgPath)
	appendFile(t, log, fail(1)+fail(2))
	g.waitMetric(t, 2, "gatehouse_watch_lines_total", "source", "sshd", "result", "fail")
	// Wait for the periodic checkpoint to hold both, then one more line
	// that no checkpoint holds when the process dies.
	checkpoint := filepath.Join(state, "offences.state")
	deadline := time.Now().Add(waitTimeout)
	for {
		if fi, err := os.Stat(checkpoint); err == nil && fi.ModTime().After(started) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint written")
		}
		g.pause(t)
	}
	appendFile(t, log, fail(3))
	g.waitMetric(t, 3, "gatehouse_watch_lines_total", "source", "sshd", "result", "fail")
	g.kill(t)

	g = startGatewayIn(t, "", cfgPath)
	appendFile(t, log, authLine(time.Now(), "Accepted publickey for bob from 203.0.113.9 port 50000 ssh2"))
	g.waitMetric(t, 1, "gatehouse_watch_lines_total", "source", "sshd", "result", "nomatch")
	// The third failure is read again (it came after the checkpoint);
	// the first two are not.
	if n := g.metric(t, "gatehouse_watch_lines_total", "source", "sshd", "result", "fail"); n != 1 {
		t.Fatalf("%v failures judged after the crash, want 1 (the one after the checkpoint)", n)
	}
	if n := g.metric(t, "gatehouse_bans_active", "jail", "sshd"); n != 0 {
		t.Fatal("banned after 3 failures of maxretry 4: a line was counted twice")
	}
	appendFile(t, log, fail(4))
	g.waitMetric(t, 1, "gatehouse_bans_active", "jail", "sshd")
}

// TestWatchReload: a reload adds and removes watch sources and keeps the
// counts of the jails it leaves alone; a reload with a filter RE2 cannot
// compile fails and the running sources go on.
func TestWatchReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	appendFile(t, a, "")
	appendFile(t, b, "")
	cfg := func(watch string) string {
		return "admin: {listen: 127.0.0.1:0}\nwatch:\n" + watch + "jails:\n  sshd: {maxretry: 3, findtime: 10m, bantime: 1h}\n"
	}
	srcA := "  - {name: a, filter: sshd, files: [" + a + "], jail: sshd}\n"
	srcB := "  - {name: b, filter: {failregex: ['^app: bad login from <HOST>$']}, files: [" + b + "], jail: sshd}\n"
	g := startGateway(t, cfg(srcA))
	fail := authLine(time.Now(), "Failed password for root from 198.51.100.9 port 1 ssh2")
	appendFile(t, a, fail)
	g.waitMetric(t, 1, "gatehouse_watch_lines_total", "source", "a", "result", "fail")

	if got := g.reload(t, cfg(srcA+"  - {name: b, filter: {failregex: ['from <HOST>(?=x)']}, files: ["+b+"], jail: sshd}\n")); got != "failed" {
		t.Fatalf("reload with a look-ahead: %s, want failed", got)
	}
	if got := g.reload(t, cfg(srcB)); got != "ok" {
		t.Fatalf("reload: %s", got)
	}
	appendFile(t, b, "app: bad login from 198.51.100.9\n")
	g.waitMetric(t, 1, "gatehouse_watch_lines_total", "source", "b", "result", "fail")
	appendFile(t, a, fail) // a is no longer watched
	appendFile(t, b, "app: bad login from 198.51.100.9\n")
	g.waitMetric(t, 1, "gatehouse_bans_active", "jail", "sshd")
	// A removed source's series go, and it judges nothing more.
	if strings.Contains(g.metrics(t), `source="a"`) {
		t.Errorf("series of the removed source a are still exported:\n%s", g.metrics(t))
	}
}

// TestWatchCheck: check names a source that cannot be read as a warning
// (exit 0) and a filter RE2 cannot express as an error with its line
// (exit 2).
func TestWatchCheck(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "auth.log")
	ok := writeFile(t, "ok.yaml", "watch:\n  - {name: sshd, filter: sshd, files: ["+missing+"]}\njails:\n  sshd: {}\n")
	_, stderr, code := runGatehouse(t, "check", "-c", ok)
	if code != 0 || !strings.Contains(stderr, "ok.yaml:2: watch[0].files: warning: watch sshd: "+missing+": no file to read") {
		t.Fatalf("check: exit %d, stderr %q; want 0 and the unreadable source named", code, stderr)
	}
	bad := writeFile(t, "bad.yaml", "watch:\n  - name: app\n    files: [/var/log/app.log]\n    filter:\n      failregex:\n        - '(?<=from )<HOST>'\njails:\n  app: {}\n")
	_, stderr, code = runGatehouse(t, "check", "-c", bad)
	if code != 2 || !strings.Contains(stderr, "bad.yaml:6: watch[0].filter.failregex[0]:") || !strings.Contains(stderr, "look-behind") {
		t.Fatalf("check: exit %d, stderr %q; want 2 and the look-behind named at line 6", code, stderr)
	}
}

// TestWatchJournal: a journal source reads a real journal (written by
// systemd-journal-remote, read by the real journalctl) with the
// built-in sshd filter and its usual identifiers, bans, and after a
// restart resumes from its saved cursor.
func TestWatchJournal(t *testing.T) {
	t.Parallel()
	testenv.Tool(t, "journalctl")
	remote := ""
	for _, p := range []string{"/lib/systemd/systemd-journal-remote", "/usr/lib/systemd/systemd-journal-remote"} {
		if _, err := os.Stat(p); err == nil {
			remote = p
		}
	}
	if remote == "" {
		testenv.Missing(t, "systemd-journal-remote not installed (Debian package systemd-journal-remote)")
	}
	dir := t.TempDir()
	journal := filepath.Join(dir, "journal")
	if err := os.Mkdir(journal, 0o700); err != nil {
		t.Fatal(err)
	}
	port := 0
	write := func(ip string, n int) {
		t.Helper()
		var b strings.Builder
		for range n {
			port++
			fmt.Fprintf(&b, "__CURSOR=x\n__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=bastion\nSYSLOG_IDENTIFIER=sshd\n_PID=%d\n_SYSTEMD_UNIT=ssh.service\nMESSAGE=Failed password for root from %s port %d ssh2\n\n",
				time.Now().UnixMicro(), port, 1000+port, ip, port)
		}
		cmd := exec.Command(remote, "-o", filepath.Join(journal, "test.journal"), "-")
		cmd.Stdin = strings.NewReader(b.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("systemd-journal-remote: %v\n%s", err, out)
		}
	}
	write("198.51.100.20", 1) // before the first start, within findtime: read back
	cfgPath := writeFile(t, "journal.yaml", fmt.Sprintf(`admin: {listen: 127.0.0.1:0}
state_dir: %s
watch:
  - {name: sshd, filter: sshd, journal: {directory: %s}}
jails:
  sshd: {maxretry: 3, findtime: 10m, bantime: 1h}
`, filepath.Join(dir, "state"), journal))
	g := startGatewayIn(t, "", cfgPath)
	g.waitMetric(t, 1, "gatehouse_watch_lines_total", "source", "sshd", "result", "fail")
	write("198.51.100.20", 1)
	g.waitMetric(t, 2, "gatehouse_watch_lines_total", "source", "sshd", "result", "fail")
	g.stop()

	g = startGatewayIn(t, "", cfgPath)
	write("198.51.100.21", 1)
	g.waitMetric(t, 1, "gatehouse_watch_lines_total", "source", "sshd", "result", "fail")
	write("198.51.100.20", 1)
	g.waitMetric(t, 1, "gatehouse_bans_active", "jail", "sshd")
	if n := g.metric(t, "gatehouse_watch_lines_total", "source", "sshd", "result", "fail"); n != 2 {
		t.Fatalf("%v failures judged after the restart, want 2: entries before it were read again", n)
	}
}

// TestJailCountsSurviveRestart: HTTP offences counted before a restart
// count after it: a scanner cannot reset its count by getting the
// gateway restarted.
func TestJailCountsSurviveRestart(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	cfgPath := writeFile(t, "gatehouse.yaml", gatewayConfig(fmt.Sprintf(`state_dir: %s
hosts:
  - match: [www.test]
    upstreams: [%s]
probes: {presets: [secrets]}
jails:
  probes: {maxretry: 3, findtime: 10m, bantime: 1h}
`, filepath.Join(t.TempDir(), "state"), up.URL())))
	g := startGatewayIn(t, "", cfgPath)
	g.get(t, "www.test", "/.env")
	g.get(t, "www.test", "/.aws/credentials")
	g.stop()
	g = startGatewayIn(t, "", cfgPath)
	if resp, _ := g.get(t, "www.test", "/"); resp.StatusCode != 200 {
		t.Fatalf("GET / = %d before the third probe", resp.StatusCode)
	}
	g.get(t, "www.test", "/.env")
	g.waitMetric(t, 1, "gatehouse_bans_active", "jail", "probes")
}
