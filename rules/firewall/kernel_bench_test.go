//go:build linux

package firewall

import (
	"context"
	"fmt"
	"gatehouse/rules/testenv"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/rules"
)

// benchBans returns n bans, half IPv4 /32s and half IPv6 /64s, as jails
// make them.
func benchBans(n int, until time.Time) []rules.Ban {
	bans := make([]rules.Ban, 0, n)
	v4 := netip.MustParseAddr("100.64.0.0")
	for range n / 2 {
		bans = append(bans, rules.Ban{Prefix: netip.PrefixFrom(v4, 32), Until: until})
		v4 = v4.Next()
	}
	for i := range n - n/2 {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, byte(i >> 8), byte(i)})
		if i >= 1<<16 {
			panic("benchBans: too many IPv6 bans")
		}
		bans = append(bans, rules.Ban{Prefix: netip.PrefixFrom(a, 64), Until: until})
	}
	return bans
}

func benchEntries(bans []rules.Ban) []Entry {
	es := make([]Entry, len(bans))
	for i, b := range bans {
		es[i] = Entry{b.Prefix, b.Until}
	}
	return es
}

// BenchmarkKernelPush measures pushing bans into empty kernel objects: one
// Apply, in a network namespace of its own.
func BenchmarkKernelPush(b *testing.B) {
	testenv.Netns(b, kernelTools...)
	for _, bc := range []struct {
		backend string
		n       int
	}{
		{"ipset", 100_000},
		{"nftables", 100_000},
		{"iptables", 1_000}, // O(n): shown small, for comparison
	} {
		b.Run(fmt.Sprintf("%s/bans=%d", bc.backend, bc.n), func(b *testing.B) {
			ctx := context.Background()
			be, err := New(Config{Backend: bc.backend, NetNS: newNetNS(b, "bench")})
			if err != nil {
				b.Fatal(err)
			}
			entries := benchEntries(benchBans(bc.n, time.Now().Add(time.Hour)))
			for b.Loop() {
				b.StopTimer()
				if err := be.Remove(ctx); err != nil {
					b.Fatal(err)
				}
				if err := be.Ensure(ctx); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := be.Apply(ctx, entries, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if got, err := be.List(ctx); err != nil || len(got) != bc.n {
				b.Fatalf("List() = %d entries, %v; want %d", len(got), err, bc.n)
			}
		})
	}
}

// countingBackend counts the Applies that change something.
type countingBackend struct {
	Backend
	applies atomic.Int64
}

func (c *countingBackend) Apply(ctx context.Context, add []Entry, del []netip.Prefix) error {
	c.applies.Add(1)
	return c.Backend.Apply(ctx, add, del)
}

// BenchmarkKernelReconcileUnchanged measures a full reconcile pass (ban
// list snapshot, Ensure, List, diff) when the kernel already matches. For
// nftables, "dump" is the pass after another program changed the ruleset
// (List then dumps the sets; otherwise it answers from its copy of the
// last dump).
func BenchmarkKernelReconcileUnchanged(b *testing.B) {
	testenv.Netns(b, kernelTools...)
	for _, bc := range []struct {
		backend string
		dump    bool
	}{
		{"ipset", false},
		{"nftables", false},
		{"nftables", true},
	} {
		name := bc.backend + "/bans=100000"
		if bc.dump {
			name = bc.backend + "-dump/bans=100000"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			ns := newNetNS(b, "bench")
			be, err := New(Config{Backend: bc.backend, NetNS: ns})
			if err != nil {
				b.Fatal(err)
			}
			bans := rules.NewBanList(rules.BanListConfig{})
			for _, ban := range benchBans(100_000, time.Now().Add(time.Hour)) {
				if _, err := bans.Ban(ban); err != nil {
					b.Fatal(err)
				}
			}
			cb := &countingBackend{Backend: be}
			r, err := NewReconciler(ReconcilerConfig{Backend: cb, Bans: bans})
			if err != nil {
				b.Fatal(err)
			}
			for range 2 { // push, then a pass that finds it all there
				if err := r.fullPass(ctx, bans.List()); err != nil {
					b.Fatal(err)
				}
			}
			cb.applies.Store(0)
			for b.Loop() {
				if bc.dump {
					b.StopTimer()
					inNS(b, ns, "nft", "add table ip gatehouse-bench-bump; delete table ip gatehouse-bench-bump")
					b.StartTimer()
				}
				if err := r.fullPass(ctx, bans.List()); err != nil {
					b.Fatal(err)
				}
			}
			if n := cb.applies.Load(); n != 0 {
				b.Errorf("%d passes over an unchanged kernel applied something", n)
			}
		})
	}
}
