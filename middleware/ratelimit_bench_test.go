package middleware

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"
)

// lruBuckets is how RateBuckets kept clients before they moved to
// rules.ClientTable, kept here to compare with: golang-lru/v2's Cache
// (a map and a list element per client, one mutex) of *rate.Limiter (one
// heap object, with its own mutex, per client).
type lruBuckets struct {
	cache  *lru.Cache[netip.Prefix, *rate.Limiter]
	limit  rate.Limit
	burst  int
	v6bits int
}

func (l *lruBuckets) allow(ip netip.Addr) bool {
	key := netip.PrefixFrom(ip, ip.BitLen())
	if ip.Is6() {
		key, _ = ip.Prefix(l.v6bits)
	}
	lim, ok := l.cache.Get(key)
	if !ok {
		lim = rate.NewLimiter(l.limit, l.burst)
		l.cache.Add(key, lim)
	}
	return lim.Allow()
}

// floodTable is one of the two ways to keep flood buckets.
type floodTable struct {
	name string
	new  func(b testing.TB, capacity int) func(ip netip.Addr) bool
}

func floodTables() []floodTable {
	return []floodTable{
		{name: "lru", new: func(b testing.TB, capacity int) func(netip.Addr) bool {
			c, err := lru.New[netip.Prefix, *rate.Limiter](capacity)
			if err != nil {
				b.Fatal(err)
			}
			l := &lruBuckets{cache: c, limit: 1e9, burst: 10, v6bits: 64}
			return l.allow
		}},
		{name: "clienttable", new: func(b testing.TB, capacity int) func(netip.Addr) bool {
			rb, err := NewRateBuckets(RateLimitConfig{Rate: 1e9, Burst: 10, Capacity: capacity}, nil)
			if err != nil {
				b.Fatal(err)
			}
			return func(ip netip.Addr) bool {
				t := rb.now().UnixNano()
				return rb.clients.Update(ip, func(s *tokenBucket, fresh bool) bool { return s.take(t, rb.rate, rb.burst, fresh) })
			}
		}},
	}
}

func floodAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10 + byte(i>>24), byte(i >> 16), byte(i >> 8), byte(i)})
}

// BenchmarkFloodTable compares the two ways of keeping flood buckets:
// lookup of a tracked client (known), insert of a new one that evicts
// another once the 100,000 capacity is full (new), known clients from
// every core (parallel), and the heap held per client (memory). The
// numbers are quoted in RateBuckets' comment.
func BenchmarkFloodTable(b *testing.B) {
	const capacity = 100_000
	for _, ft := range floodTables() {
		b.Run(ft.name+"/known", func(b *testing.B) {
			b.ReportAllocs()
			allow := ft.new(b, capacity)
			for i := range 1024 {
				allow(floodAddr(i))
			}
			i := 0
			for b.Loop() {
				allow(floodAddr(i % 1024))
				i++
			}
		})
		b.Run(ft.name+"/new", func(b *testing.B) {
			b.ReportAllocs()
			allow := ft.new(b, capacity)
			for i := range capacity {
				allow(floodAddr(i))
			}
			i := capacity
			for b.Loop() {
				allow(floodAddr(i))
				i++
			}
		})
		b.Run(ft.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			allow := ft.new(b, capacity)
			for i := range 64 * 1024 {
				allow(floodAddr(i))
			}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := int(time.Now().UnixNano()) // a different start per goroutine
				for pb.Next() {
					allow(floodAddr(i & (64*1024 - 1)))
					i++
				}
			})
		})
		b.Run(fmt.Sprintf("%s/memory/ips=%d", ft.name, capacity), func(b *testing.B) {
			var perIP float64
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				allow := ft.new(b, capacity)
				for i := range capacity {
					allow(floodAddr(i))
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perIP = (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / capacity
				runtime.KeepAlive(allow)
			}
			b.ReportMetric(perIP, "bytes/ip")
		})
	}
}
