package fleet

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/rules"
	"gatehouse/rules/fleet/fleettest"
	"gatehouse/rules/store"
)

// redisInfo returns a numeric field of INFO section, 0 if absent.
func redisInfo(b *testing.B, rdb *redis.Client, section, field string) float64 {
	b.Helper()
	s, err := rdb.Info(context.Background(), section).Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(s, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// evalCost returns Redis's CPU time spent in EVALSHA and its calls.
func evalCost(b *testing.B, rdb *redis.Client) (usec, calls float64) {
	b.Helper()
	s, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(s, "\r\n") {
		rest, ok := strings.CutPrefix(line, "cmdstat_evalsha:")
		if !ok {
			continue
		}
		for kv := range strings.SplitSeq(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			f, _ := strconv.ParseFloat(v, 64)
			switch k {
			case "usec":
				usec = f
			case "calls":
				calls = f
			}
		}
	}
	return usec, calls
}

// BenchmarkPropagation measures a ban made on node A until it is on node
// B's ban list: outbox write, push, stream, apply. It reports p50 and
// p99 over the iterations.
func BenchmarkPropagation(b *testing.B) {
	r := fleettest.Start(b)
	a := newNode(b, r, "a", "", func(c *Config) { c.Log = nil })
	n := newNode(b, r, "b", "", func(c *Config) { c.Log = nil })
	a.run()
	n.run()
	waitFor(b, propagate, "connected", func() bool { return a.f.Up() && n.f.Up() })
	sub := n.bans.Subscribe(1 << 16)
	defer sub.Close()
	var lat []time.Duration
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
		start := time.Now()
		now := time.Now()
		ban, err := a.bans.Ban(rules.Ban{Prefix: p, Created: now, Until: now.Add(time.Hour)})
		if err != nil {
			b.Fatal(err)
		}
		if err := a.st.PutQueued(ban); err != nil {
			b.Fatal(err)
		}
		a.f.Kick()
		deadline := time.After(propagate)
	wait:
		for {
			select {
			case c := <-sub.C:
				if c.Op == rules.Added && c.Ban.Prefix == p {
					break wait
				}
			case <-deadline:
				b.Fatalf("ban %d did not reach b", i)
			}
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// benchFleet is a Fleet on r that is not running, for calling its parts.
func benchFleet(b *testing.B, r *fleettest.Redis) *Fleet {
	b.Helper()
	st, err := store.Open(store.StoreConfig{Path: b.TempDir() + "/bans.db"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	f, err := New(Config{Redis: r.Client(b), Node: "bench", Bans: rules.NewBanList(rules.BanListConfig{MaxBans: 2_000_000}), Journal: st})
	if err != nil {
		b.Fatal(err)
	}
	return f
}

func benchBans(n, from int) []store.OutboxEntry {
	now := time.Now()
	out := make([]store.OutboxEntry, n)
	for i := range out {
		k := from + i
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)}), 32)
		out[i] = store.OutboxEntry{Ban: rules.Ban{Prefix: p, Jail: "probes", Count: 1, Reason: "probe", Created: now, Until: now.Add(time.Hour)}, At: now}
	}
	return out
}

// BenchmarkPushBans measures Redis's cost per ban pushed (one apply
// call per batch): round trip per batch, Redis CPU and memory per ban.
func BenchmarkPushBans(b *testing.B) {
	for _, batch := range []int{1, 512} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			r := fleettest.Start(b)
			f := benchFleet(b, r)
			rdb := r.Client(b)
			mem0 := redisInfo(b, rdb, "memory", "used_memory")
			usec0, _ := evalCost(b, rdb)
			pushed := 0
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.apply(context.Background(), benchBans(batch, pushed)); err != nil {
					b.Fatal(err)
				}
				pushed += batch
			}
			usec1, _ := evalCost(b, rdb)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(pushed), "ns/ban")
			b.ReportMetric((usec1-usec0)/float64(pushed), "redis-µs/ban")
			b.ReportMetric((redisInfo(b, rdb, "memory", "used_memory")-mem0)/float64(pushed), "redis-B/ban")
		})
	}
}

// BenchmarkSharedOffences measures Redis's cost per shared offence: a
// batch of 256 offences of distinct clients counted in one Lua call.
func BenchmarkSharedOffences(b *testing.B) {
	r := fleettest.Start(b)
	f := benchFleet(b, r)
	rdb := r.Client(b)
	policy := rules.JailPolicy{MaxRetry: 5, FindTime: 10 * time.Minute, BanTime: time.Hour, Factor: 2, Max: 24 * time.Hour, Forget: 7 * 24 * time.Hour}
	usec0, _ := evalCost(b, rdb)
	counted := 0
	batch := make([]rules.Offence, offenceBatch)
	b.ReportAllocs()
	for b.Loop() {
		for i := range batch {
			k := counted + i
			a := netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)})
			batch[i] = rules.Offence{Jail: "probes", Prefix: netip.PrefixFrom(a, 32), Addr: a, Reason: "probe", At: time.Now(), Policy: policy}
		}
		if err := f.count(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
		counted += len(batch)
	}
	usec1, _ := evalCost(b, rdb)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(counted), "ns/offence")
	b.ReportMetric((usec1-usec0)/float64(counted), "redis-µs/offence")
}

// BenchmarkFullPull measures a full pull of 100,000 bans into an empty
// ban list (the kernel push, done by the firewall's reconciler, is not
// included).
func BenchmarkFullPull(b *testing.B) {
	const n = 100_000
	r := fleettest.Start(b)
	seed := benchFleet(b, r)
	for i := 0; i < n; i += pushBatch {
		if _, err := seed.apply(context.Background(), benchBans(min(pushBatch, n-i), i)); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("hscan-only", func(b *testing.B) {
		rdb := r.Client(b)
		for b.Loop() {
			var cursor uint64
			got := 0
			for {
				kv, next, err := rdb.HScan(context.Background(), seed.k.bans, cursor, "", scanCount).Result()
				if err != nil {
					b.Fatal(err)
				}
				got += len(kv) / 2
				if next == 0 {
					break
				}
				cursor = next
			}
			if got < n {
				b.Fatalf("scanned %d", got)
			}
		}
	})
	b.Run("bans=1e5", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			f := benchFleet(b, r)
			b.StartTimer()
			got, _, err := f.pull(context.Background())
			b.StopTimer()
			if held := len(f.bans.List()); err != nil || got != n || held != n {
				b.Fatalf("pull = %d, %v; list holds %d, want %d", got, err, held, n)
			}
			b.StartTimer()
		}
	})
}
