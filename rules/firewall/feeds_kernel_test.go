//go:build linux

package firewall

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/rules/testenv"
)

// feedPrefixes returns n IPv4 prefixes in 11.0.0.0/8 and up, /24 and /28
// by turns, none adjacent to another (so that nftables keeps one range per
// prefix), starting seed*n blocks in so that two seeds differ.
func feedPrefixes(n, seed int) []netip.Prefix {
	ps := make([]netip.Prefix, n)
	for i := range n {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], 0x0b000000+uint32(seed*n+i)*512)
		bits := 24
		if i%2 == 1 {
			bits = 28
		}
		ps[i] = netip.PrefixFrom(netip.AddrFrom4(a), bits)
	}
	return ps
}

// TestFeeds runs the feed conformance test against the backends with feed
// sets, each in namespaces of its own.
func TestFeeds(t *testing.T) {
	testenv.Netns(t, kernelTools...)
	for _, backend := range []string{"ipset", "nftables"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testFeeds(t, backend)
		})
	}
}

func TestFeedsIPTablesUnsupported(t *testing.T) {
	testenv.Netns(t, kernelTools...)
	b, err := New(Config{Backend: "iptables", NetNS: newNetNS(t, "ipt")})
	if err != nil {
		t.Fatalf("New(iptables) = %v", err)
	}
	if _, err := NewFeeds(FeedsConfig{Backend: b}); !errors.Is(err, ErrFeedsUnsupported) {
		t.Errorf("NewFeeds(iptables) = %v, want ErrFeedsUnsupported", err)
	}
}

