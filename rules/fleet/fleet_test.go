package fleet

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"gatehouse/rules"
	"gatehouse/rules/fleet/fleettest"
)

const propagate = 10 * time.Second // generous: CI machines are shared

func TestBanAndUnbanPropagate(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	a := newNode(t, r, "a", "", nil)
	b := newNode(t, r, "b", "", nil)
	a.run()
	b.run()

	banned := a.ban(t, "203.0.113.7/32", time.Hour)
	waitFor(t, propagate, "the ban on b", func() bool { return b.banned("203.0.113.7/32") })
	got, _ := b.bans.Lookup(netip.MustParseAddr("203.0.113.7"))
	if d := got.Until.Sub(banned.Until).Abs(); d > 50*time.Millisecond {
		t.Errorf("b's ban ends %s, a's %s: %s apart, want the same end", got.Until, banned.Until, d)
	}
	if got.Reason != "test" {
		t.Errorf("b's ban reason = %q, want %q", got.Reason, "test")
	}

	// A jail ban goes through the ban list's feed, not the admin path.
	if _, err := a.bans.Ban(rules.Ban{Prefix: netip.MustParsePrefix("2001:db8:1::/64"), Jail: "probes", Count: 2, Reason: "probe", Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, propagate, "the jail ban on b", func() bool { return b.banned("2001:db8:1::/64") })
	if jb, _ := b.bans.Lookup(netip.MustParseAddr("2001:db8:1::1")); jb.Jail != "probes" || jb.Count != 2 {
		t.Errorf("b's jail ban = %+v, want jail probes, count 2", jb)
	}

	b.unban(t, "203.0.113.7/32")
	waitFor(t, propagate, "the unban on a", func() bool { return !a.banned("203.0.113.7/32") })
	waitFor(t, propagate, "empty outboxes", func() bool { return a.outbox(t) == 0 && b.outbox(t) == 0 })
	if got := value(a.f.m.received.WithLabelValues("unban")); got != 1 {
		t.Errorf("a received %v unbans, want 1", got)
	}
}

func TestLastWriterWinsWhateverTheOrder(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	rdb := r.Client(t)
	now := time.Now().UnixMicro() // the test's and Redis's clocks are the same
	val := func(rev int64, node string) string {
		return banValue{Until: now + 3600e6, Rev: rev, Count: 1, Node: node, Jail: "", Reason: "x"}.String()
	}
	type change struct{ op, rev, v string }
	ban10 := change{"b", fmt.Sprint(now + 10), val(now+10, "a")}
	unban20 := change{"u", fmt.Sprint(now + 20), "b"}
	ban15 := change{"b", fmt.Sprint(now + 15), val(now+15, "c")}
	ban30 := change{"b", fmt.Sprint(now + 30), val(now+30, "c")}
	tests := []struct {
		name    string
		changes []change
		banned  bool
		rev     int64
	}{
		{"ban then unban", []change{ban10, unban20}, false, 0},
		{"unban then older ban", []change{unban20, ban10}, false, 0},
		{"older ban after unban, any order", []change{ban15, unban20, ban10}, false, 0},
		{"newer ban beats the unban", []change{unban20, ban30, ban10, ban15}, true, now + 30},
		{"newer ban first", []change{ban30, unban20, ban10}, true, now + 30},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := newKeys(fmt.Sprintf("lww%d", i))
			run := func(cs []change) int {
				args := []any{100, micros(time.Hour), 0}
				for _, c := range cs {
					args = append(args, c.op, "198.51.100.1/32", c.rev, c.v)
				}
				n, err := applyScript.Run(t.Context(), rdb, []string{k.bans, k.exp, k.unbans, k.unexp, k.stream}, args...).Int()
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			for _, c := range tc.changes {
				run([]change{c})
			}
			// Replaying everything changes nothing.
			if n := run(tc.changes); n != 0 {
				t.Errorf("replay applied %d changes, want 0", n)
			}
			v, err := rdb.HGet(t.Context(), k.bans, "198.51.100.1/32").Result()
			if banned := err == nil; banned != tc.banned {
				t.Fatalf("banned = %v (%q, %v), want %v", banned, v, err, tc.banned)
			}
			if tc.banned {
				bv, err := parseBanValue(v)
				if err != nil || bv.Rev != tc.rev {
					t.Errorf("stored ban %q has rev %d (%v), want %d", v, bv.Rev, err, tc.rev)
				}
			}
		})
	}
}

