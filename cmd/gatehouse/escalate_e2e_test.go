//go:build linux

package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"gatehouse/rules/testenv"
)

// Prefix escalation against a real kernel: a gateway in a network
// namespace, scanners in a second one with many addresses of a few
// networks. After five bans in one /24 (or five /64s of one /48) the
// kernel set holds the network and none of its members, so an address
// of it that never offended is dropped too; a network that holds an
// allowed address is never escalated, and the allowed address is served.

// escalateNet is the two namespaces: the gateway on 10.234.0.1 and
// 2001:db8:ff::1, the clients on /32 and /128 addresses routed over the
// veth pair.
type escalateNet struct {
	srv, cli string
}

func newEscalateNet(t *testing.T, clients []string) *escalateNet {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b) // never fails on Linux
	id := hex.EncodeToString(b)
	n := &escalateNet{srv: "gh-esc-" + id + "-s", cli: "gh-esc-" + id + "-c"}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", n.srv)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.srv).Run() }) // best effort
	run("netns", "add", n.cli)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.cli).Run() }) // best effort
	sdev, cdev := "ghes"+id, "ghec"+id
	run("link", "add", sdev, "netns", n.srv, "type", "veth", "peer", "name", cdev, "netns", n.cli)
	for _, ns := range []struct{ name, dev string }{{n.srv, sdev}, {n.cli, cdev}} {
		// No duplicate address detection: addresses are usable at once.
		if out, err := exec.Command("ip", "netns", "exec", ns.name, "sysctl", "-qw", "net.ipv6.conf."+ns.dev+".accept_dad=0").CombinedOutput(); err != nil {
			t.Fatalf("sysctl accept_dad: %v: %s", err, out)
		}
		run("-n", ns.name, "link", "set", "lo", "up")
		run("-n", ns.name, "link", "set", ns.dev, "up")
	}
	run("-n", n.srv, "addr", "add", "10.234.0.1/24", "dev", sdev)
	run("-n", n.srv, "addr", "add", "2001:db8:ff::1/64", "dev", sdev, "nodad")
	run("-n", n.srv, "route", "add", "10.234.0.0/16", "dev", sdev)
	run("-n", n.srv, "-6", "route", "add", "2001:db8::/32", "dev", sdev)
	run("-n", n.cli, "route", "add", "10.234.0.0/24", "dev", cdev)
	run("-n", n.cli, "-6", "route", "add", "2001:db8:ff::/64", "dev", cdev)
	for _, c := range clients {
		if strings.Contains(c, ":") {
			run("-n", n.cli, "addr", "add", c+"/128", "dev", cdev, "nodad")
		} else {
			run("-n", n.cli, "addr", "add", c+"/32", "dev", cdev)
		}
	}
	return n
}

// dst is the gateway's address for a client of src's family.
func (n *escalateNet) dst(src string) string {
	if strings.Contains(src, ":") {
		return "[2001:db8:ff::1]:8080"
	}
	return "10.234.0.1:8080"
}