func testFeeds(t *testing.T, backend string) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	n := newTestNet(t)
	port := n.listen(t)
	foreign := makeForeignObjects(t, n.srv)
	// No ports: the drop covers every packet, so the UDP prober below is
	// dropped like a TCP connection would be.
	b, err := New(Config{Backend: backend, NetNS: n.srv})
	if err != nil {
		t.Fatalf("New(%q) = %v", backend, err)
	}
	if err := b.Ensure(ctx); err != nil {
		t.Fatalf("Ensure() = %v", err)
	}
	f, err := NewFeeds(FeedsConfig{Backend: b})
	if err != nil {
		t.Fatalf("NewFeeds() = %v", err)
	}
	big := append(feedPrefixes(100_000, 0), n.cli4Net, n.cli6aNet)
	changed := append(feedPrefixes(100_000, 1), n.cli4Net, n.cli6aNet)

	t.Run("load 100k", func(t *testing.T) {
		if err := f.SetFeed(ctx, "fh1", big); err != nil {
			t.Fatalf("SetFeed(100k) = %v", err)
		}
		n.dropped(t, n.cli4, n.srv4, port)
		n.connectsSoon(t, n.other4, n.srv4, port)
		n.dropped(t, n.cli6a, n.srv6a, port)
		n.connectsSoon(t, n.cli6b, n.srv6b, port)
		want := []FeedStatus{{Name: "fh1", IPv4: 100_001, IPv6: 1}}
		if got := feedStatus(t, ctx, f); !slices.Equal(got, want) {
			t.Errorf("Status() = %v, want %v", got, want)
		}
		st, err := ReadStatus(ctx, b)
		if err != nil {
			t.Fatalf("ReadStatus() = %v", err)
		}
		if !slices.Equal(st.Feeds, want) || len(st.Entries) != 0 {
			t.Errorf("ReadStatus() feeds %v, %d ban entries; want %v and none", st.Feeds, len(st.Entries), want)
		}
	})

	t.Run("ban repair keeps feeds", func(t *testing.T) {
		// Ban objects not as gatehouse makes them: Ensure rebuilds
		// them, and the feeds beside them stay.
		var misfit [][]string
		switch backend {
		case "nftables":
			misfit = [][]string{
				{"nft", "flush", "chain", "inet", NFTTable, NFTChain},
				{"nft", "delete", "set", "inet", NFTTable, NFTSet4},
				{"nft", "add", "set", "inet", NFTTable, NFTSet4, "{ type ipv4_addr; }"},
			}
		case "ipset":
			misfit = [][]string{
				{"iptables", "-t", "raw", "-D", "PREROUTING", "-m", "set", "--match-set", IPSetName4, "src", "-j", "DROP"},
				{"ipset", "destroy", IPSetName4},
				{"ipset", "create", IPSetName4, "hash:ip", "family", "inet"},
			}
		}
		for _, cmd := range misfit {
			inNS(t, n.srv, cmd...)
		}
		if err := b.Ensure(ctx); err != nil {
			t.Fatalf("Ensure() = %v", err)
		}
		if err := b.Apply(ctx, []Entry{{n.other4Net, time.Now().Add(time.Hour)}}, nil); err != nil {
			t.Fatalf("Apply() into the rebuilt ban sets = %v", err)
		}
		n.dropped(t, n.other4, n.srv4, port)
		n.dropped(t, n.cli4, n.srv4, port)
		if err := b.Apply(ctx, nil, []netip.Prefix{n.other4Net}); err != nil {
			t.Fatalf("Apply(unban) = %v", err)
		}
		n.connectsSoon(t, n.other4, n.srv4, port)
		want := []FeedStatus{{Name: "fh1", IPv4: 100_001, IPv6: 1}}
		if got := feedStatus(t, ctx, f); !slices.Equal(got, want) {
			t.Errorf("Status() after the ban repair = %v, want %v", got, want)
		}
	})

	t.Run("swap never opens a gap", func(t *testing.T) {
		p := startProber(t, n)
		for i := range 4 {
			list := big
			if i%2 == 0 {
				list = changed
			}
			if err := f.SetFeed(ctx, "fh1", list); err != nil {
				t.Fatalf("SetFeed(swap %d) = %v", i, err)
			}
		}
		probes, leaked, blocked := p.stop(t)
		t.Logf("%d probes of each kind during 4 swaps", probes)
		if probes < 10 {
			t.Errorf("prober sent %d probes during the swaps, want at least 10", probes)
		}
		if leaked != 0 {
			t.Errorf("%d probes from listed addresses got through during the swaps, want 0", leaked)
		}
		if blocked != 0 {
			t.Errorf("%d probes from unlisted addresses were not answered during the swaps, want 0", blocked)
		}
		want := []FeedStatus{{Name: "fh1", IPv4: 100_001, IPv6: 1}}
		if got := feedStatus(t, ctx, f); !slices.Equal(got, want) {
			t.Errorf("Status() after swaps = %v, want %v", got, want)
		}
	})

	t.Run("changed content", func(t *testing.T) {
		if err := f.SetFeed(ctx, "fh1", []netip.Prefix{n.other4Net, netip.MustParsePrefix("203.0.113.0/24")}); err != nil {
			t.Fatalf("SetFeed() = %v", err)
		}
		n.connectsSoon(t, n.cli4, n.srv4, port)
		n.dropped(t, n.other4, n.srv4, port)
		n.connectsSoon(t, n.cli6a, n.srv6a, port)
		want := []FeedStatus{{Name: "fh1", IPv4: 2}}
		if got := feedStatus(t, ctx, f); !slices.Equal(got, want) {
			t.Errorf("Status() = %v, want %v", got, want)
		}
		if err := f.SetFeed(ctx, "fh1", big); err != nil {
			t.Fatalf("SetFeed() = %v", err)
		}
		n.dropped(t, n.cli4, n.srv4, port)
		n.connectsSoon(t, n.other4, n.srv4, port)
	})

	t.Run("exempt wins", func(t *testing.T) {
		// A second feed listing the address too: exempt wins over both.
		if err := f.SetFeed(ctx, "local", []netip.Prefix{netip.PrefixFrom(n.cli4, 24).Masked()}); err != nil {
			t.Fatalf("SetFeed(local) = %v", err)
		}
		n.dropped(t, n.other4, n.srv4, port)
		if err := f.SetExempt(ctx, []netip.Prefix{n.cli4Net, n.other4Net}); err != nil {
			t.Fatalf("SetExempt() = %v", err)
		}
		n.connectsSoon(t, n.cli4, n.srv4, port)
		n.connectsSoon(t, n.other4, n.srv4, port)
		n.dropped(t, n.cli6a, n.srv6a, port)
		// A ban is not exempt: the exempt set is the feeds' only.
		if err := b.Apply(ctx, []Entry{{n.cli4Net, time.Now().Add(time.Hour)}}, nil); err != nil {
			t.Fatalf("Apply(ban) = %v", err)
		}
		n.dropped(t, n.cli4, n.srv4, port)
		if err := b.Apply(ctx, nil, []netip.Prefix{n.cli4Net}); err != nil {
			t.Fatalf("Apply(unban) = %v", err)
		}
		if err := f.SetExempt(ctx, nil); err != nil {
			t.Fatalf("SetExempt(nil) = %v", err)
		}
		n.dropped(t, n.cli4, n.srv4, port)
		n.dropped(t, n.other4, n.srv4, port)
	})

	t.Run("remove", func(t *testing.T) {
		if err := f.RemoveFeed(ctx, "local"); err != nil {
			t.Fatalf("RemoveFeed(local) = %v", err)
		}
		n.connectsSoon(t, n.other4, n.srv4, port)
		n.dropped(t, n.cli4, n.srv4, port)
		if err := f.RemoveFeed(ctx, "local"); err != nil {
			t.Fatalf("RemoveFeed(local) again = %v", err)
		}
		if got := feedNames(t, ctx, f); !slices.Equal(got, []string{"fh1"}) {
			t.Errorf("feeds after RemoveFeed(local) = %v, want [fh1]", got)
		}
	})

	t.Run("restart prunes", func(t *testing.T) {
		if err := f.SetFeed(ctx, "gone", []netip.Prefix{n.other4Net}); err != nil {
			t.Fatalf("SetFeed(gone) = %v", err)
		}
		n.dropped(t, n.other4, n.srv4, port)
		// A new process: new backend and Feeds over the same kernel.
		b2, err := New(Config{Backend: backend, NetNS: n.srv})
		if err != nil {
			t.Fatalf("New() = %v", err)
		}
		f2, err := NewFeeds(FeedsConfig{Backend: b2})
		if err != nil {
			t.Fatalf("NewFeeds() = %v", err)
		}
		removed, err := f2.Prune(ctx, []string{"fh1", "notyet"})
		if err != nil || !slices.Equal(removed, []string{"gone"}) {
			t.Errorf("Prune() = %v, %v; want [gone]", removed, err)
		}
		n.connectsSoon(t, n.other4, n.srv4, port)
		n.dropped(t, n.cli4, n.srv4, port)
		if got := feedNames(t, ctx, f2); !slices.Equal(got, []string{"fh1"}) {
			t.Errorf("feeds after Prune = %v, want [fh1]", got)
		}
	})

	t.Run("flush removes feeds", func(t *testing.T) {
		if err := f.SetExempt(ctx, []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}); err != nil {
			t.Fatalf("SetExempt() = %v", err)
		}
		if err := b.Remove(ctx); err != nil {
			t.Fatalf("Remove() = %v", err)
		}
		if got := ourObjects(t, n.srv); got != "" {
			t.Errorf("after Remove the kernel holds:\n%s\nwant nothing of gatehouse's", got)
		}
		if got := snapshotForeign(t, n.srv); got != foreign {
			t.Errorf("Remove changed foreign objects:\n%s\nwant\n%s", got, foreign)
		}
		n.connectsSoon(t, n.cli4, n.srv4, port)
		if got := feedNames(t, ctx, f); len(got) != 0 {
			t.Errorf("feeds after Remove = %v, want none", got)
		}
	})
}

