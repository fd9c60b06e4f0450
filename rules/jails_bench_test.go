package rules

import (
	"fmt"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func benchJails(b *testing.B, cfg JailsConfig) *Jails {
	b.Helper()
	j, err := NewJails(cfg, NewBanList(BanListConfig{Allow: cfg.Allow}), nil)
	if err != nil {
		b.Fatal(err)
	}
	return j
}

func clientAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10 + byte(i>>24), byte(i >> 16), byte(i >> 8), byte(i)})
}

// BenchmarkReport measures Report on the request path, with the real
// clock: a known client below maxretry (FindTime 1ns, so the window
// never fills: the common case of an occasional 404 or typo), a new
// client each time (evicting once the 100,000 capacity is full), and an
// allowed client.
func BenchmarkReport(b *testing.B) {
	known := JailsConfig{Jails: map[string]JailConfig{"probes": {MaxRetry: 5, FindTime: time.Nanosecond}}}
	b.Run("known", func(b *testing.B) {
		b.ReportAllocs()
		j := benchJails(b, known)
		for i := range 1024 {
			j.Report("probes", clientAddr(i), "probe")
		}
		i := 0
		for b.Loop() {
			j.Report("probes", clientAddr(i%1024), "probe")
			i++
		}
	})
	b.Run("known/escalate", func(b *testing.B) {
		b.ReportAllocs()
		cfg := JailsConfig{Jails: map[string]JailConfig{"probes": {MaxRetry: 5, FindTime: time.Nanosecond, Escalate: &Escalate{}}}}
		j := benchJails(b, cfg)
		for i := range 1024 {
			j.Report("probes", clientAddr(i), "probe")
		}
		i := 0
		for b.Loop() {
			j.Report("probes", clientAddr(i%1024), "probe")
			i++
		}
	})
	b.Run("known/escalate/rotating", func(b *testing.B) {
		b.ReportAllocs()
		// An attacker rotating over 1024 known /64s of one /48, on a
		// clock that moves 1ms per offence: each offence counts towards
		// the /48, whose window of findtime holds 1,000 of them, below
		// after×maxretry (5,000); no client nears maxretry.
		cfg := JailsConfig{Jails: map[string]JailConfig{"probes": {MaxRetry: 1000, FindTime: time.Second, Escalate: &Escalate{}}}}
		j := benchJails(b, cfg)
		now := time.Now()
		j.now = func() time.Time {
			now = now.Add(time.Millisecond)
			return now
		}
		addr := func(i int) netip.Addr {
			return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 6: byte(i >> 8), 7: byte(i), 15: 1})
		}
		for i := range 1024 {
			j.Report("probes", addr(i), "probe")
		}
		i := 0
		for b.Loop() {
			j.Report("probes", addr(i%1024), "probe")
			i++
		}
		if made, _ := j.Escalations("probes"); made != 0 {
			b.Fatalf("%d escalations: the benchmark must stay below after×maxretry", made)
		}
	})
	b.Run("known/ipv6", func(b *testing.B) {
		b.ReportAllocs()
		j := benchJails(b, known)
		a := netip.MustParseAddr("2001:db8::1")
		for b.Loop() {
			j.Report("probes", a, "probe")
		}
	})
	b.Run("known/parallel", func(b *testing.B) {
		b.ReportAllocs()
		// Each goroutine reports its own 1024 clients, as cores serving
		// different connections do.
		j := benchJails(b, known)
		for i := range 64 * 1024 {
			j.Report("probes", clientAddr(i), "probe")
		}
		var next atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			base := int(next.Add(1)%64) * 1024
			i := 0
			for pb.Next() {
				j.Report("probes", clientAddr(base+i%1024), "probe")
				i++
			}
		})
	})
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		j := benchJails(b, known)
		i := 0
		for b.Loop() {
			j.Report("probes", clientAddr(i), "probe")
			i++
		}
	})
	b.Run("allowed", func(b *testing.B) {
		b.ReportAllocs()
		cfg := known
		cfg.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
		j := benchJails(b, cfg)
		for b.Loop() {
			j.Report("probes", clientAddr(1), "probe")
		}
	})
}

// BenchmarkEscalate measures the ban path of an escalating jail: every
// Report bans a new client (MaxRetry 1), and every fifth ban of a /24
// escalates it, replacing its four members, with 100,000 other bans
// held.
func BenchmarkEscalate(b *testing.B) {
	b.ReportAllocs()
	bans := NewBanList(BanListConfig{})
	for i := range 100_000 {
		if _, err := bans.Ban(Ban{Prefix: netip.PrefixFrom(clientAddr(1<<24+i), 32), Jail: "other", Until: time.Now().Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	j, err := NewJails(JailsConfig{Jails: map[string]JailConfig{"probes": {MaxRetry: 1, Escalate: &Escalate{After: 5}}}, Capacity: 1 << 20}, bans, nil)
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	for b.Loop() {
		// Five clients of each /24: .0 to .4.
		j.Report("probes", clientAddr((i/5)<<8|i%5), "probe")
		i++
	}
	if made, _ := j.Escalations("probes"); made < uint64(i/5)-1 {
		b.Fatalf("%d escalations after %d bans, want %d", made, i, i/5)
	}
}

// BenchmarkJailMemory reports the heap held per tracked client after
// 1,000,000 distinct IPv4 clients offended once each in one jail of that
// capacity; in an escalating jail, each in a network of its own, the
// network's entry included.
func BenchmarkJailMemory(b *testing.B) {
	const n = 1_000_000
	for _, tc := range []struct {
		maxRetry int
		escalate bool
	}{{3, false}, {5, false}, {20, false}, {5, true}} {
		maxRetry, name := tc.maxRetry, fmt.Sprintf("maxretry=%d/ips=1e6", tc.maxRetry)
		jc := JailConfig{MaxRetry: maxRetry}
		addr := clientAddr
		if tc.escalate {
			// Each client in a /24 of its own: the network table full
			// too, with escalate's default after (5).
			name = fmt.Sprintf("maxretry=%d/escalate/ips=1e6", maxRetry)
			jc.Escalate = &Escalate{}
			addr = func(i int) netip.Addr { return clientAddr(i << 8) }
		}
		b.Run(name, func(b *testing.B) {
			var perIP, total float64
			var tracked int
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				j := benchJails(b, JailsConfig{Jails: map[string]JailConfig{"probes": jc}, Capacity: n})
				for i := range n {
					j.Report("probes", addr(i), "probe")
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				// Shards fill unevenly, so a full table tracks a little
				// under its capacity.
				tracked = j.jails["probes"].clients.len()
				if tracked < n*99/100 {
					b.Fatalf("tracked %d clients, want about %d", tracked, n)
				}
				total = float64(after.HeapAlloc) - float64(before.HeapAlloc)
				perIP = total / float64(tracked)
				runtime.KeepAlive(j)
			}
			b.ReportMetric(perIP, "bytes/ip")
			b.ReportMetric(total/(1<<20), "MiB")
			b.ReportMetric(float64(tracked), "ips")
		})
	}
}
