//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"gatehouse/rules/testenv"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSSHBans runs a real OpenSSH server in a network namespace, logging
// as it does on a Debian host: syslog() to /dev/log, read by rsyslog,
// which writes the auth log. gatehouse runs in the same namespace with a
// watch-only config (no hosts) following that log with the built-in sshd
// filter, and a client in a second namespace fails to log in: after
// maxretry failures its next TCP connection to port 22 is dropped by the
// kernel, while successful logins from another address never count.
// Then fresh addresses each fail maxretry times in one connection, and
// the time from the failing line (rsyslog's timestamp, in microseconds)
// to the kernel entry is logged. With each firewall backend.
//
// sshd's -E file would be simpler but is not what a host runs: its lines
// carry neither timestamp nor "sshd[PID]:", so the filter could tell
// neither the time nor the connection. sshd's syslog socket is fixed
// (/dev/log), so sshd runs in a mount namespace of its own (ip netns exec
// makes one, not propagating back) with a tmpfs on /dev holding only the
// devices it needs and /dev/log leading to rsyslog's socket, and a tmpfs
// on /run for its privilege separation directory: nothing on the host
// changes.
//
// The journal is not covered here: a host with journald would need sshd's
// syslog to reach the system journal, which this test does not touch.
func TestSSHBans(t *testing.T) {
	backends := []struct {
		name   string
		tools  []string
		subnet int
		// has reports whether the kernel holds an entry for ip; it runs
		// on a thread inside the server namespace (inNetns), so the
		// programs it runs are there too.
		has func(ip string) bool
	}{
		{name: "nftables", tools: []string{"nft"}, subnet: 41,
			has: func(ip string) bool {
				out, err := exec.Command("nft", "list", "set", "inet", "gatehouse", "ban4").Output()
				return err == nil && slices.Contains(strings.FieldsFunc(string(out), func(r rune) bool {
					return r != '.' && (r < '0' || r > '9')
				}), ip)
			}},
		{name: "ipset", tools: []string{"ipset", "iptables"}, subnet: 42,
			has: func(ip string) bool { return exec.Command("ipset", "-q", "test", "gatehouse4", ip).Run() == nil }},
		{name: "iptables", tools: []string{"iptables"}, subnet: 43,
			has: func(ip string) bool {
				out, err := exec.Command("iptables-save", "-t", "raw").Output()
				return err == nil && strings.Contains(string(out), " -s "+ip+"/32 ")
			}},
	}
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) {
			t.Parallel()
			testenv.Netns(t, append([]string{"sshd", "ssh", "ssh-keygen", "rsyslogd", "mount"}, bk.tools...)...)
			testSSHBans(t, bk.name, bk.subnet, bk.has)
		})
	}
}

// sshMaxRetry is the sshd jail's maxretry.
const sshMaxRetry = 3

// sshLatencyBans is how many fresh addresses get banned for the latency
// measurement.
const sshLatencyBans = 20

