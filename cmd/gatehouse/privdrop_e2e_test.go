//go:build linux

package main

import (
	"context"
	"fmt"
	"gatehouse/rules/testenv"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The privilege tests start the real binary as root: `serve` refuses to
// keep running as root, and `serve --user nobody` ends up as nobody, on
// every thread, with exactly the capabilities it needs — and kernel ban
// sync still works after the switch, inside a network namespace.

// nobodyIDs returns nobody's uid and gid.
func nobodyIDs(t *testing.T) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("user nobody: %v", err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// threadStatus is one thread's identity and capability lines from
// /proc/PID/task/TID/status.
type threadStatus struct {
	path                        string
	uid, gid                    string // the four IDs, tab-separated
	eff, prm, inh, amb, bnd     uint64 // CapEff, CapPrm, CapInh, CapAmb, CapBnd
	noNewPrivs                  string
	capLinesFound, idLinesFound int // to tell a missing line from a zero
}

// readThreads reads the status of every thread of process pid.
func readThreads(t *testing.T, pid int) []threadStatus {
	t.Helper()
	paths, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(paths) == 0 {
		t.Fatalf("threads of %d: %v, %v", pid, paths, err)
	}
	var out []threadStatus
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		st := threadStatus{path: p}
		for line := range strings.Lines(string(data)) {
			key, val, _ := strings.Cut(strings.TrimSpace(line), ":")
			val = strings.TrimSpace(val)
			mask := func(dst *uint64) {
				v, err := strconv.ParseUint(val, 16, 64)
				if err != nil {
					t.Fatalf("%s: %s: %q: %v", p, key, val, err)
				}
				*dst = v
				st.capLinesFound++
			}
			switch key {
			case "Uid":
				st.uid, st.idLinesFound = val, st.idLinesFound+1
			case "Gid":
				st.gid, st.idLinesFound = val, st.idLinesFound+1
			case "CapEff":
				mask(&st.eff)
			case "CapPrm":
				mask(&st.prm)
			case "CapInh":
				mask(&st.inh)
			case "CapAmb":
				mask(&st.amb)
			case "CapBnd":
				mask(&st.bnd)
			case "NoNewPrivs":
				st.noNewPrivs = val
			}
		}
		if st.capLinesFound != 5 || st.idLinesFound != 2 || st.noNewPrivs == "" {
			t.Fatalf("%s: identity or capability lines missing:\n%s", p, data)
		}
		out = append(out, st)
	}
	return out
}

// checkSwitchedProcess checks that every thread of pid runs as nobody
// with exactly the capabilities in mask, in every set, and
// no_new_privs.
func checkSwitchedProcess(t *testing.T, pid int, mask uint64) {
	t.Helper()
	uid, gid := nobodyIDs(t)
	wantUID := strings.Repeat(strconv.Itoa(uid)+"\t", 4)
	wantGID := strings.Repeat(strconv.Itoa(gid)+"\t", 4)
	threads := readThreads(t, pid)
	for _, st := range threads {
		if st.uid+"\t" != wantUID || st.gid+"\t" != wantGID {
			t.Errorf("%s: Uid %q Gid %q, want nobody (%d, %d) in all four", st.path, st.uid, st.gid, uid, gid)
		}
		for _, c := range []struct {
			name string
			got  uint64
		}{{"CapEff", st.eff}, {"CapPrm", st.prm}, {"CapInh", st.inh}, {"CapAmb", st.amb}, {"CapBnd", st.bnd}} {
			if c.got != mask {
				t.Errorf("%s: %s = %016x, want %016x", st.path, c.name, c.got, mask)
			}
		}
		if st.noNewPrivs != "1" {
			t.Errorf("%s: NoNewPrivs = %q, want 1", st.path, st.noNewPrivs)
		}
	}
	t.Logf("process %d: %d threads, each nobody with capabilities %016x", pid, len(threads), mask)
}

// TestServeRefusesRoot: started as root without --user or --allow-root,
// serve exits with 2 and says what to do, before binding anything.
func TestServeRefusesRoot(t *testing.T) {
	testenv.Root(t)
	t.Parallel()
	cfg := writeFile(t, "gatehouse.yaml", gatewayConfig("hosts:\n  - match: [www.test]\n    upstreams: [http://127.0.0.1:1]\n"))
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"config", []string{"serve", "-c", cfg, "--watch", "0"},
			"gatehouse serve: refusing to run as root: start gatehouse as an unprivileged user with CAP_NET_BIND_SERVICE (see configs/gatehouse.service), or pass --user NAME"},
		{"demo", []string{"serve", "--watch", "0"}, "or --allow-root to run as root anyway"},
		{"user root", []string{"serve", "-c", cfg, "--user", "root"}, "gatehouse serve: refusing to run as root: --user root is root"},
		{"unknown user", []string{"serve", "-c", cfg, "--user", "gatehouse-no-such-user"}, "gatehouse serve: --user gatehouse-no-such-user: user: unknown user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, stderr, code := runGatehouse(t, tc.args...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("gatehouse %s = exit %d, stderr %q; want exit 2, %q", strings.Join(tc.args, " "), code, stderr, tc.want)
			}
			if strings.Contains(stderr, "msg=listening") {
				t.Errorf("gatehouse %s listened before refusing:\n%s", strings.Join(tc.args, " "), stderr)
			}
		})
	}
}

