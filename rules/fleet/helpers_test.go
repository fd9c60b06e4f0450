package fleet

import (
	"context"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"gatehouse/rules"
	"gatehouse/rules/fleet/fleettest"
	"gatehouse/rules/store"
)

// node is one gatehouse node of a test fleet: a ban list, a store in its
// own directory and a Fleet, run until stop or the test's end.
type node struct {
	name  string
	dir   string
	rdb   *redis.Client
	bans  *rules.BanList
	st    *store.Store
	f     *Fleet
	stopF context.CancelFunc
	done  chan struct{}
}

// newNode builds a node named name whose state lives in dir ("" for a
// new temp dir); mod, when set, adjusts its config. Start it with run.
func newNode(t testing.TB, r *fleettest.Redis, name, dir string, mod func(*Config)) *node {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	st, err := store.Open(store.StoreConfig{Path: filepath.Join(dir, "bans.db")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, dir: dir, rdb: r.Client(t), bans: rules.NewBanList(rules.BanListConfig{}), st: st}
	active, _, err := st.Load(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range active {
		if _, err := n.bans.Ban(b); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{Redis: n.rdb, Node: name, Bans: n.bans, Journal: st, Block: 200 * time.Millisecond, Heartbeat: time.Second,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)}
	if mod != nil {
		mod(&cfg)
	}
	if n.f, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.stop)
	return n
}

// run starts the node's Fleet and the store's feed.
func (n *node) run() {
	ctx, cancel := context.WithCancel(context.Background())
	n.stopF = cancel
	n.done = make(chan struct{})
	sub := n.bans.Subscribe(4096)
	storeDone := make(chan struct{})
	go func() {
		defer close(storeDone)
		defer sub.Close()
		// Errors after a closed database are the test's end.
		_ = n.st.Run(ctx, sub)
	}()
	go func() {
		defer close(n.done)
		_ = n.f.Run(ctx)
		<-storeDone
	}()
}

// stop stops the node and closes its store. It is idempotent.
func (n *node) stop() {
	if n.stopF != nil {
		n.stopF()
		<-n.done
		n.stopF = nil
	}
	if n.st != nil {
		_ = n.st.Close()
		n.st = nil
	}
}

// ban bans p for d as the admin API does: ban list, then store and
// outbox in one transaction, then a kick.
func (n *node) ban(t testing.TB, p string, d time.Duration) rules.Ban {
	t.Helper()
	now := time.Now()
	b, err := n.bans.Ban(rules.Ban{Prefix: netip.MustParsePrefix(p), Until: now.Add(d), Created: now, Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.st.PutQueued(b); err != nil {
		t.Fatal(err)
	}
	n.f.Kick()
	return b
}

// unban lifts p as the admin API does.
func (n *node) unban(t testing.TB, p string) {
	t.Helper()
	pp := netip.MustParsePrefix(p)
	n.bans.Unban(pp)
	if err := n.st.DeleteQueued(pp, time.Now()); err != nil {
		t.Fatal(err)
	}
	n.f.Kick()
}

// banned reports whether the node holds an active ban of exactly p.
func (n *node) banned(p string) bool {
	pp := netip.MustParsePrefix(p)
	b, ok := n.bans.Lookup(pp.Addr())
	return ok && b.Prefix == pp
}

// outbox returns how many changes wait in the node's outbox.
func (n *node) outbox(t testing.TB) int {
	t.Helper()
	_, total, err := n.st.Outbox(0)
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// prefixes returns the node's active bans' prefixes, sorted.
func (n *node) prefixes() []string {
	var out []string
	for _, b := range n.bans.List() {
		out = append(out, b.Prefix.String())
	}
	slices.Sort(out)
	return out
}

// waitFor polls cond every 5 ms until it holds, failing the test after
// timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

// testWriter sends log lines to the test's log, shown when it fails or
// with -v.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