func testSSHBans(t *testing.T, backend string, subnet int, has func(ip string) bool) {
	p := newNetnsPair(t, subnet)
	dir := t.TempDir()
	if strings.HasPrefix(dir, "/run/") || strings.HasPrefix(dir, "/dev/") {
		t.Fatalf("temporary directory %s is under /run or /dev, which sshd's mount namespace replaces", dir)
	}
	authLog := startRsyslog(t, dir)
	srv := startSSHD(t, p, dir, authLog)

	cfgPath := filepath.Join(dir, "gatehouse.yaml")
	cfg := fmt.Sprintf(`admin: {listen: "127.0.0.1:0"}
state_dir: %s
watch:
  - name: sshd
    filter: sshd
    files: [%s]
jails:
  sshd: {maxretry: %d, findtime: 10m, bantime: 1h}
firewall: {backend: %s, reconcile: 1s}
`, filepath.Join(dir, "state"), authLog, sshMaxRetry, backend)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGatewayNetns(t, p.srv, cfgPath)
	fails := func(want float64) {
		t.Helper()
		g.waitMetric(t, want, "gatehouse_watch_lines_total", "source", "sshd", "result", "fail")
	}
	inKernel := func(ip string) bool {
		var ok bool
		if err := inNetns(p.srv, func() error { ok = has(ip); return nil }); err != nil {
			t.Fatal(err)
		}
		return ok
	}

	// Successful logins, more than maxretry of them, before any failure.
	for range sshMaxRetry + 1 {
		srv.login(t, p.other)
	}
	// A wrong password for root (refused anyway: PermitRootLogin
	// prohibit-password) is one failure.
	srv.failPasswords(t, p.cliIP, "root", 1)
	fails(1)
	if n := g.metric(t, "gatehouse_bans_active", "jail", "sshd"); n != 0 {
		t.Fatalf("gatehouse_bans_active = %v after 1 failure of maxretry %d, want 0", n, sshMaxRetry)
	}
	if conn, err := dialFrom(p.cli, p.cliIP, srv.addr, 2*time.Second); err != nil {
		t.Fatalf("connect from %s before its ban: %v", p.cliIP, err)
	} else {
		conn.Close()
	}
	// An unknown user is two failures, as fail2ban counts them: "Invalid
	// user" and "Failed password for invalid user".
	srv.failPasswords(t, p.cliIP, "admin", 1)
	fails(sshMaxRetry)
	g.waitMetric(t, 1, "gatehouse_bans_active", "jail", "sshd")
	waitFor(t, "kernel entry for "+p.cliIP, func() bool { return inKernel(p.cliIP) })

	// Its next connection is dropped: the connect times out, where a
	// refusal or a reset would mean the packets got through.
	conn, err := dialFrom(p.cli, p.cliIP, srv.addr, time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("the banned client %s still connects to %s", p.cliIP, srv.addr)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("connect from the banned client: %v, want a timeout (a drop)", err)
	}
	// The other address still logs in, and its logins never counted.
	srv.login(t, p.other)
	if inKernel(p.other) {
		t.Fatalf("kernel entry for %s, which only logged in successfully", p.other)
	}

	// Latency: fresh addresses, each failing maxretry times in one
	// connection; from the line of the last failure to the kernel entry.
	dev := strings.Fields(nsOutput(t, p.cli, "ip", "-o", "addr", "show", "to", p.cliIP))[1]
	var lat, judge []time.Duration // log line to kernel entry, to the logged ban
	for i := range sshLatencyBans {
		ip := fmt.Sprintf("10.231.%d.%d", subnet, 100+i)
		nsOutput(t, p.cli, "ip", "addr", "add", ip+"/24", "dev", dev)
		// The poller checks every millisecond (plus the time a check
		// takes) from before the first attempt until the entry is there.
		var at time.Time
		polled := make(chan error, 1)
		go func() {
			polled <- inNetns(p.srv, func() error {
				deadline := time.Now().Add(30 * time.Second)
				for !has(ip) {
					if time.Now().After(deadline) {
						return fmt.Errorf("no kernel entry for %s within 30s", ip)
					}
					time.Sleep(time.Millisecond)
				}
				at = time.Now()
				return nil
			})
		}()
		srv.failPasswords(t, ip, "root", sshMaxRetry)
		if err := <-polled; err != nil {
			t.Fatal(err)
		}
		line := nthLine(t, authLog, "Failed password for root from "+ip+" ", sshMaxRetry)
		lat = append(lat, at.Sub(line))
		// The gateway's own log line of the ban splits the time into
		// judging (file to jail) and kernel sync. It may come after the
		// kernel entry: the ban is published before it is logged.
		re := regexp.MustCompile(`time=(\S+) level=INFO msg=ban .* prefix=` + regexp.QuoteMeta(ip) + `/32 `)
		var m []string
		g.waitLog(t, waitTimeout, "the ban of "+ip, func(log string) bool {
			m = re.FindStringSubmatch(log)
			return m != nil
		})
		banned, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			t.Fatalf("gatehouse ban line time %q: %v", m[1], err)
		}
		judge = append(judge, banned.Sub(line))
	}
	fails(sshMaxRetry + sshLatencyBans*sshMaxRetry)
	g.waitMetric(t, 1+sshLatencyBans, "gatehouse_bans_active", "jail", "sshd")
	if inKernel(p.other) {
		t.Fatalf("kernel entry for %s, which only logged in successfully", p.other)
	}
	t.Logf("%s: over %d bans, log line → kernel entry: %s; log line → ban in the gateway's log (kept to the ms, truncated): %s",
		backend, len(lat), quantiles(lat), quantiles(judge))
}

// quantiles sorts d and describes it: p50, p99, min and max (with 20
// values p99 is the max).
func quantiles(d []time.Duration) string {
	slices.Sort(d)
	return fmt.Sprintf("p50 %v, p99 %v, min %v, max %v", d[len(d)/2], d[(len(d)*99+99)/100-1], d[0], d[len(d)-1])
}