// get sends one GET from src and returns the status, or 0 when no
// connection could be made.
func (n *escalateNet) get(t *testing.T, src, path string) int {
	t.Helper()
	conn, err := dialFrom(n.cli, src, n.dst(src), 2*time.Second)
	if err != nil {
		return 0
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s from %s: %v", path, src, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// getOrDropped is get for a client the kernel may start dropping at any
// moment, even mid-exchange: 0 for no answer.
func (n *escalateNet) getOrDropped(src, path string) int {
	conn, err := dialFrom(n.cli, src, n.dst(src), 2*time.Second)
	if err != nil {
		return 0
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: app.example.com\r\nConnection: close\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// connects reports whether a new TCP connection from src gets through.
func (n *escalateNet) connects(src string) bool {
	conn, err := dialFrom(n.cli, src, n.dst(src), 700*time.Millisecond)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// kernelEntries returns the addresses and prefixes the backend's kernel
// objects list (words that parse as either), "/32" and "/128" dropped.
func kernelEntries(t *testing.T, ns, backend string) map[string]bool {
	t.Helper()
	var out string
	switch backend {
	case "ipset":
		out = nsOutput(t, ns, "ipset", "list", "gatehouse4") + nsOutput(t, ns, "ipset", "list", "gatehouse6")
	case "nftables":
		out = nsOutput(t, ns, "nft", "list", "table", "inet", "gatehouse")
	}
	got := map[string]bool{}
	for _, w := range strings.FieldsFunc(out, func(r rune) bool { return strings.ContainsRune(" \t\n,{}", r) }) {
		w = strings.TrimSuffix(strings.TrimSuffix(w, "/32"), "/128")
		if _, err := netip.ParseAddr(w); err == nil {
			got[w] = true
		} else if _, err := netip.ParsePrefix(w); err == nil {
			got[w] = true
		}
	}
	return got
}

// serve starts gatehouse with cfg in n's gateway namespace and returns
// its log; the test's cleanup stops it and flushes the kernel objects.
func (n *escalateNet) serve(t *testing.T, cfg string) *logBuffer {
	t.Helper()
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "exec", n.srv, gatehouseBin, "firewall", "flush", "-c", cfg).Run() // best effort: the namespace goes too
	})
	logs, _ := serveInNetns(t, n.srv, cfg)
	return logs
}

func TestEscalationKernel(t *testing.T) {
	for _, backend := range []struct {
		name  string
		tools []string
	}{
		{"ipset", []string{"ipset", "iptables", "ip6tables"}},
		{"nftables", []string{"nft"}},
	} {
		t.Run(backend.name, func(t *testing.T) {
			t.Parallel()
			testenv.Netns(t, backend.tools...)
			var scanners4, inAllowed, scanners6 []string
			for i := 1; i <= 5; i++ {
				scanners4 = append(scanners4, fmt.Sprintf("10.234.7.%d", i))
				inAllowed = append(inAllowed, fmt.Sprintf("10.234.8.%d", i))
				scanners6 = append(scanners6, fmt.Sprintf("2001:db8:7:%x::2", i))
			}
			const bystander4, allowed, bystander6 = "10.234.7.50", "10.234.8.200", "2001:db8:7:99::2"
			n := newEscalateNet(t, slices.Concat(scanners4, inAllowed, scanners6, []string{bystander4, allowed, bystander6}))
			cfg := writeFile(t, "gatehouse.yaml", fmt.Sprintf(`listen: {http: ":8080"}
allow: [%s/32]
hosts:
  - match: [app.example.com]
    upstreams: [http://127.0.0.1:1]
probes: {presets: [secrets]}
jails:
  probes: {maxretry: 1, findtime: 10m, bantime: 1h, escalate: {ipv4: 24, ipv6: 48, after: 5}}
firewall: {backend: %s, reconcile: 1s}
admin: {listen: "127.0.0.1:9901"}
`, allowed, backend.name))
			logs := n.serve(t, cfg)
			waitFor(t, "gateway up", func() bool { return n.connects(allowed) })

			for _, c := range slices.Concat(scanners4, inAllowed, scanners6) {
				if code := n.get(t, c, "/.env"); code != http.StatusForbidden {
					t.Fatalf("probe from %s: %d, want 403", c, code)
				}
			}
			want := []string{"10.234.7.0/24", "2001:db8:7::/48", "10.234.8.1", "10.234.8.5"}
			gone := []string{"10.234.7.1", "10.234.7.5", "2001:db8:7:1::/64", "2001:db8:7:5::/64", "10.234.8.0/24"}
			waitFor(t, "the kernel holding the networks and not their members", func() bool {
				got := kernelEntries(t, n.srv, backend.name)
				for _, w := range want {
					if !got[w] {
						return false
					}
				}
				for _, g := range gone {
					if got[g] {
						return false
					}
				}
				return true
			})
			for _, c := range []string{bystander4, bystander6} {
				if n.connects(c) {
					t.Errorf("%s, inside an escalated network, still connects: the kernel does not drop the network", c)
				}
			}
			if code := n.get(t, allowed, "/"); code == 0 || code == http.StatusForbidden {
				t.Errorf("allowed %s inside a network of five banned clients: status %d, want served", allowed, code)
			}
			var metrics string
			// Dialled on the namespace's thread: http.Client dials on others.
			if err := inNetns(n.srv, func() error {
				conn, err := net.DialTimeout("tcp", "127.0.0.1:9901", 2*time.Second)
				if err != nil {
					return err
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				fmt.Fprintf(conn, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9901\r\nConnection: close\r\n\r\n")
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				metrics = string(b)
				return err
			}); err != nil {
				t.Fatalf("GET /metrics: %v", err)
			}
			for _, line := range []string{`gatehouse_jail_escalations_total{jail="probes"} 2`, `gatehouse_jail_escalations_refused_total{jail="probes"} 1`} {
				if !strings.Contains(metrics, line+"\n") {
					t.Errorf("/metrics lacks %q", line)
				}
			}
			if got := strings.Count(logs.String(), "escalation refused"); got != 1 {
				t.Errorf("%d escalation refusals logged, want 1 (10.234.8.0/24, which holds an allowed address)", got)
			}
		})
	}
}

// Attackers that move on before maxretry: each IPv4 address of a /24, and
// each /64 of a /48 (a fresh address every probe), probes twice with
// maxretry 3, so no client is ever banned; after × maxretry offences ban
// the network, in the kernel too, and a bystander of it is dropped.
func TestEscalationKernelRotation(t *testing.T) {
	t.Parallel()
	testenv.Netns(t, "nft")
	const after, maxRetry = 3, 3
	var probes []string // in order: each client twice
	for i := 1; i <= after*maxRetry/2+1; i++ {
		v4 := fmt.Sprintf("10.234.9.%d", i)
		probes = append(probes, v4, v4, fmt.Sprintf("2001:db8:9:%x::1", i), fmt.Sprintf("2001:db8:9:%x::2", i))
	}
	const bystander4, bystander6 = "10.234.9.50", "2001:db8:9:99::2"
	n := newEscalateNet(t, slices.Concat(slices.Compact(slices.Clone(probes)), []string{bystander4, bystander6}))
	cfg := writeFile(t, "gatehouse.yaml", fmt.Sprintf(`listen: {http: ":8080"}
hosts:
  - match: [app.example.com]
    upstreams: [http://127.0.0.1:1]
probes: {presets: [secrets]}
jails:
  probes: {maxretry: %d, findtime: 10m, bantime: 1h, escalate: {ipv4: 24, ipv6: 48, after: %d}}
firewall: {backend: nftables, reconcile: 1s}
`, maxRetry, after))
	logs := n.serve(t, cfg)
	waitFor(t, "gateway up", func() bool { return n.connects(bystander4) })

	// Every probe is answered until the network's ban: 403 from memory,
	// then no connection (the kernel) or 403 (the ban guard, before the
	// kernel has the entry).
	answered := map[bool]int{}
	for _, c := range probes {
		switch code := n.getOrDropped(c, "/.env"); code {
		case http.StatusForbidden:
			answered[strings.Contains(c, ":")]++
		case 0:
		default:
			t.Fatalf("probe from %s: %d, want 403 or dropped", c, code)
		}
	}
	for _, v6 := range []bool{false, true} {
		if got := answered[v6]; got < after*maxRetry {
			t.Errorf("ipv6=%v: %d probes answered, want at least %d: banned before after×maxretry offences", v6, got, after*maxRetry)
		}
	}
	waitFor(t, "the kernel holding the networks", func() bool {
		got := kernelEntries(t, n.srv, "nftables")
		return got["10.234.9.0/24"] && got["2001:db8:9::/48"]
	})
	for _, c := range []string{bystander4, bystander6} {
		if n.connects(c) {
			t.Errorf("%s, inside a network escalated by offences, still connects", c)
		}
	}
	for _, w := range []string{"escalated from 9 offences of several clients in jail probes"} {
		if got := strings.Count(logs.String(), w); got != 2 {
			t.Errorf("%d bans logged with reason %q, want 2 (the /24 and the /48):\n%s", got, w, logs.String())
		}
	}
}
