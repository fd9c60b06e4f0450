//go:build linux

package firewall

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/rules"
	"gatehouse/rules/testenv"

	"golang.org/x/sys/unix"
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
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(i >> 16), byte(i >> 8), byte(i)})
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
		{"ipset", 1_000_000},
		{"nftables", 100_000},
		{"nftables", 1_000_000},
		{"iptables", 1_000}, // O(n): shown small, for comparison
	} {
		b.Run(fmt.Sprintf("%s/bans=%d", bc.backend, bc.n), func(b *testing.B) {
			ctx := context.Background()
			be, err := New(Config{Backend: bc.backend, NetNS: newNetNS(b, "bench")})
			if err != nil {
				b.Fatal(err)
			}
			entries := benchEntries(benchBans(bc.n, time.Now().Add(time.Hour)))
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				if err := be.Remove(ctx); err != nil {
					b.Fatal(err)
				}
				if err := be.Ensure(ctx); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				c0 := cpuTime(b)
				if err := be.Apply(ctx, entries, nil); err != nil {
					b.Fatal(err)
				}
				cpu += cpuTime(b) - c0
			}
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
			b.StopTimer()
			if got, err := be.List(ctx); err != nil || len(got) != bc.n {
				b.Fatalf("List() = %d entries, %v; want %d", len(got), err, bc.n)
			}
		})
	}
}

// cpuTime returns the CPU time the process has used, user and system
// (the kernel's share of a netlink batch is system time): on a busy
// machine a steadier figure than the wall clock.
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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

// Each streams the listing as the wrapped backend does.
func (c *countingBackend) Each(ctx context.Context, fn func(Entry)) error {
	return eachEntry(ctx, c.Backend, fn)
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
		n       int
	}{
		{"ipset", false, 100_000},
		{"ipset", false, 1_000_000},
		{"nftables", false, 100_000},
		{"nftables", false, 1_000_000},
		// An nftables dump costs the kernel time in proportion to the
		// square of the set's size: shown at 100,000 only.
		{"nftables", true, 100_000},
	} {
		name := fmt.Sprintf("%s/bans=%d", bc.backend, bc.n)
		if bc.dump {
			name = fmt.Sprintf("%s-dump/bans=%d", bc.backend, bc.n)
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			ns := newNetNS(b, "bench")
			be, err := New(Config{Backend: bc.backend, NetNS: ns})
			if err != nil {
				b.Fatal(err)
			}
			bans := rules.NewBanList(rules.BanListConfig{})
			for _, ban := range benchBans(bc.n, time.Now().Add(time.Hour)) {
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
			var cpu time.Duration
			for b.Loop() {
				if bc.dump {
					b.StopTimer()
					inNS(b, ns, "nft", "add table ip gatehouse-bench-bump; delete table ip gatehouse-bench-bump")
					b.StartTimer()
				}
				c0 := cpuTime(b)
				if err := r.fullPass(ctx, bans.List()); err != nil {
					b.Fatal(err)
				}
				cpu += cpuTime(b) - c0
			}
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
			if n := cb.applies.Load(); n != 0 {
				b.Errorf("%d passes over an unchanged kernel applied something", n)
			}
		})
	}
}

// notifyBackend tells, for each prefix a test waits for, when an Apply
// that added it returned: the moment the kernel holds the entry.
type notifyBackend struct {
	Backend
	applies atomic.Int64
	mu      sync.Mutex
	waiting map[netip.Prefix]chan struct{}
}

// Each streams the listing as the wrapped backend does.
func (nb *notifyBackend) Each(ctx context.Context, fn func(Entry)) error {
	return eachEntry(ctx, nb.Backend, fn)
}

func (nb *notifyBackend) wait(p netip.Prefix) <-chan struct{} {
	nb.mu.Lock()
	defer nb.mu.Unlock()
	c := make(chan struct{})
	nb.waiting[p] = c
	return c
}

