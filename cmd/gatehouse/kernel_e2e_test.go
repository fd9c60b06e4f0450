//go:build linux

package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"gatehouse/rules/testenv"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The kernel tests run the gatehouse binary inside a network namespace
// the test creates, a client in a second one joined by a veth pair, and
// show that a banned client's new connections are dropped by the kernel
// — with each firewall backend. Nothing outside the two namespaces is
// touched.

// netnsPair is a server and a client namespace joined by a veth pair.
type netnsPair struct {
	srv, cli     string
	srvIP, cliIP string
	other        string // a second client address, never banned
	srvDev       string // the veth ends, to add addresses and routes
	cliDev       string
}

func newNetnsPair(t *testing.T, subnet int) *netnsPair {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b) // never fails on Linux
	id := hex.EncodeToString(b)
	p := &netnsPair{srv: "gh-e2e-" + id + "-s", cli: "gh-e2e-" + id + "-c",
		srvIP: fmt.Sprintf("10.231.%d.1", subnet), cliIP: fmt.Sprintf("10.231.%d.2", subnet), other: fmt.Sprintf("10.231.%d.3", subnet),
		srvDev: "ghs" + id, cliDev: "ghc" + id}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", p.srv)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", p.srv).Run() }) // best effort
	run("netns", "add", p.cli)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", p.cli).Run() }) // best effort
	run("link", "add", "ghs"+id, "netns", p.srv, "type", "veth", "peer", "name", "ghc"+id, "netns", p.cli)
	run("-n", p.srv, "addr", "add", p.srvIP+"/24", "dev", "ghs"+id)
	run("-n", p.cli, "addr", "add", p.cliIP+"/24", "dev", "ghc"+id)
	run("-n", p.cli, "addr", "add", p.other+"/24", "dev", "ghc"+id)
	for _, ns := range []string{p.srv, p.cli} {
		run("-n", ns, "link", "set", "lo", "up")
	}
	run("-n", p.srv, "link", "set", "ghs"+id, "up")
	run("-n", p.cli, "link", "set", "ghc"+id, "up")
	return p
}

// inNetns runs fn on a thread switched into namespace ns; the thread is
// thrown away afterwards, so no other goroutine ever runs there.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		f, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// dialFrom connects from the client namespace, from local address src.
func dialFrom(ns, src, dst string, timeout time.Duration) (net.Conn, error) {
	var conn net.Conn
	err := inNetns(ns, func() error {
		d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		var err error
		conn, err = d.Dial("tcp", dst)
		return err
	})
	return conn, err
}

// getFrom sends one GET from the client namespace and returns the status.
func getFrom(t *testing.T, p *netnsPair, src, path string) int {
	t.Helper()
	conn, err := dialFrom(p.cli, src, p.srvIP+":8080", 2*time.Second)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", path, src, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, p.srvIP)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", path, src, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// connects reports whether a new TCP connection from src gets through.
func connects(p *netnsPair, src string) bool {
	conn, err := dialFrom(p.cli, src, p.srvIP+":8080", 700*time.Millisecond)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// waitFor polls cond every 100 ms for up to 15 s: kernel state changes on
// the gateway's reconcile clock and by kernel timeouts, with no event to
// wait on.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func nsOutput(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// serveInNetns starts `gatehouse serve -c cfg` inside namespace ns and
// returns its log and a function that stops it (SIGINT, killed after
// 10 s), which the test's cleanup also runs before showing the log of a
// failed test.
func serveInNetns(t *testing.T, ns, cfg string) (logs *logBuffer, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, gatehouseBin, "serve", "-c", cfg, "--watch", "0", "--allow-root")
	cmd.Env = gatehouseEnv()
	logs = newLogBuffer()
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Signal(os.Interrupt)
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cancel()
				<-done
			}
			cancel()
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("gatehouse log:\n%s", logs.String())
		}
	})
	return logs, stop
}

