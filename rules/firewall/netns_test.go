//go:build linux

package firewall

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// kernelTools are the programs the kernel tests run, beside the ones the
// backends find themselves.
var kernelTools = []string{"ip", "ipset", "iptables", "ip6tables", "iptables-restore", "ip6tables-restore", "nft"}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on Linux
	return hex.EncodeToString(b)
}

// testNet is a server and a client namespace joined by a veth pair:
//
//	server gh0: 10.213.N.1/24, fd00:213:N:1::1/64, fd00:213:N:2::1/64
//	client gh0: 10.213.N.2/24, 10.213.N.3/24, fd00:213:N:1::2/64, fd00:213:N:2::2/64
//
// so that the client has an address to ban and one not to, in each family
// (for IPv6, in two /64s: a jail bans a /64).
type testNet struct {
	srv, cli           string
	srv4, cli4, other4 netip.Addr
	srv6a, cli6a       netip.Addr // in fd00:213:N:1::/64
	srv6b, cli6b       netip.Addr // in fd00:213:N:2::/64
	cli4Net, other4Net netip.Prefix
	cli6aNet, cli6bNet netip.Prefix
}

// newNetNS creates a namespace removed at the end of the test.
func newNetNS(t testing.TB, role string) string {
	t.Helper()
	name := "gh-test-" + randomHex(4) + "-" + role
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

func newTestNet(t testing.TB) *testNet {
	t.Helper()
	n := &testNet{srv: newNetNS(t, "srv"), cli: newNetNS(t, "cli")}
	x := 1 + int(randomHex(1)[0])%250
	n.srv4 = netip.MustParseAddr(fmt.Sprintf("10.213.%d.1", x))
	n.cli4 = netip.MustParseAddr(fmt.Sprintf("10.213.%d.2", x))
	n.other4 = netip.MustParseAddr(fmt.Sprintf("10.213.%d.3", x))
	n.srv6a = netip.MustParseAddr(fmt.Sprintf("fd00:213:%x:1::1", x))
	n.cli6a = netip.MustParseAddr(fmt.Sprintf("fd00:213:%x:1::2", x))
	n.srv6b = netip.MustParseAddr(fmt.Sprintf("fd00:213:%x:2::1", x))
	n.cli6b = netip.MustParseAddr(fmt.Sprintf("fd00:213:%x:2::2", x))
	n.cli4Net = netip.PrefixFrom(n.cli4, 32)
	n.other4Net = netip.PrefixFrom(n.other4, 32)
	n.cli6aNet = netip.PrefixFrom(n.cli6a, 64).Masked()
	n.cli6bNet = netip.PrefixFrom(n.cli6b, 64).Masked()

	// Created inside the server namespace and moved: no device ever
	// appears in the host's namespace.
	run(t, "ip", "-n", n.srv, "link", "add", "gh0", "type", "veth", "peer", "name", "gh0", "netns", n.cli)
	for _, a := range []struct {
		ns   string
		addr string
	}{
		{n.srv, n.srv4.String() + "/24"}, {n.srv, n.srv6a.String() + "/64"}, {n.srv, n.srv6b.String() + "/64"},
		{n.cli, n.cli4.String() + "/24"}, {n.cli, n.other4.String() + "/24"},
		{n.cli, n.cli6a.String() + "/64"}, {n.cli, n.cli6b.String() + "/64"},
	} {
		args := []string{"-n", a.ns, "addr", "add", a.addr, "dev", "gh0"}
		if strings.Contains(a.addr, ":") {
			args = append(args, "nodad")
		}
		run(t, "ip", args...)
	}
	run(t, "ip", "-n", n.srv, "link", "set", "gh0", "up")
	run(t, "ip", "-n", n.cli, "link", "set", "gh0", "up")
	return n
}

// run runs a command in the test's own namespace and fails the test if it
// fails.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inNS runs a command in a namespace and fails the test if it fails.
func inNS(t testing.TB, ns string, args ...string) string {
	t.Helper()
	return run(t, "ip", append([]string{"netns", "exec", ns}, args...)...)
}

// inNetNS calls fn on an OS thread switched to the namespace ns. Sockets
// fn creates belong to ns for their whole life, whichever thread uses them
// later. The thread is switched back, or thrown away if that fails.
func inNetNS(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return // locked: the thread ends with the goroutine
		}
		defer self.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		err = fn()
		if unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// listen starts a TCP server on all addresses of the server namespace,
// accepting and closing connections until the test ends, and returns its
// port.
func (n *testNet) listen(t testing.TB) uint16 {
	t.Helper()
	var ln net.Listener
	if err := inNetNS(n.srv, func() error {
		var err error
		ln, err = net.Listen("tcp", ":0")
		return err
	}); err != nil {
		t.Fatalf("listen in %s: %v", n.srv, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// dialTimeout is how long a dial waits: a connection inside a veth pair
// is set up in well under a millisecond, so a dial that takes this long
// had its SYN dropped.
const dialTimeout = 500 * time.Millisecond

// dial connects from the client namespace, from address from, to to:port.
func (n *testNet) dial(from, to netip.Addr, port uint16) error {
	return inNetNS(n.cli, func() error {
		d := net.Dialer{Timeout: dialTimeout, LocalAddr: &net.TCPAddr{IP: from.AsSlice()}}
		c, err := d.Dial("tcp", netip.AddrPortFrom(to, port).String())
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// connects fails the test unless from can connect to to:port.
func (n *testNet) connects(t testing.TB, from, to netip.Addr, port uint16) {
	t.Helper()
	if err := n.dial(from, to, port); err != nil {
		t.Errorf("dial %s -> [%s]:%d: %v, want a connection", from, to, port, err)
	}
}

// dropped fails the test unless a connection from from to to:port times
// out: its packets are dropped (a refusal would mean they arrived).
func (n *testNet) dropped(t testing.TB, from, to netip.Addr, port uint16) {
	t.Helper()
	err := n.dial(from, to, port)
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("dial %s -> [%s]:%d: %v, want a timeout (packets dropped)", from, to, port, err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s", what, limit)
		}
		<-tick.C
	}
}
