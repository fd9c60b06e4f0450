//go:build !race

// Without -race only: the race detector adds allocations of its own.

package fleet

import (
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/rules"
	"gatehouse/rules/store"
)

// TestShareOffenceAllocs pins the request path: queueing an offence, or
// turning it down, allocates nothing. No Redis is needed: the Fleet does
// not run.
func TestShareOffenceAllocs(t *testing.T) {
	st, err := store.Open(store.StoreConfig{Path: filepath.Join(t.TempDir(), "bans.db")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	f, err := New(Config{Redis: rdb, Node: "a", Bans: rules.NewBanList(rules.BanListConfig{}), Journal: st, OffenceQueue: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("192.0.2.1")
	o := rules.Offence{Jail: "probes", Prefix: netip.PrefixFrom(a, 32), Addr: a, Reason: "probe", At: time.Now()}
	for _, up := range []bool{false, true} {
		f.up.Store(up)
		if n := testing.AllocsPerRun(200, func() { f.ShareOffence(o) }); n != 0 {
			t.Errorf("ShareOffence with redis up=%v allocates %v times, want 0", up, n)
		}
	}
}