func TestKernelBans(t *testing.T) {
	backends := []struct {
		name     string
		tools    []string
		subnet   int
		hasEntry func(t *testing.T, ns, ip string) bool
		delEntry []string // command deleting the client's entry by hand ("IP" replaced)
		noTrace  func(t *testing.T, ns string) string
	}{
		{
			name: "ipset", tools: []string{"ipset", "iptables"}, subnet: 11,
			hasEntry: func(t *testing.T, ns, ip string) bool {
				return exec.Command("ip", "netns", "exec", ns, "ipset", "test", "gatehouse4", ip).Run() == nil
			},
			delEntry: []string{"ipset", "del", "gatehouse4", "IP"},
			noTrace: func(t *testing.T, ns string) string {
				return nsOutput(t, ns, "ipset", "list", "-n") + nsOutput(t, ns, "iptables-save", "-t", "raw")
			},
		},
		{
			name: "nftables", tools: []string{"nft"}, subnet: 12,
			hasEntry: func(t *testing.T, ns, ip string) bool {
				out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "table", "inet", "gatehouse").CombinedOutput()
				return err == nil && strings.Contains(string(out), ip)
			},
			noTrace: func(t *testing.T, ns string) string { return nsOutput(t, ns, "nft", "list", "tables") },
		},
		{
			name: "iptables", tools: []string{"iptables"}, subnet: 13,
			hasEntry: func(t *testing.T, ns, ip string) bool {
				out, err := exec.Command("ip", "netns", "exec", ns, "iptables-save", "-t", "raw").CombinedOutput()
				return err == nil && strings.Contains(string(out), ip)
			},
			delEntry: []string{"iptables", "-t", "raw", "-D", "GATEHOUSE", "-s", "IP/32", "-j", "DROP"},
			noTrace:  func(t *testing.T, ns string) string { return nsOutput(t, ns, "iptables-save", "-t", "raw") },
		},
	}
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) {
			t.Parallel()
			testenv.Netns(t, bk.tools...)
			p := newNetnsPair(t, bk.subnet)
			cfg := writeFile(t, "gatehouse.yaml", fmt.Sprintf(`listen: {http: "%s:8080"}
hosts:
  - match: ["%s"]
    upstreams: [http://127.0.0.1:1]
probes: {presets: [secrets]}
jails:
  probes: {maxretry: 2, findtime: 1m, bantime: 6s}
firewall: {backend: %s, reconcile: 1s}
admin: {listen: "127.0.0.1:9901"}
log: {level: debug}
`, p.srvIP, p.srvIP, bk.name))
			_, stop := serveInNetns(t, p.srv, cfg)
			waitFor(t, "gateway up", func() bool { return connects(p, p.cliIP) })

			// Probing gets the client banned: 403 from memory at once,
			// then the kernel drops its new connections.
			for _, path := range []string{"/.env", "/.aws/credentials"} {
				if code := getFrom(t, p, p.cliIP, path); code != http.StatusForbidden {
					t.Fatalf("probe %s: %d, want 403", path, code)
				}
			}
			waitFor(t, "kernel entry for the banned client", func() bool { return bk.hasEntry(t, p.srv, p.cliIP) })
			if connects(p, p.cliIP) {
				t.Error("the banned client still connects: the kernel does not drop it")
			}
			if !connects(p, p.other) {
				t.Error("another address of the client's host no longer connects: the ban is too wide")
			}

			// An entry deleted by hand is put back by reconcile.
			if bk.delEntry != nil {
				del := make([]string, len(bk.delEntry))
				for i, a := range bk.delEntry {
					del[i] = strings.ReplaceAll(a, "IP", p.cliIP)
				}
				nsOutput(t, p.srv, del...)
				waitFor(t, "entry repaired by reconcile", func() bool { return bk.hasEntry(t, p.srv, p.cliIP) })
			}

			// The ban ends by itself (6 s), in the kernel too.
			waitFor(t, "ban expired", func() bool { return connects(p, p.cliIP) })

			// firewall flush leaves no trace of gatehouse in the kernel
			// (once the gateway is stopped: a running one repairs).
			stop()
			out := nsOutput(t, p.srv, gatehouseBin, "firewall", "flush", "-c", cfg)
			if !strings.Contains(out, "removed") {
				t.Errorf("firewall flush said %q", out)
			}
			if trace := bk.noTrace(t, p.srv); strings.Contains(strings.ToLower(trace), "gatehouse") {
				t.Errorf("after flush the kernel still has:\n%s", trace)
			}
		})
	}
}
