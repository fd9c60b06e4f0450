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