// TestSameBanPushedAgainIsNotApplied: a node pushing back a ban it
// received, its revision shifted by a clock offset within the
// tolerance, changes nothing; a later ban does.
func TestSameBanPushedAgainIsNotApplied(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	rdb := r.Client(t)
	k := newKeys("tol")
	now := time.Now().UnixMicro()
	push := func(rev int64, node string) int {
		v := banValue{Until: now + 3600e6, Rev: rev, Count: 1, Node: node, Reason: "x"}.String()
		n, err := applyScript.Run(t.Context(), rdb, []string{k.bans, k.exp, k.unbans, k.unexp, k.stream},
			100, micros(time.Hour), micros(sameRev), "b", "198.51.100.9/32", rev, v).Int()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := push(now, "a"); n != 1 {
		t.Fatalf("first push applied %d, want 1", n)
	}
	if n := push(now+micros(sameRev)/2, "b"); n != 0 {
		t.Errorf("the same ban pushed back by b %s later applied %d, want 0", sameRev/2, n)
	}
	if n := push(now+2*micros(sameRev), "b"); n != 1 {
		t.Errorf("a ban %s later applied %d, want 1", 2*sameRev, n)
	}
	if n, err := rdb.XLen(t.Context(), k.stream).Result(); err != nil || n != 2 {
		t.Errorf("stream holds %d entries (%v), want 2", n, err)
	}
}

// TestSharedJail: offences spread over three nodes, one per node, ban
// the client on every node once they make maxretry within findtime.
func TestSharedJail(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	policy := rules.JailConfig{MaxRetry: 3, FindTime: time.Minute, BanTime: time.Hour, Increment: &rules.Increment{Factor: 2}}
	var nodes []*node
	var jails []*rules.Jails
	for _, name := range []string{"a", "b", "c"} {
		n := newNode(t, r, name, "", nil)
		j, err := rules.NewJails(rules.JailsConfig{Jails: map[string]rules.JailConfig{"probes": policy, "flood": policy},
			Shared: []string{"probes"}, Sharer: n.f}, n.bans, nil)
		if err != nil {
			t.Fatal(err)
		}
		n.f.history = func(b rules.Ban) { j.RestoreHistory(b) }
		n.run()
		nodes, jails = append(nodes, n), append(jails, j)
	}
	for _, n := range nodes {
		waitFor(t, propagate, n.name+" connected", n.f.Up)
	}
	client := netip.MustParseAddr("192.0.2.10")
	for i := range 2 {
		jails[i].Report("probes", client, "probe")
	}
	// The third offence on the third node bans everywhere.
	waitFor(t, propagate, "two offences counted", func() bool {
		return value(nodes[0].f.m.offences.WithLabelValues("shared"))+value(nodes[1].f.m.offences.WithLabelValues("shared")) == 2
	})
	for _, n := range nodes {
		if n.banned("192.0.2.10/32") {
			t.Fatalf("%s banned the client after 2 of 3 offences", n.name)
		}
	}
	jails[2].Report("probes", client, "probe")
	for _, n := range nodes {
		waitFor(t, propagate, "the shared ban on "+n.name, func() bool { return n.banned("192.0.2.10/32") })
		if b, _ := n.bans.Lookup(client); b.Jail != "probes" || b.Count != 1 {
			t.Errorf("%s: ban = %+v, want jail probes, count 1", n.name, b)
		}
	}

	// Not shared: flood offences spread the same way ban nobody.
	other := netip.MustParseAddr("192.0.2.11")
	for _, j := range jails {
		j.Report("flood", other, "flood")
	}
	// A fourth, shared, offence of another client is the marker that the
	// nodes had the time to act on the flood offences.
	for i, j := range jails {
		j.Report("probes", netip.MustParseAddr("192.0.2.12"), "probe")
		if i == 2 {
			break
		}
	}
	for _, n := range nodes {
		waitFor(t, propagate, "the marker ban on "+n.name, func() bool { return n.banned("192.0.2.12/32") })
		if n.banned("192.0.2.11/32") {
			t.Errorf("%s banned a client with one flood offence per node (flood is not shared)", n.name)
		}
	}
}

// TestSharedJailOneBanWhenNodesTipTogether: offences racing from two
// nodes past maxretry make one ban, one increment step.
func TestSharedJailOneBanWhenNodesTipTogether(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	policy := rules.JailConfig{MaxRetry: 2, FindTime: time.Minute, BanTime: time.Hour, Increment: &rules.Increment{Factor: 3}}
	var nodes []*node
	var jails []*rules.Jails
	for _, name := range []string{"a", "b"} {
		n := newNode(t, r, name, "", nil)
		j, err := rules.NewJails(rules.JailsConfig{Jails: map[string]rules.JailConfig{"probes": policy}, Shared: []string{"probes"}, Sharer: n.f}, n.bans, nil)
		if err != nil {
			t.Fatal(err)
		}
		n.run()
		waitFor(t, propagate, name+" connected", n.f.Up)
		nodes, jails = append(nodes, n), append(jails, j)
	}
	client := netip.MustParseAddr("192.0.2.20")
	var wg sync.WaitGroup
	for _, j := range jails {
		wg.Go(func() {
			for range 3 {
				j.Report("probes", client, "probe")
			}
		})
	}
	wg.Wait()
	for _, n := range nodes {
		waitFor(t, propagate, "the ban on "+n.name, func() bool { return n.banned("192.0.2.20/32") })
	}
	h, err := nodes[0].rdb.Get(t.Context(), newKeys(defaultPrefix).history("probes", "192.0.2.20/32")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if _, count, _ := strings.Cut(h, "|"); count != "1" {
		t.Errorf("history %q: count %s, want 1 (one ban, one increment step)", h, count)
	}
	n, err := nodes[0].rdb.XLen(t.Context(), newKeys(defaultPrefix).stream).Result()
	if err != nil || n != 1 {
		t.Errorf("change stream holds %d entries (%v), want 1 ban", n, err)
	}
}

func TestSharedJailFallsBackToLocalCounting(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	n := newNode(t, r, "a", "", nil)
	j, err := rules.NewJails(rules.JailsConfig{Jails: map[string]rules.JailConfig{"probes": {MaxRetry: 2, FindTime: time.Minute, BanTime: time.Hour}},
		Shared: []string{"probes"}, Sharer: n.f}, n.bans, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.run()
	waitFor(t, propagate, "connected", n.f.Up)
	r.Kill()
	waitFor(t, propagate, "redis seen down", func() bool { return !n.f.Up() })
	client := netip.MustParseAddr("192.0.2.30")
	j.Report("probes", client, "probe")
	j.Report("probes", client, "probe")
	if !n.banned("192.0.2.30/32") {
		t.Fatal("two offences with redis down did not ban locally")
	}
	if got := j.Offences("probes"); got != 2 {
		t.Errorf("Offences(probes) = %d, want 2", got)
	}
}

// TestOutageConverges: Redis dies, nodes ban and unban meanwhile, Redis
// comes back empty; every node ends with the same bans, the unbanned
// prefix stays unbanned and the outboxes are empty.
func TestOutageConverges(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	a := newNode(t, r, "a", "", nil)
	b := newNode(t, r, "b", "", nil)
	c := newNode(t, r, "c", "", nil)
	for _, n := range []*node{a, b, c} {
		n.run()
	}
	a.ban(t, "203.0.113.1/32", time.Hour)
	a.ban(t, "203.0.113.2/32", time.Hour)
	for _, n := range []*node{b, c} {
		waitFor(t, propagate, "the first bans on "+n.name, func() bool { return n.banned("203.0.113.1/32") && n.banned("203.0.113.2/32") })
	}
	waitFor(t, propagate, "a's outbox drained", func() bool { return a.outbox(t) == 0 })

	r.Kill()
	for _, n := range []*node{a, b, c} {
		waitFor(t, propagate, n.name+" sees redis down", func() bool { return !n.f.Up() })
	}
	b.ban(t, "203.0.113.3/32", time.Hour)
	c.ban(t, "2001:db8:3::/48", time.Hour)
	c.unban(t, "203.0.113.1/32")
	if a.outbox(t) != 0 || b.outbox(t) == 0 || c.outbox(t) == 0 {
		t.Fatalf("outboxes a=%d b=%d c=%d, want 0, >0, >0", a.outbox(t), b.outbox(t), c.outbox(t))
	}

	r.Restart()
	want := []string{"2001:db8:3::/48", "203.0.113.2/32", "203.0.113.3/32"}
	for _, n := range []*node{a, b, c} {
		waitFor(t, 3*propagate, n.name+" converged", func() bool { return slices.Equal(n.prefixes(), want) })
		waitFor(t, propagate, n.name+"'s outbox empty", func() bool { return n.outbox(t) == 0 })
	}
	// Whoever had a cursor of the old data set resynced for the epoch.
	var epochs float64
	for _, n := range []*node{a, b, c} {
		epochs += value(n.f.m.resyncs.WithLabelValues(reasonEpoch))
	}
	if epochs < 1 {
		t.Errorf("epoch resyncs = %v, want at least 1", epochs)
	}
	rdb := r.Client(t)
	if n, err := rdb.HLen(t.Context(), newKeys(defaultPrefix).bans).Result(); err != nil || n != 3 {
		t.Errorf("redis holds %d bans (%v), want 3", n, err)
	}
}

// TestLateNodesCatchUp: a node started late, and a node that fell
// behind the stream's cap, both end with exactly the live bans.
func TestLateNodesCatchUp(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	small := func(c *Config) { c.StreamMax = 10 }
	a := newNode(t, r, "a", "", small)
	behind := newNode(t, r, "behind", "", small)
	a.run()
	behind.run()
	a.ban(t, "198.51.100.1/32", time.Hour)
	waitFor(t, propagate, "the first ban on behind", func() bool { return behind.banned("198.51.100.1/32") })
	dir := behind.dir
	behind.stop()

	var want []string
	for i := range 300 {
		p := fmt.Sprintf("10.1.%d.%d/32", i/256, i%256)
		a.ban(t, p, time.Hour)
		want = append(want, p)
	}
	a.ban(t, "198.51.100.2/32", 50*time.Millisecond) // ends before the others look
	a.unban(t, "198.51.100.1/32")
	slices.Sort(want)
	waitFor(t, propagate, "a's outbox empty", func() bool { return a.outbox(t) == 0 })

	late := newNode(t, r, "late", "", small)
	late.run()
	behind = newNode(t, r, "behind", dir, small)
	behind.run()
	for _, n := range []*node{late, behind} {
		waitFor(t, propagate, n.name+" has exactly the live bans", func() bool { return slices.Equal(n.prefixes(), want) })
	}
	// At least: a session that fails half way (a slow machine's timeout)
	// resyncs again.
	if got := value(behind.f.m.resyncs.WithLabelValues(reasonTrimmed)); got < 1 {
		t.Errorf("behind's trimmed resyncs = %v, want 1", got)
	}
	if got := value(late.f.m.resyncs.WithLabelValues(reasonNoCursor)); got < 1 {
		t.Errorf("late's no-cursor resyncs = %v, want 1", got)
	}
}

// TestSkewedClock: a node whose clock is an hour fast makes a ban of ten
// minutes; the fleet stores it on Redis's clock and another node ends it
// ten minutes from now, not an hour earlier or later.
func TestSkewedClock(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	skew := time.Hour
	fast := func() time.Time { return time.Now().Add(skew) }
	a := newNode(t, r, "fast", "", nil)
	a.f.now = fast
	b := newNode(t, r, "b", "", nil)
	a.run()
	b.run()
	waitFor(t, propagate, "fast connected", a.f.Up)
	made := fast()
	if _, err := a.bans.Ban(rules.Ban{Prefix: netip.MustParsePrefix("192.0.2.40/32"), Created: made, Until: made.Add(10 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, propagate, "the ban on b", func() bool { return b.banned("192.0.2.40/32") })
	got, _ := b.bans.Lookup(netip.MustParseAddr("192.0.2.40"))
	if d := time.Until(got.Until); d < 9*time.Minute || d > 10*time.Minute {
		t.Errorf("b's ban ends in %s, want about 10m", d)
	}
}

func TestMetricsRegister(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	reg := prometheus.NewRegistry()
	n := newNode(t, r, "a", "", func(c *Config) { c.Registerer = reg })
	n.run()
	waitFor(t, propagate, "connected", n.f.Up)
	n.ban(t, "192.0.2.50/32", time.Hour)
	waitFor(t, propagate, "outbox drained", func() bool { return n.outbox(t) == 0 })
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	for _, want := range []string{"gatehouse_fleet_redis_up", "gatehouse_fleet_outbox_entries", "gatehouse_fleet_sync_lag_seconds", "gatehouse_fleet_pushed_total"} {
		if !slices.Contains(names, want) {
			t.Errorf("metrics %v lack %s", names, want)
		}
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	a := newNode(t, r, "a", "", nil)
	b := newNode(t, r, "b", "", nil)
	a.run()
	b.run()
	a.ban(t, "192.0.2.60/32", time.Hour)
	waitFor(t, propagate, "the ban on b", func() bool { return b.banned("192.0.2.60/32") })
	var st Status
	waitFor(t, propagate, "two nodes in the status", func() bool {
		var err error
		st, err = ReadStatus(context.Background(), r.Client(t), "")
		if err != nil {
			t.Fatal(err)
		}
		return len(st.Nodes) == 2
	})
	if st.Nodes[0].Node != "a" || st.Nodes[1].Node != "b" || st.Bans != 1 || st.Epoch == "" {
		t.Errorf("status = %+v, want nodes a and b, 1 ban, an epoch", st)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"nothing", Config{}, "no Redis client; no ban list; no ban store for the outbox; node name is empty"},
		{"node with bar", Config{Node: "a|b"}, `node name "a|b" holds '|'`},
		{"brace prefix", Config{Node: "a", Prefix: "g{h"}, `prefix "g{h" holds a brace`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New(%+v) = %v, want an error containing %q", tc.cfg, err, tc.wantErr)
			}
		})
	}
}

// value reads a counter or gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if c := d.GetCounter(); c != nil {
		return c.GetValue()
	}
	return d.GetGauge().GetValue()
}