// startRsyslog runs rsyslogd on a socket of its own in dir, writing every
// message to dir/auth.log with its time to the microsecond
// (RSYSLOG_FileFormat: RFC 3339 timestamps; the traditional format has
// whole seconds). It returns the log's path; the socket is dir/log.
func startRsyslog(t *testing.T, dir string) string {
	t.Helper()
	authLog := filepath.Join(dir, "auth.log")
	conf := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`global(workDirectory=%q)
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket=%q)
*.* action(type="omfile" file=%q template="RSYSLOG_FileFormat")
`, dir, filepath.Join(dir, "log"), authLog)), 0o600); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, "rsyslogd", testenv.Tool(t, "rsyslogd"), "-n", "-f", conf, "-i", filepath.Join(dir, "rsyslogd.pid"))
	waitFor(t, "rsyslogd's socket", func() bool {
		_, err := os.Stat(filepath.Join(dir, "log"))
		return err == nil
	})
	return authLog
}

// sshServer is an sshd in the server namespace that lets root log in with
// key only: a password login always fails, for root too.
type sshServer struct {
	p       *netnsPair
	addr    string // SRVIP:22
	key     string // the authorized key
	askpass string // a program printing a wrong password
}

// sshdSetup is the script that ip netns exec runs (in a new mount
// namespace whose mounts do not reach the host) before it becomes sshd.
// $1 is the working directory, $2 rsyslog's socket, $3 sshd, $4 its
// config.
const sshdSetup = `set -e
mkdir "$1/hostdev"
mount --bind /dev "$1/hostdev"
mount -t tmpfs -o mode=755 gatehouse-test-dev /dev
for n in null zero random urandom; do
	touch /dev/$n
	mount --bind "$1/hostdev/$n" /dev/$n
done
umount "$1/hostdev"
ln -s "$2" /dev/log
mount -t tmpfs -o mode=755 gatehouse-test-run /run
mkdir -m 755 /run/sshd
exec "$3" -D -f "$4"
`

