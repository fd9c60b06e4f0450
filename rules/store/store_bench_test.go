package store

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"gatehouse/rules"
)

// benchPrefix returns the i-th of a set of distinct IPv4 /32s.
func benchPrefix(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
}

// BenchmarkPut measures one durable manual ban: a bbolt transaction and
// its fsync, so mostly the disk's sync latency.
func BenchmarkPut(b *testing.B) {
	s := openTest(b, StoreConfig{})
	until := time.Now().Add(time.Hour)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := s.Put(rules.Ban{Prefix: benchPrefix(i % 100_000), Jail: "probes", Reason: "/.env", Count: 1, Until: until, Created: until}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkRunBurst measures how fast Run writes a burst of 10,000 bans
// made through a BanList: from the first Ban call until the last ban is
// in the file. With a buffer smaller than the burst, the subscription
// overflows and Run catches up with a resync.
func BenchmarkRunBurst(b *testing.B) {
	const burst = 10_000
	for _, buf := range []int{16384, 1024} {
		b.Run(fmt.Sprintf("bans=1e4/buffer=%d", buf), func(b *testing.B) {
			s := openTest(b, StoreConfig{})
			l := rules.NewBanList(rules.BanListConfig{})
			sub := l.Subscribe(buf)
			defer sub.Close()
			stop := startRun(b, s, sub)
			last := benchPrefix(burst - 1)
			lastKey := appendPrefixKey(nil, last)
			base := time.Now().Add(time.Hour)
			// written reports whether the last ban of the burst, ending at
			// until, is in the file; Run writes changes in order, and a
			// resync writes the whole snapshot, so the rest is there too.
			written := func(want []byte) bool {
				var ok bool
				if err := s.db.View(func(tx *bolt.Tx) error {
					ok = bytes.Equal(tx.Bucket([]byte(bucketBans)).Get(lastKey), want)
					return nil
				}); err != nil {
					b.Fatal(err)
				}
				return ok
			}
			// Poll often, but leave the CPU to Run between polls.
			tick := time.NewTicker(100 * time.Microsecond)
			defer tick.Stop()
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				// Every burst re-bans the same prefixes with a new Until.
				until := base.Add(time.Duration(n) * time.Second)
				var stored rules.Ban
				for i := range burst {
					var err error
					if stored, err = l.Ban(rules.Ban{Prefix: benchPrefix(i), Jail: "probes", Reason: "/.env", Count: 1, Until: until}); err != nil {
						b.Fatal(err)
					}
				}
				want, err := encodeBan(stored)
				if err != nil {
					b.Fatal(err)
				}
				deadline := time.Now().Add(time.Minute)
				for !written(want) {
					if time.Now().After(deadline) {
						b.Fatal("burst not written after a minute")
					}
					<-tick.C
				}
				n++
			}
			b.ReportMetric(float64(n*burst)/b.Elapsed().Seconds(), "bans/s")
			if err := stop(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkLoad measures the start-up read of 100,000 active bans with
// their history.
func BenchmarkLoad(b *testing.B) {
	const n = 100_000
	s := openTest(b, StoreConfig{})
	until := time.Now().Add(time.Hour)
	snap := make([]rules.Ban, n)
	for i := range snap {
		snap[i] = rules.Ban{Prefix: benchPrefix(i), Jail: "probes", Reason: "/.env", Count: 1, Until: until, Created: until.Add(-time.Hour)}
	}
	if err := s.resync(snap, true); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		active, history, err := s.Load(now)
		if err != nil || len(active) != n || len(history) != n {
			b.Fatalf("Load() = %d, %d, %v; want %d bans and history records", len(active), len(history), err, n)
		}
	}
}
