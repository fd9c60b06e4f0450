//go:build linux

package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"gatehouse/rules/testenv"
)

// BenchmarkFeedSwap measures replacing a feed's kernel sets with changed
// content (SetFeed over a feed that holds as many prefixes), in a network
// namespace of its own: ipset fills a new set and swaps it in, nftables
// flushes and refills the set in one transaction.
func BenchmarkFeedSwap(b *testing.B) {
	testenv.Netns(b, kernelTools...)
	for _, bc := range []struct {
		backend string
		n       int
	}{
		{"ipset", 100_000},
		{"nftables", 100_000},
	} {
		b.Run(fmt.Sprintf("%s/prefixes=%d", bc.backend, bc.n), func(b *testing.B) {
			ctx := context.Background()
			be, err := New(Config{Backend: bc.backend, NetNS: newNetNS(b, "bench"), Ports: []uint16{80, 443}})
			if err != nil {
				b.Fatal(err)
			}
			f, err := NewFeeds(FeedsConfig{Backend: be})
			if err != nil {
				b.Fatal(err)
			}
			lists := [2][]netip.Prefix{feedPrefixes(bc.n, 0), feedPrefixes(bc.n, 1)}
			if err := f.SetFeed(ctx, "bench", lists[1]); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				if err := f.SetFeed(ctx, "bench", lists[i%2]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkFeedSwapNFTNewSet measures the other way to replace an
// nftables feed atomically, for comparison with BenchmarkFeedSwap's
// nftables case: fill a new set under a second name in one batch, then in
// a second batch point the chain's rules at it and delete the old set.
func BenchmarkFeedSwapNFTNewSet(b *testing.B) {
	testenv.Netns(b, kernelTools...)
	const n = 100_000
	b.Run(fmt.Sprintf("prefixes=%d", n), func(b *testing.B) {
		ctx := context.Background()
		be, err := New(Config{Backend: "nftables", NetNS: newNetNS(b, "bench"), Ports: []uint16{80, 443}})
		if err != nil {
			b.Fatal(err)
		}
		nb := be.(*nftBackend)
		lists := [2][]netip.Prefix{feedPrefixes(n, 0), feedPrefixes(n, 1)}
		names := [2]string{"bench", "bench2"} // the set names by turns
		if err := nftSwapNewSet(ctx, nb, names[1], names[0], lists[1]); err != nil {
			b.Fatal(err)
		}
		i := 0
		for b.Loop() {
			if err := nftSwapNewSet(ctx, nb, names[i%2], names[(i+1)%2], lists[i%2]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// nftSwapNewSet fills feed4_<to> with ps (IPv4 only; feed6_<to> empty), then in a second
// batch rewrites the feeds chain to drop from it and deletes feed4_<from>.
func nftSwapNewSet(ctx context.Context, b *nftBackend, to, from string, ps []netip.Prefix) error {
	v4, _, err := splitPrefixes(ps, MaxFeedPrefixes)
	if err != nil {
		return err
	}
	fb, _, done, err := b.feedBatch(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := fb.fill(fb.set(nftFeedSetName(to, 0), 0), v4); err != nil {
		return err
	}
	if err := fb.fill(fb.set(nftFeedSetName(to, 1), 1), nil); err != nil {
		return err
	}
	if err := fb.c.Flush(); err != nil {
		return err
	}
	fb.chain(map[string][2]int{to: {len(v4), 0}})
	sets, err := b.feedSets(fb.c)
	if err != nil {
		return err
	}
	for _, s := range sets {
		if s.Name == nftFeedSetName(from, 0) || s.Name == nftFeedSetName(from, 1) {
			fb.c.DelSet(s)
		}
	}
	return fb.c.Flush()
}