func (nb *notifyBackend) Apply(ctx context.Context, add []Entry, del []netip.Prefix) error {
	nb.applies.Add(1)
	err := nb.Backend.Apply(ctx, add, del)
	nb.mu.Lock()
	defer nb.mu.Unlock()
	for _, e := range add {
		if c, ok := nb.waiting[e.Prefix]; ok {
			close(c)
			delete(nb.waiting, e.Prefix)
		}
	}
	return err
}

// BenchmarkBanToKernel measures how long a ban takes from BanList.Ban to
// the return of the Apply that put it in the kernel, with a running
// Reconciler on an idle ban list: one ban at a time ("single"), and
// bursts of 1,000 bans made at once ("burst"), where every ban's
// latency counts and applies/burst shows the batching. It reports the
// median and 95th percentile in milliseconds.
func BenchmarkBanToKernel(b *testing.B) {
	testenv.Netns(b, kernelTools...)
	for _, backend := range []string{"ipset", "nftables"} {
		for _, bc := range []struct{ burst, loaded int }{{1, 0}, {1000, 0}, {1, 100_000}} {
			name := backend + "/single"
			if bc.burst > 1 {
				name = fmt.Sprintf("%s/burst=%d", backend, bc.burst)
			}
			if bc.loaded > 0 {
				name += fmt.Sprintf("/loaded=%d", bc.loaded)
			}
			b.Run(name, func(b *testing.B) {
				benchBanToKernel(b, backend, bc.burst, bc.loaded)
			})
		}
	}
}

// benchBanToKernel measures bans of burst prefixes at a time, into a
// kernel that holds loaded entries besides.
func benchBanToKernel(b *testing.B, backend string, burst, loaded int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	be, err := New(Config{Backend: backend, NetNS: newNetNS(b, "bench")})
	if err != nil {
		b.Fatal(err)
	}
	nb := &notifyBackend{Backend: be, waiting: map[netip.Prefix]chan struct{}{}}
	bans := rules.NewBanList(rules.BanListConfig{})
	for _, ban := range benchBans(loaded, time.Now().Add(time.Hour)) {
		if _, err := bans.Ban(ban); err != nil {
			b.Fatal(err)
		}
	}
	r, err := NewReconciler(ReconcilerConfig{Backend: nb, Bans: bans, Interval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	until := time.Now().Add(time.Hour)
	next := netip.MustParseAddr("10.0.0.0") // apart from benchBans' prefixes
	ban := func() (netip.Prefix, <-chan struct{}) {
		p := netip.PrefixFrom(next, 32)
		next = next.Next()
		c := nb.wait(p)
		if _, err := bans.Ban(rules.Ban{Prefix: p, Until: until}); err != nil {
			b.Fatal(err)
		}
		return p, c
	}
	// The first pass (ensure, list) is not what is measured: wait for a
	// ban to go through it.
	_, c := ban()
	select {
	case <-c:
	case <-time.After(time.Minute):
		b.Fatal("first ban not in the kernel after a minute")
	}
	nb.applies.Store(0)
	var lat []time.Duration
	chans := make([]<-chan struct{}, burst)
	for b.Loop() {
		start := time.Now()
		for i := range chans {
			_, chans[i] = ban()
		}
		for _, c := range chans {
			select {
			case <-c:
				lat = append(lat, time.Since(start))
			case <-time.After(time.Minute):
				b.Fatal("ban not in the kernel after a minute")
			}
		}
		// The next round starts on an idle reconciler.
		b.StopTimer()
		time.Sleep(2 * time.Millisecond)
		b.StartTimer()
	}
	slices.Sort(lat)
	ms := func(q float64) float64 {
		return float64(lat[min(len(lat)-1, int(q*float64(len(lat))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.95), "p95-ms")
	b.ReportMetric(float64(nb.applies.Load())/float64(b.N), "applies/burst")
}