// TestServeUserMemoryOnly: `serve --user nobody` with no kernel firewall
// keeps no capability at all, and still proxies, bans and saves bans (the
// ban store's file was opened before the switch).
func TestServeUserMemoryOnly(t *testing.T) {
	testenv.Root(t)
	t.Parallel()
	up := newEchoUpstream(t, "app")
	state := filepath.Join(t.TempDir(), "state")
	g := startGateway(t, fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
state_dir: %s
firewall: {backend: none}
`+opsAdmin+`hosts:
  - match: [www.test]
    upstreams: [%s]
`, state, up.URL()), "--user", "nobody")
	log := g.waitLog(t, waitTimeout, "the switch", func(log string) bool {
		return strings.Contains(log, `msg="switched user" user=nobody`)
	})
	if !strings.Contains(log, "capabilities=none") {
		t.Errorf("switch log line does not say capabilities=none:\n%s", log)
	}
	// The state directory was made by root, 0750: the new user is told.
	if !strings.Contains(log, `msg="state_dir is not writable by the user gatehouse switched to; make it theirs (chown)" path=`+state) {
		t.Errorf("no warning about the state_dir nobody cannot write:\n%s", log)
	}
	checkSwitchedProcess(t, g.cmd.Process.Pid, 0)

	if resp, _ := g.get(t, "www.test", "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET after the switch = %d, want 200", resp.StatusCode)
	}
	admin := "http://" + g.adminAddr
	if out, errOut, code := runGatehouse(t, "bans", "add", "127.0.0.1", "--for", "10m", "--admin", admin, "--token", "ops-token"); code != 0 {
		t.Fatalf("bans add after the switch = %d, %q, %q", code, out, errOut)
	}
	if resp, _ := g.get(t, "www.test", "/"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("banned client after the switch: %d, want 403", resp.StatusCode)
	}
	if strings.Contains(g.stderr.String(), "ban store stopped") {
		t.Errorf("the ban store failed after the switch:\n%s", g.stderr)
	}
}

// TestServeUserKernelBans: `serve --user nobody` with a firewall backend,
// in a network namespace, keeps CAP_NET_ADMIN alone; a ban made through
// the admin API after the switch reaches the kernel set and the kernel
// drops the client. It runs the test binary's gatehouse and a static
// (CGO_ENABLED=0, as released) one: the switch of all threads works
// differently with and without cgo.
func TestServeUserKernelBans(t *testing.T) {
	testenv.Netns(t, "ipset", "iptables", "nft")
	t.Parallel()
	static := filepath.Join(t.TempDir(), "gatehouse")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", static, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build (static): %v\n%s", err, out)
	}
	backends := []struct {
		name     string
		chosen   string // the log line naming the backend
		caps     string // the capabilities kept, as logged
		mask     uint64
		hasEntry func(ns, ip string) bool
	}{
		{
			// The set is matched by an iptables rule, through libxt_set,
			// which needs CAP_NET_RAW.
			name: "ipset", chosen: `msg="kernel firewall on" component=firewall backend=ipset`,
			caps: "cap_net_admin,cap_net_raw", mask: 1<<12 | 1<<13,
			hasEntry: func(ns, ip string) bool {
				return exec.Command("ip", "netns", "exec", ns, "ipset", "test", "gatehouse4", ip).Run() == nil
			},
		},
		{
			// auto picks nftables on a kernel with nf_tables (this one:
			// needNetns found nft); the switch asks which was picked.
			name: "auto", chosen: `msg="kernel firewall on" component=firewall backend=nftables`,
			caps: "cap_net_admin", mask: 1 << 12,
			hasEntry: func(ns, ip string) bool {
				out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "table", "inet", "gatehouse").CombinedOutput()
				return err == nil && strings.Contains(string(out), ip)
			},
		},
	}
	subnet := 21
	for _, bin := range []struct{ name, path string }{{"test build", gatehouseBin}, {"static", static}} {
		for _, backend := range backends {
			subnet++
			subnet := subnet
			t.Run(bin.name+"/"+backend.name, func(t *testing.T) {
				t.Parallel()
				p := newNetnsPair(t, subnet)
				cfg := writeFile(t, "gatehouse.yaml", fmt.Sprintf(`listen: {http: "%s:8080"}
hosts:
  - match: ["%s"]
    upstreams: [http://127.0.0.1:1]
firewall: {backend: %s, reconcile: 1s}
admin:
  listen: "127.0.0.1:9901"
  tokens:
    - name: ops
      token: sha256:d9310c002af91822beb0b3487d8b04f85bf6bf1f8a5496bff7d35fc7c5a29def
      scopes: [bans:read, bans:write]
`, p.srvIP, p.srvIP, backend.name))
				logs := newLogBuffer()
				cmd := exec.Command("ip", "netns", "exec", p.srv, bin.path, "serve", "-c", cfg, "--watch", "0", "--user", "nobody")
				cmd.Env = gatehouseEnv()
				cmd.Stdout, cmd.Stderr = logs, logs
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() { done <- cmd.Wait() }()
				exited := false
				stop := func() error {
					if exited {
						return nil
					}
					exited = true
					cmd.Process.Signal(os.Interrupt)
					select {
					case err := <-done:
						return err
					case <-time.After(stopTimeout):
						cmd.Process.Kill()
						<-done
						return fmt.Errorf("no exit within %v of SIGINT", stopTimeout)
					}
				}
				t.Cleanup(func() {
					if err := stop(); err != nil {
						t.Errorf("gatehouse: %v", err)
					}
					if t.Failed() {
						t.Logf("gatehouse log:\n%s", logs)
					}
				})
				waitFor(t, "gateway up", func() bool {
					return strings.Contains(logs.String(), "msg=listening") && connects(p, p.cliIP)
				})
				// ip netns exec runs the binary in its own process.
				if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)); strings.TrimSpace(string(comm)) != "gatehouse" {
					t.Fatalf("process %d is %q, want gatehouse", cmd.Process.Pid, comm)
				}
				if log := logs.String(); !strings.Contains(log, backend.chosen) {
					t.Fatalf("no %q in the log", backend.chosen)
				}
				if log := logs.String(); !strings.Contains(log, `msg="switched user" user=nobody uid=`) ||
					!strings.Contains(log, "capabilities="+backend.caps+"\n") {
					t.Fatalf("no switch to nobody keeping %s in the log", backend.caps)
				}
				checkSwitchedProcess(t, cmd.Process.Pid, backend.mask)

				// A ban through the admin API, after the switch, reaches
				// the kernel, and the kernel drops the client.
				out := nsOutput(t, p.srv, gatehouseBin, "bans", "add", p.cliIP, "--for", "1h", "--reason", "e2e",
					"--admin", "http://127.0.0.1:9901", "--token", "ops-token")
				if !strings.Contains(out, "banned "+p.cliIP) {
					t.Fatalf("bans add: %q", out)
				}
				waitFor(t, "kernel entry for the ban", func() bool { return backend.hasEntry(p.srv, p.cliIP) })
				if connects(p, p.cliIP) {
					t.Error("the banned client still connects: the kernel does not drop it")
				}
				if !connects(p, p.other) {
					t.Error("an address never banned no longer connects")
				}
				if log := logs.String(); strings.Contains(log, "kernel firewall disabled") || strings.Contains(log, "kernel firewall stopped") {
					t.Errorf("the kernel firewall failed after the switch:\n%s", log)
				}
				if err := stop(); err != nil {
					t.Errorf("gatehouse exit: %v", err)
				}
			})
		}
	}
}

// TestServeUserAccessLogReload: the access log files gatehouse creates as
// root before `--user nobody` are handed to nobody, so that a reload
// (SIGHUP, logrotate's postrotate) can reopen them; a log directory the
// user cannot write is warned about, since a file logrotate moves away
// without recreating it could not be made again.
func TestServeUserAccessLogReload(t *testing.T) {
	testenv.Root(t)
	t.Parallel()
	up := newEchoUpstream(t, "app")
	// Traversable by nobody, unlike t.TempDir's parent.
	dir, err := os.MkdirTemp("", "gatehouse-runas-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	logs := filepath.Join(dir, "logs")
	for _, d := range []string{dir, logs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	global, media := filepath.Join(logs, "access.log"), filepath.Join(logs, "media.log")
	yaml := fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
firewall: {backend: none}
`+opsAdmin+`log: {access: combined, access_file: %s}
hosts:
  - match: [www.test]
    upstreams: [%[3]s]
  - match: [media.test]
    upstreams: [%[3]s]
    log: {access_file: %[2]s}
`, global, media, up.URL())
	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	g := startGatewayIn(t, "", cfgPath, "--user", "nobody")
	log := g.waitLog(t, waitTimeout, "the switch", func(log string) bool {
		return strings.Contains(log, `msg="switched user" user=nobody`)
	})
	for _, p := range []string{global, media} {
		if !strings.Contains(log, "path="+p) || !strings.Contains(log, "an access log's directory is not writable") {
			t.Errorf("no warning about %s's directory, which nobody cannot write:\n%s", p, log)
		}
	}
	uid, gid := nobodyIDs(t)
	for _, p := range []string{global, media} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("%s owned by %d:%d after the switch, want nobody (%d:%d)", p, st.Uid, st.Gid, uid, gid)
		}
	}
	if got := g.reload(t, yaml); got != "ok" {
		t.Fatalf("reload as nobody = %s, want ok:\n%s", got, g.stderr)
	}
	for _, host := range []string{"www.test", "media.test"} {
		if resp, _ := g.get(t, host, "/after-reload"); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s after the reload = %d, want 200", host, resp.StatusCode)
		}
	}
	for _, p := range []string{global, media} {
		waitFileLine(t, p, func(line string) bool { return strings.Contains(line, "/after-reload") })
	}
}
