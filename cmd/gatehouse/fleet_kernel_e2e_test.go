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
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startInNetns runs a command inside namespace ns until the test ends
// (SIGINT, then SIGKILL after 10 s); its output goes to the test log if
// the test fails.
func startInNetns(t *testing.T, ns, what string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Env = gatehouseEnv()
	logs := newLogBuffer()
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", what, err)
	}
	done := make(chan struct{})
	go func() {
		// The exit status of a process the test stops is of no interest.
		_ = cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
		}
		cancel()
		if t.Failed() {
			t.Logf("%s log:\n%s", what, logs.String())
		}
	})
}

// rawHTTP sends one HTTP/1.1 request from inside namespace ns to addr
// and returns the status. net/http dials on goroutines of its own, which
// would not be in the namespace, so the request is written by hand.
func rawHTTP(ns, addr, method, path, token, body string) (int, error) {
	conn, err := dialFrom(ns, "", addr, 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	// The Host is the address dialled: the admin listener answers no other.
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		method, path, addr, token, len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

var (
	ipsetTimeout = regexp.MustCompile(`(?m)^(\S+) timeout (\d+)`)
	nftExpires   = regexp.MustCompile(`(\d+\.\d+\.\d+\.\d+) timeout \S+ expires (\S+?)[,\s}]`)
)

// TestFleetKernel: three nodes, each in a network namespace of its own
// with its own kernel firewall (b nftables, c ipset), and Redis in a hub
// namespace bridging them to a client namespace. A ban made through
// a's admin API appears in b's and c's kernel sets with the ban's
// remaining time as timeout, and the client's new TCP connections to b
// and c are dropped, while another address still gets through.
func TestFleetKernel(t *testing.T) {
	t.Parallel()
	testenv.Netns(t, "nft", "ipset", "iptables", "redis-server")
	b := make([]byte, 3)
	_, _ = rand.Read(b) // never fails on Linux
	id := hex.EncodeToString(b)
	const subnet = "10.233.21."
	hub, cli := "gh-fk-"+id+"-hub", "gh-fk-"+id+"-cli"
	nodes := []struct{ name, ns, ip, backend string }{
		{"a", "gh-fk-" + id + "-a", subnet + "11", "none"},
		{"b", "gh-fk-" + id + "-b", subnet + "12", "nftables"},
		{"c", "gh-fk-" + id + "-c", subnet + "13", "ipset"},
	}
	redisIP, clientIP, otherIP := subnet+"1", subnet+"2", subnet+"3"
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{hub, cli, nodes[0].ns, nodes[1].ns, nodes[2].ns} {
		run("netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() }) // best effort
		run("-n", ns, "link", "set", "lo", "up")
	}
	br := "ghbr" + id
	run("-n", hub, "link", "add", br, "type", "bridge")
	run("-n", hub, "addr", "add", redisIP+"/24", "dev", br)
	run("-n", hub, "link", "set", br, "up")
	attach := func(ns, dev string, ips ...string) {
		t.Helper()
		run("link", "add", dev+"i", "netns", ns, "type", "veth", "peer", "name", dev+"h", "netns", hub)
		run("-n", hub, "link", "set", dev+"h", "master", br)
		run("-n", hub, "link", "set", dev+"h", "up")
		for _, ip := range ips {
			run("-n", ns, "addr", "add", ip+"/24", "dev", dev+"i")
		}
		run("-n", ns, "link", "set", dev+"i", "up")
	}
	attach(cli, "gh"+id+"c", clientIP, otherIP)
	for i, n := range nodes {
		attach(n.ns, "gh"+id+strconv.Itoa(i), n.ip)
	}

	startInNetns(t, hub, "redis-server", "redis-server", "--bind", redisIP, "--port", "6379",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--protected-mode", "no")
	waitFor(t, "redis up", func() bool {
		c, err := dialFrom(hub, "", redisIP+":6379", time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	for _, n := range nodes {
		cfg := writeFile(t, "gatehouse-"+n.name+".yaml", fmt.Sprintf(`listen: {http: "%s:8080"}
state_dir: %s
hosts:
  - match: ["%s"]
    upstreams: [http://127.0.0.1:1]
firewall: {backend: %s, reconcile: 1s}
%sfleet:
  redis: redis://%s:6379/0
  node: %s
`, n.ip, t.TempDir(), n.ip, n.backend, strings.Replace(opsAdmin, `"127.0.0.1:0"`, `"127.0.0.1:9901"`, 1), redisIP, n.name))
		startInNetns(t, n.ns, "gatehouse "+n.name, gatehouseBin, "serve", "-c", cfg, "--watch", "0", "--allow-root")
	}
	for _, n := range nodes {
		waitFor(t, "node "+n.name+" up", func() bool {
			c, err := dialFrom(cli, otherIP, n.ip+":8080", 700*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		waitFor(t, "node "+n.name+" reaches redis", func() bool {
			code, err := rawHTTP(n.ns, "127.0.0.1:9901", "GET", "/metrics", "", "")
			return err == nil && code == http.StatusOK && strings.Contains(metricsFrom(t, n.ns), "gatehouse_fleet_redis_up 1")
		})
	}

	code, err := rawHTTP(nodes[0].ns, "127.0.0.1:9901", "POST", "/v1/bans", "ops-token", `{"ip": "`+clientIP+`", "duration": "1h", "reason": "kernel e2e"}`)
	if err != nil || code != http.StatusCreated {
		t.Fatalf("POST /v1/bans on a = %d, %v, want 201", code, err)
	}
	// b: nftables.
	waitFor(t, "the ban in b's nftables set", func() bool {
		out, err := exec.Command("ip", "netns", "exec", nodes[1].ns, "nft", "list", "table", "inet", "gatehouse").CombinedOutput()
		return err == nil && strings.Contains(string(out), clientIP)
	})
	out := nsOutput(t, nodes[1].ns, "nft", "list", "table", "inet", "gatehouse")
	if m := nftExpires.FindStringSubmatch(out); m == nil || m[1] != clientIP {
		t.Errorf("b's nftables set has no expiring element for %s:\n%s", clientIP, out)
	} else if d, err := time.ParseDuration(m[2]); err != nil || d < 55*time.Minute || d > time.Hour {
		t.Errorf("b's kernel entry expires in %s (%v), want the ban's remaining hour", m[2], err)
	} else {
		t.Logf("b (nftables): %s expires in %s", clientIP, d)
	}
	// c: ipset.
	waitFor(t, "the ban in c's ipset", func() bool {
		return exec.Command("ip", "netns", "exec", nodes[2].ns, "ipset", "test", "gatehouse4", clientIP).Run() == nil
	})
	out = nsOutput(t, nodes[2].ns, "ipset", "list", "gatehouse4")
	if m := ipsetTimeout.FindStringSubmatch(out); m == nil || m[1] != clientIP {
		t.Errorf("c's ipset has no entry with a timeout for %s:\n%s", clientIP, out)
	} else if s, _ := strconv.Atoi(m[2]); s < 55*60 || s > 3600 {
		t.Errorf("c's kernel entry times out in %ds, want the ban's remaining hour", s)
	} else {
		t.Logf("c (ipset): %s times out in %ds", clientIP, s)
	}
	for _, n := range nodes[1:] {
		if c, err := dialFrom(cli, clientIP, n.ip+":8080", 700*time.Millisecond); err == nil {
			c.Close()
			t.Errorf("the banned client still connects to %s: its kernel does not drop it", n.name)
		}
		if c, err := dialFrom(cli, otherIP, n.ip+":8080", 2*time.Second); err != nil {
			t.Errorf("another address no longer connects to %s: %v", n.name, err)
		} else {
			c.Close()
		}
	}
}

// metricsFrom returns the /metrics text of the admin listener inside ns.
func metricsFrom(t *testing.T, ns string) string {
	t.Helper()
	conn, err := dialFrom(ns, "", "127.0.0.1:9901", 2*time.Second)
	if err != nil {
		return ""
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(conn, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9901\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}