// connectsSoon fails the test unless from connects to to:port in one of
// five dials. A source whose packets were dropped may need more than one
// dial's timeout: for IPv6 its neighbour solicitations were dropped too,
// and the kernel waits a retransmit interval (1s) before it asks again
// for a neighbour it failed to resolve; and on a loaded machine one
// handshake can take longer than a dial waits. A drop fails all five.
func (n *testNet) connectsSoon(t testing.TB, from, to netip.Addr, port uint16) {
	t.Helper()
	var err error
	for range 5 {
		if err = n.dial(from, to, port); err == nil {
			return
		}
	}
	t.Errorf("dial %s -> [%s]:%d five times: %v, want a connection", from, to, port, err)
}

func feedStatus(t testing.TB, ctx context.Context, f *Feeds) []FeedStatus {
	t.Helper()
	st, err := f.Status(ctx)
	if err != nil {
		t.Fatalf("Status() = %v", err)
	}
	return st
}

func feedNames(t testing.TB, ctx context.Context, f *Feeds) []string {
	t.Helper()
	var names []string
	for _, s := range feedStatus(t, ctx, f) {
		names = append(names, s.Name)
	}
	return names
}

// prober sends UDP probes from the client namespace in a loop: from the
// listed addresses (cli4, cli6a) without waiting, and from the unlisted
// ones (other4, cli6b), each waiting for its echo. The server counts the
// listed probes that arrive.
type prober struct {
	done   chan struct{}
	result chan proberResult
	leaked atomic.Int64
	wg     sync.WaitGroup
}

