package rules

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
)

// benchBans is a ban list holding n IPv4 /32 and n IPv6 /64 bans, and
// rings of addresses to look up: banned (hit) and not (miss) in each
// family, each ring small enough to stay in cache as a busy site's
// active clients do; cold is a miss ring as large as the ban list.
type benchBans struct {
	l                            *BanList
	v4hit, v4miss, v6hit, v6miss []netip.Addr
	cold                         []netip.Addr
}

const lookupRing = 4096

func newBenchBans(tb testing.TB, n int) *benchBans {
	tb.Helper()
	r := rand.New(rand.NewPCG(uint64(n), 7))
	bb := &benchBans{l: NewBanList(BanListConfig{MaxBans: 2*n + 1})}
	until := time.Now().Add(24 * time.Hour)
	v4 := func() netip.Addr {
		return netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
	}
	v6 := func() netip.Addr {
		var b [16]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		b[0] = 0x20
		return netip.AddrFrom16(b)
	}
	for i := range n {
		a4, a6 := v4(), v6()
		for _, p := range []netip.Prefix{netip.PrefixFrom(a4, 32), netip.PrefixFrom(a6, 64).Masked()} {
			if _, err := bb.l.Ban(Ban{Prefix: p, Jail: "probes", Reason: "probe", Until: until, Count: 1}); err != nil {
				tb.Fatal(err)
			}
		}
		if i < lookupRing {
			bb.v4hit = append(bb.v4hit, a4)
			bb.v6hit = append(bb.v6hit, a6)
		}
	}
	miss := func(gen func() netip.Addr, k int) []netip.Addr {
		out := make([]netip.Addr, 0, k)
		for len(out) < k {
			if a := gen(); !bb.l.banned(a) {
				out = append(out, a)
			}
		}
		return out
	}
	bb.v4miss, bb.v6miss = miss(v4, lookupRing), miss(v6, lookupRing)
	bb.cold = miss(v4, max(n, lookupRing))
	for len(bb.v4hit) < lookupRing { // small lists: repeat the hits
		bb.v4hit = append(bb.v4hit, bb.v4hit...)
		bb.v6hit = append(bb.v6hit, bb.v6hit...)
	}
	return bb
}

// BenchmarkBanLookup looks up clients in ban lists of 1e3 and 1e6 bans
// per family. Numbers go in closing notes (STYLE §10).
func BenchmarkBanLookup(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"1e3", 1e3}, {"1e6", 1e6}} {
		n := size.n
		bb := newBenchBans(b, n)
		for _, c := range []struct {
			name  string
			addrs []netip.Addr
			want  bool
		}{
			{"v4/hit", bb.v4hit, true},
			{"v4/miss", bb.v4miss, false},
			{"v6/hit", bb.v6hit, true},
			{"v6/miss", bb.v6miss, false},
			{"v4/miss-cold", bb.cold, false},
		} {
			b.Run("bans="+size.name+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				if _, ok := bb.l.Lookup(c.addrs[0]); ok != c.want {
					b.Fatalf("Lookup(%s) = %v, want %v", c.addrs[0], ok, c.want)
				}
				i := 0
				for b.Loop() {
					bb.l.Lookup(c.addrs[i%len(c.addrs)])
					i++
				}
			})
			b.Run("bans="+size.name+"/"+c.name+"/parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					i := rand.IntN(len(c.addrs))
					for pb.Next() {
						bb.l.Lookup(c.addrs[i%len(c.addrs)])
						i++
					}
				})
			})
		}
		bb = nil
		runtime.GC()
	}
}

// rwBanMap is the straightforward alternative to BanList's lock-free
// tables, kept here to compare with: a Go map of /32 bans behind a
// sync.RWMutex, whose read lock is an atomic add on one shared word.
type rwBanMap struct {
	mu sync.RWMutex
	m  map[netip.Addr]int64
}

func (r *rwBanMap) lookup(a netip.Addr) bool {
	r.mu.RLock()
	until, ok := r.m[a]
	r.mu.RUnlock()
	return ok && until > time.Now().UnixNano()
}

func BenchmarkBanLookupRWMutexMap(b *testing.B) {
	const n = 1e6
	r := rand.New(rand.NewPCG(1, 7))
	m := &rwBanMap{m: make(map[netip.Addr]int64, n)}
	until := time.Now().Add(time.Hour).UnixNano()
	var hit []netip.Addr
	for range int(n) {
		a := netip.AddrFrom4([4]byte{byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32()), byte(r.Uint32())})
		m.m[a] = until
		if len(hit) < lookupRing {
			hit = append(hit, a)
		}
	}
	b.Run("bans=1e6/v4/hit/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(len(hit))
			for pb.Next() {
				m.lookup(hit[i%len(hit)])
				i++
			}
		})
	})
}

// BenchmarkBanListBan measures adding a ban (replacing bans of a ring of
// prefixes, so the list does not grow without bound).
func BenchmarkBanListBan(b *testing.B) {
	b.ReportAllocs()
	l := NewBanList(BanListConfig{})
	until := time.Now().Add(time.Hour)
	i := 0
	for b.Loop() {
		k := i % 100_000
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)}), 32)
		if _, err := l.Ban(Ban{Prefix: p, Jail: "probes", Until: until}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkBanListMemory reports the heap held per ban with 1e6 IPv4 and
// 1e6 IPv6 bans.
func BenchmarkBanListMemory(b *testing.B) {
	const n = 1e6
	var perBan, total float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		l := NewBanList(BanListConfig{MaxBans: 2 * n})
		until := time.Now().Add(time.Hour)
		for i := range int(n) {
			a4 := netip.AddrFrom4([4]byte{10 + byte(i>>24), byte(i >> 16), byte(i >> 8), byte(i)})
			a6 := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 4: byte(i >> 24), 5: byte(i >> 16), 6: byte(i >> 8), 7: byte(i)})
			for _, p := range []netip.Prefix{netip.PrefixFrom(a4, 32), netip.PrefixFrom(a6, 64)} {
				if _, err := l.Ban(Ban{Prefix: p, Jail: "probes", Reason: "probe", Until: until}); err != nil {
					b.Fatal(err)
				}
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		total = float64(after.HeapAlloc) - float64(before.HeapAlloc)
		perBan = total / (2 * n)
		runtime.KeepAlive(l)
	}
	b.ReportMetric(perBan, "bytes/ban")
	b.ReportMetric(total/(1<<20), "MiB/2e6-bans")
}