func startSSHD(t *testing.T, p *netnsPair, dir, authLog string) *sshServer {
	t.Helper()
	keygen := testenv.Tool(t, "ssh-keygen")
	s := &sshServer{p: p, addr: net.JoinHostPort(p.srvIP, "22"),
		key: filepath.Join(dir, "client_key"), askpass: filepath.Join(dir, "askpass")}
	for _, k := range []string{filepath.Join(dir, "host_key"), s.key} {
		if out, err := exec.Command(keygen, "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", k).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	pub, err := os.ReadFile(s.key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.askpass, []byte("#!/bin/sh\necho not-the-password\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`ListenAddress %s
HostKey %s
PidFile none
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers root
AuthorizedKeysFile %s
# the temporary directory is world-writable up the path
StrictModes no
PrintMotd no
PrintLastLog no
# a banned client's connection stays open, unauthenticated, until
# LoginGraceTime: past 10 of them sshd would start refusing others
MaxStartups 100
SyslogFacility AUTH
LogLevel INFO
`, s.addr, filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys"))), 0o600); err != nil {
		t.Fatal(err)
	}
	sshd := testenv.Tool(t, "sshd")
	if out, err := exec.Command(sshd, "-t", "-f", conf).CombinedOutput(); err != nil &&
		!strings.Contains(string(out), "privilege separation directory") {
		t.Fatalf("sshd -t: %v: %s", err, out)
	}
	// Cleanups run last-registered first: the connections' processes end
	// while the listener still runs and reaps them.
	master := startDaemon(t, "sshd", "ip", "netns", "exec", p.srv, "sh", "-c", sshdSetup, "sh",
		dir, filepath.Join(dir, "log"), sshd, conf)
	t.Cleanup(func() { endConnections(t, p.srv, master) })
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(authLog) // shown for diagnosis only
			t.Logf("%s:\n%s", authLog, b)
		}
	})
	// Its first line shows the whole path: sshd → /dev/log → rsyslog → file.
	waitFor(t, "sshd listening, in "+authLog, func() bool {
		b, _ := os.ReadFile(authLog) // absent until the first line
		return strings.Contains(string(b), "Server listening on "+p.srvIP+" port 22.")
	})
	return s
}

// sshArgs are the options of every client run.
func (s *sshServer) sshArgs(src string) []string {
	return []string{"netns", "exec", s.p.cli, "ssh", "-F", "/dev/null", "-b", src,
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=2",
		"-o", "LogLevel=ERROR"}
}

// login logs in as root from src with the authorized key and runs a
// command; it fails the test if that does not work.
func (s *sshServer) login(t *testing.T, src string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	args := append(s.sshArgs(src), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", s.key,
		"-o", "PreferredAuthentications=publickey", "root@"+s.p.srvIP, "echo", "logged-in")
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "logged-in" {
		t.Fatalf("ssh root@%s from %s with the authorized key: %v: %s", s.p.srvIP, src, err, out)
	}
}

// failPasswords tries n wrong passwords for user from src in one
// connection. BatchMode would refuse to send passwords at all; the
// passwords come from an SSH_ASKPASS program instead of a terminal.
func (s *sshServer) failPasswords(t *testing.T, src, user string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	args := append(s.sshArgs(src), "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password",
		"-o", "NumberOfPasswordPrompts="+strconv.Itoa(n), user+"@"+s.p.srvIP, "true")
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Env = append(os.Environ(), "SSH_ASKPASS="+s.askpass, "SSH_ASKPASS_REQUIRE=force")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 255 || !strings.Contains(string(out), "Permission denied") {
		t.Fatalf("ssh %s@%s from %s with a wrong password: %v: %s; want exit 255, permission denied", user, s.p.srvIP, src, err, out)
	}
}

// endConnections ends sshd's processes of connections still open in
// namespace ns (those of banned clients wait for LoginGraceTime), every
// sshd process but master, the listener: leaves first, each reaped by its
// parent, which is still running. (The namespace may list this test's
// own process too: a thread inNetns switched may be its main thread.)
func endConnections(t *testing.T, ns string, master int) {
	t.Helper()
	deadline := time.Now().Add(stopTimeout)
	for {
		out, err := exec.Command("ip", "netns", "pids", ns).Output()
		if err != nil {
			t.Errorf("ip netns pids %s: %v", ns, err)
			return
		}
		parent := map[int]int{}
		for _, f := range strings.Fields(string(out)) {
			pid, _ := strconv.Atoi(f) // ip prints numbers
			if pid == master {
				continue
			}
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				continue // gone meanwhile
			}
			// "pid (comm) state ppid …"; comm may hold spaces.
			open, close := strings.IndexByte(string(stat), '('), strings.LastIndexByte(string(stat), ')')
			if open < 0 || close < open || string(stat[open+1:close]) != "sshd" {
				continue
			}
			fields := strings.Fields(string(stat[close+1:]))
			parent[pid], _ = strconv.Atoi(fields[1])
		}
		if len(parent) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes of sshd's connections left in %s: %v", ns, parent)
			return
		}
		for pid := range parent {
			leaf := true
			for _, pp := range parent {
				leaf = leaf && pp != pid
			}
			if leaf {
				_ = syscall.Kill(pid, syscall.SIGTERM) // it may have exited already
			}
		}
		time.Sleep(pollInterval) // processes end with no event to wait on
	}
}

// startDaemon runs a foreground daemon until the test ends, then stops it
// with SIGTERM (SIGKILL after a while) and waits for it. It returns the
// process id.
func startDaemon(t *testing.T, what, name string, args ...string) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	out := newLogBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", what, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }() // it is stopped on purpose
	t.Cleanup(func() {
		select {
		case <-done:
			t.Errorf("%s exited before the test ended:\n%s", what, out)
			return
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM) // it may be exiting on its own
		select {
		case <-done:
		case <-time.After(stopTimeout):
			cancel()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", what, out)
		}
	})
	return cmd.Process.Pid
}

// nthLine returns the time of the n-th line of path containing substr,
// from its RFC 3339 timestamp.
func nthLine(t *testing.T, path, substr string, n int) time.Time {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if !strings.Contains(sc.Text(), substr) {
			continue
		}
		if n--; n > 0 {
			continue
		}
		ts, _, _ := strings.Cut(sc.Text(), " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		return at
	}
	t.Fatalf("%s has fewer than %d more lines containing %q", path, n, substr)
	return time.Time{}
}

// startGatewayNetns is startGatewayIn for a gateway inside namespace ns,
// without a public listener: the admin listener (on the namespace's
// loopback) is reached by connections made inside the namespace.
func startGatewayNetns(t *testing.T, ns, cfgPath string) *gateway {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	client := newClient()
	client.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := inNetns(ns, func() error {
			var err error
			conn, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
	g := &gateway{t: t, cfgPath: cfgPath, cancel: cancel, stderr: newLogBuffer(), stdout: newLogBuffer(),
		client: client, exited: make(chan struct{})}
	// ip netns exec execs the gateway: signals reach it directly.
	g.cmd = exec.CommandContext(ctx, "ip", "netns", "exec", ns, gatehouseBin, "serve", "-c", cfgPath, "--watch", "0", "--allow-root")
	g.start(t)
	g.waitLog(t, startTimeout, "the admin listening line", func(log string) bool {
		for _, m := range listeningLine.FindAllStringSubmatch(log, -1) {
			if m[1] == "admin" {
				g.adminAddr = m[2]
			}
		}
		return g.adminAddr != ""
	})
	g.waitReady(t)
	return g
}