type proberResult struct {
	probes, blocked int
	err             error
}

func startProber(t *testing.T, n *testNet) *prober {
	t.Helper()
	p := &prober{done: make(chan struct{}), result: make(chan proberResult, 1)}
	var srv net.PacketConn
	if err := inNetNS(n.srv, func() error {
		var err error
		srv, err = net.ListenPacket("udp", ":0")
		return err
	}); err != nil {
		t.Fatalf("listen udp in %s: %v", n.srv, err)
	}
	port := srv.LocalAddr().(*net.UDPAddr).Port
	listed := map[netip.Addr]bool{n.cli4: true, n.cli6a: true}
	p.wg.Go(func() {
		buf := make([]byte, 64)
		for {
			m, from, err := srv.ReadFrom(buf)
			if err != nil {
				return
			}
			a := from.(*net.UDPAddr).AddrPort().Addr().Unmap()
			if listed[a] {
				p.leaked.Add(1)
				continue
			}
			_, _ = srv.WriteTo(buf[:m], from) // a lost echo shows as blocked
		}
	})
	var conns [4]net.Conn
	pairs := [4][2]netip.Addr{{n.cli4, n.srv4}, {n.cli6a, n.srv6a}, {n.other4, n.srv4}, {n.cli6b, n.srv6b}}
	if err := inNetNS(n.cli, func() error {
		for i, pr := range pairs {
			d := net.Dialer{LocalAddr: &net.UDPAddr{IP: pr[0].AsSlice()}}
			c, err := d.Dial("udp", netip.AddrPortFrom(pr[1], uint16(port)).String())
			if err != nil {
				return err
			}
			conns[i] = c
		}
		return nil
	}); err != nil {
		t.Fatalf("dial udp in %s: %v", n.cli, err)
	}
	t.Cleanup(func() {
		srv.Close()
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		p.wg.Wait()
	})
	p.wg.Go(func() {
		var r proberResult
		buf := make([]byte, 64)
		defer func() { p.result <- r }()
		for seq := uint64(0); ; seq++ {
			select {
			case <-p.done:
				return
			default:
			}
			msg := binary.BigEndian.AppendUint64(nil, seq)
			for i, c := range conns {
				if _, err := c.Write(msg); err != nil {
					r.err = fmt.Errorf("probe %d from %s: %w", seq, pairs[i][0], err)
					return
				}
				if i < 2 {
					continue // listed: no answer expected
				}
				// Echoes come back in order on a veth pair; a stale one
				// (an earlier probe answered late) is skipped.
				deadline := time.Now().Add(dialTimeout)
				for {
					_ = c.SetReadDeadline(deadline)
					m, err := c.Read(buf)
					if err != nil {
						r.blocked++
						break
					}
					if m == 8 && binary.BigEndian.Uint64(buf) == seq {
						break
					}
				}
			}
			r.probes++
		}
	})
	return p
}

// stop ends the probing and returns the number of probe rounds, the
// listed probes that arrived and the unlisted ones that got no answer.
func (p *prober) stop(t *testing.T) (probes, leaked, blocked int) {
	t.Helper()
	close(p.done)
	r := <-p.result
	if r.err != nil {
		t.Errorf("prober: %v", r.err)
	}
	// Each round ends with the echoes of the unlisted probes, which
	// went out after the listed ones on the same link: a listed probe
	// that got through has been counted by now.
	return r.probes, int(p.leaked.Load()), r.blocked
}
