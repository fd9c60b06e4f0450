package rules

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// newTestJails returns jails deciding into a ban list, both on one fake
// clock.
func newTestJails(tb testing.TB, cfg JailsConfig) (*Jails, *BanList, *fakeClock) {
	tb.Helper()
	bans, clk := newTestBanList(BanListConfig{Allow: cfg.Allow})
	j, err := NewJails(cfg, bans, nil)
	if err != nil {
		tb.Fatalf("NewJails error %v", err)
	}
	j.now = clk.Now
	return j, bans, clk
}

// has reports whether client k is tracked, by its shard's index.
func (t *clientTable[S]) has(k clientKey) bool {
	h := t.hash(k)
	s := t.shard(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.index) == 0 {
		return false
	}
	m := uint64(len(s.index) - 1)
	for p := h & m; s.index[p] != 0; p = (p + 1) & m {
		if s.slots[s.index[p]-1].key == k {
			return true
		}
	}
	return false
}

// check verifies the table's invariants: every slot indexed exactly once
// and findable from its home position, no key twice, no shard over its
// share, no index more than half full.
func (t *clientTable[S]) check(tb testing.TB) {
	tb.Helper()
	for si := range t.shards {
		s := &t.shards[si]
		if len(s.slots) > s.max || len(s.lanes) != len(s.slots)*t.lanes || 2*len(s.slots) > len(s.index) {
			tb.Fatalf("shard %d: %d slots, %d lanes, index %d, max %d", si, len(s.slots), len(s.lanes), len(s.index), s.max)
		}
		seen := map[clientKey]bool{}
		n := 0
		for _, v := range s.index {
			if v != 0 {
				n++
			}
		}
		if n != len(s.slots) {
			tb.Fatalf("shard %d: %d index entries for %d slots", si, n, len(s.slots))
		}
		for i := range s.slots {
			k := s.slots[i].key
			if seen[k] {
				tb.Fatalf("shard %d: key %v in two slots", si, k)
			}
			seen[k] = true
			if &t.shards[t.hash(k)>>t.shift] != s {
				tb.Fatalf("key %v in shard %d, not its own", k, si)
			}
			m := uint64(len(s.index) - 1)
			p := t.hash(k) & m
			for s.index[p] != int32(i+1) {
				if s.index[p] == 0 {
					tb.Fatalf("shard %d: slot %d (key %v) not reachable from its home", si, i, k)
				}
				p = (p + 1) & m
			}
		}
	}
}

// TestClientTableChurn drives a small table through growth and many
// evictions (backward-shift deletion), checking its invariants and that
// state follows its client.
func TestClientTableChurn(t *testing.T) {
	t.Parallel()
	for _, capacity := range []int{1, 7, 100, 5000} {
		tab := newClientTable[uint64](capacity, 2)
		r := rand.New(rand.NewPCG(uint64(capacity), 3))
		for step := range 20000 {
			k := clientKey{0, uint64(r.IntN(3 * capacity))}
			if r.IntN(2) == 0 {
				k.hi = 1 // keys differing in either word
			}
			h := tab.hash(k)
			s := tab.shard(h)
			s.mu.Lock()
			i, fresh := tab.acquire(s, k, h)
			want := k.lo ^ k.hi<<32
			if !fresh && (s.slots[i].state != want || s.lanes[2*i] != int64(want)) {
				t.Fatalf("capacity %d step %d: client %v has state %d, lane %d; want %d", capacity, step, k, s.slots[i].state, s.lanes[2*i], want)
			}
			if fresh && (s.slots[i].state != 0 || s.lanes[2*i] != 0 || s.lanes[2*i+1] != 0) {
				t.Fatalf("capacity %d step %d: new client %v inherits state", capacity, step, k)
			}
			s.slots[i].state, s.lanes[2*i] = want, int64(want)
			s.mu.Unlock()
			if step%997 == 0 {
				tab.check(t)
			}
		}
		tab.check(t)
		if n := tab.len(); n > capacity+len(tab.shards)-1 {
			t.Errorf("capacity %d: %d clients tracked", capacity, n)
		}
	}
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func probesJail(c JailConfig) JailsConfig {
	return JailsConfig{Jails: map[string]JailConfig{"probes": c}}
}

func TestJailFindTime(t *testing.T) {
	t.Parallel()
	m := time.Minute
	tests := []struct {
		name    string
		at      []time.Duration // offence times
		wantBan int             // index of the offence that bans; -1: none
	}{
		{"three at once", []time.Duration{0, 0, 0}, 2},
		{"within findtime", []time.Duration{0, 4 * m, 9 * m}, 2},
		{"exactly findtime", []time.Duration{0, 5 * m, 10 * m}, 2},
		{"just beyond findtime", []time.Duration{0, 5 * m, 10*m + time.Second}, -1},
		{"spread beyond findtime", []time.Duration{0, 6 * m, 12 * m, 18 * m, 24 * m}, -1},
		{"window slides", []time.Duration{0, 9 * m, 11 * m, 12 * m}, 3},
		{"two, pause, two", []time.Duration{0, m, 30 * m, 31 * m}, -1},
		{"two, pause, three", []time.Duration{0, m, 30 * m, 31 * m, 32 * m}, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := probesJail(JailConfig{MaxRetry: 3, FindTime: 10 * m, BanTime: time.Hour})
			j, bans, clk := newTestJails(t, cfg)
			dry, err := NewDryRun(cfg)
			if err != nil {
				t.Fatal(err)
			}
			start := clk.Now()
			got, gotDry := -1, -1
			for i, d := range tc.at {
				clk.Add(start.Add(d).Sub(clk.Now()))
				j.Report("probes", ip("192.0.2.1"), "probe")
				if _, ok := bans.Lookup(ip("192.0.2.1")); ok && got < 0 {
					got = i
				}
				if _, ok, _, _ := dry.ReportAt("probes", ip("192.0.2.1"), "probe", start.Add(d)); ok && gotDry < 0 {
					gotDry = i
				}
			}
			if got != tc.wantBan {
				t.Errorf("Report at %v: banned at offence %d, want %d", tc.at, got, tc.wantBan)
			}
			if gotDry != tc.wantBan {
				t.Errorf("ReportAt at %v: banned at offence %d, want %d", tc.at, gotDry, tc.wantBan)
			}
		})
	}
}

func TestJailMaxRetry(t *testing.T) {
	t.Parallel()
	for _, maxRetry := range []int{1, 2, 3, 5, 20} {
		j, bans, _ := newTestJails(t, probesJail(JailConfig{MaxRetry: maxRetry}))
		for i := 1; i <= maxRetry; i++ {
			j.Report("probes", ip("192.0.2.1"), "probe")
			_, banned := bans.Lookup(ip("192.0.2.1"))
			if banned != (i == maxRetry) {
				t.Errorf("maxretry %d: after %d offences banned = %v, want %v", maxRetry, i, banned, i == maxRetry)
			}
		}
		if got := j.Offences("probes"); got != uint64(maxRetry) {
			t.Errorf("maxretry %d: Offences = %d, want %d", maxRetry, got, maxRetry)
		}
	}
	// Defaults: fail2ban's maxretry 5, bantime 10m.
	j, bans, clk := newTestJails(t, probesJail(JailConfig{}))
	for range 5 {
		j.Report("probes", ip("192.0.2.1"), "probe")
	}
	if b, ok := bans.Lookup(ip("192.0.2.1")); !ok || b.Until.Sub(clk.Now()) != 10*time.Minute {
		t.Errorf("default jail after 5 offences: Lookup = %v %v, want a 10m ban", b, ok)
	}
}

// offendUntilBanned reports maxRetry offences by addr and returns the ban.
func offendUntilBanned(t *testing.T, j *Jails, bans *BanList, addr string, maxRetry int) Ban {
	t.Helper()
	for range maxRetry {
		j.Report("probes", ip(addr), "probe")
	}
	b, ok := bans.Lookup(ip(addr))
	if !ok {
		t.Fatalf("%s not banned after %d offences", addr, maxRetry)
	}
	return b
}

func TestJailIncrement(t *testing.T) {
	t.Parallel()
	h, m := time.Hour, time.Minute
	tests := []struct {
		name string
		inc  *Increment
		want []time.Duration
	}{
		{"doubling capped", &Increment{Factor: 2, Max: 5 * h}, []time.Duration{h, 2 * h, 4 * h, 5 * h, 5 * h}},
		{"default factor 2, no cap", &Increment{}, []time.Duration{h, 2 * h, 4 * h, 8 * h, 16 * h, 32 * h}},
		{"factor 1.5", &Increment{Factor: 1.5, Max: 4 * h}, []time.Duration{h, 90 * m, 135 * m, 202*m + 30*time.Second, 4 * h}},
		{"factor 1 keeps bantime", &Increment{Factor: 1}, []time.Duration{h, h, h}},
		{"no increment", nil, []time.Duration{h, h, h}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			j, bans, clk := newTestJails(t, probesJail(JailConfig{MaxRetry: 2, BanTime: time.Hour, Increment: tc.inc}))
			for n, want := range tc.want {
				b := offendUntilBanned(t, j, bans, "192.0.2.1", 2)
				if got := b.Until.Sub(b.Created); got != want || b.Count != n+1 {
					t.Errorf("ban %d: lasts %v, count %d; want %v, count %d", n+1, got, b.Count, want, n+1)
				}
				clk.Add(b.Until.Sub(clk.Now()) + time.Minute)
			}
		})
	}
	// Without a cap, bans stop growing at 10 years instead of overflowing.
	j, bans, clk := newTestJails(t, probesJail(JailConfig{MaxRetry: 1, BanTime: time.Hour, Increment: &Increment{Factor: 1000}, Forget: 100 * 365 * 24 * time.Hour}))
	for range 6 {
		b := offendUntilBanned(t, j, bans, "192.0.2.1", 1)
		clk.Add(b.Until.Sub(clk.Now()) + time.Second)
	}
	if b := offendUntilBanned(t, j, bans, "192.0.2.1", 1); b.Until.Sub(b.Created) != maxBanTime {
		t.Errorf("7th ban with factor 1000 lasts %v, want the 10-year cap", b.Until.Sub(b.Created))
	}
}

func TestJailForget(t *testing.T) {
	t.Parallel()
	j, bans, clk := newTestJails(t, probesJail(JailConfig{
		MaxRetry: 1, BanTime: time.Hour, Forget: 24 * time.Hour, Increment: &Increment{Factor: 2, Max: 48 * time.Hour},
	}))
	steps := []struct {
		wait      time.Duration // after the previous ban ends
		wantCount int
		want      time.Duration
	}{
		{0, 1, time.Hour},
		{23 * time.Hour, 2, 2 * time.Hour}, // within forget: grows
		{24 * time.Hour, 3, 4 * time.Hour}, // exactly forget: still remembered
		{24*time.Hour + time.Second, 1, time.Hour},
		{time.Minute, 2, 2 * time.Hour},
	}
	var last Ban
	for i, s := range steps {
		if i > 0 {
			clk.Add(last.Until.Sub(clk.Now()) + s.wait)
		}
		last = offendUntilBanned(t, j, bans, "192.0.2.1", 1)
		if last.Count != s.wantCount || last.Until.Sub(last.Created) != s.want {
			t.Errorf("step %d (wait %v): ban count %d lasting %v, want count %d lasting %v",
				i, s.wait, last.Count, last.Until.Sub(last.Created), s.wantCount, s.want)
		}
	}
}

func TestJailAllow(t *testing.T) {
	t.Parallel()
	j, bans, _ := newTestJails(t, JailsConfig{
		Jails: map[string]JailConfig{"probes": {MaxRetry: 2}},
		Allow: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::1/128")},
	})
	for _, a := range []string{"203.0.113.5", "::ffff:203.0.113.6", "2001:db8::1"} {
		for range 10 {
			j.Report("probes", ip(a), "probe")
		}
		if b, ok := bans.Lookup(ip(a)); ok {
			t.Errorf("allowed %s banned: %v", a, b)
		}
	}
	if got := j.Offences("probes"); got != 30 {
		t.Errorf("Offences = %d, want 30 (allowed clients' offences are received, not counted)", got)
	}
	if n := j.jails["probes"].clients.len(); n != 0 {
		t.Errorf("clients tracked after allowed offences = %d, want 0", n)
	}
	// Beside the allowed /128, in its /64: the ban narrows to the offender.
	b := offendUntilBanned(t, j, bans, "2001:db8::2", 2)
	if b.Prefix.String() != "2001:db8::2/128" {
		t.Errorf("ban of a /64 holding an allowed address = %s, want 2001:db8::2/128", b.Prefix)
	}
	if _, ok := bans.Lookup(ip("2001:db8::1")); ok {
		t.Errorf("allowed 2001:db8::1 banned through its /64")
	}
	// Manual bans of allowed addresses are refused by the ban list.
	if _, err := bans.Ban(Ban{Prefix: netip.MustParsePrefix("203.0.113.0/25"), Until: time.Now().Add(time.Hour)}); err == nil {
		t.Errorf("manual ban of an allowed prefix succeeded")
	}
}

func TestJailIPv6Prefix(t *testing.T) {
	t.Parallel()
	j, bans, _ := newTestJails(t, probesJail(JailConfig{MaxRetry: 3}))
	j.Report("probes", ip("2001:db8:1:2::a"), "probe")
	j.Report("probes", ip("2001:db8:1:3::a"), "probe") // another /64
	j.Report("probes", ip("2001:db8:1:2:ffff::b"), "probe")
	if _, ok := bans.Lookup(ip("2001:db8:1:2::a")); ok {
		t.Fatalf("banned after two offences in its /64")
	}
	j.Report("probes", ip("2001:db8:1:2::c"), "probe")
	for a, want := range map[string]bool{
		"2001:db8:1:2::a": true, "2001:db8:1:2:1:2:3:4": true, "2001:db8:1:3::a": false,
	} {
		if b, ok := bans.Lookup(ip(a)); ok != want || ok && b.Prefix.String() != "2001:db8:1:2::/64" {
			t.Errorf("Lookup(%s) = %v %v, want banned %v by 2001:db8:1:2::/64", a, b.Prefix, ok, want)
		}
	}

	// IPv6Prefix 128: each address is a client.
	j, bans, _ = newTestJails(t, JailsConfig{Jails: map[string]JailConfig{"probes": {MaxRetry: 2}}, IPv6Prefix: 128})
	j.Report("probes", ip("2001:db8::a"), "probe")
	j.Report("probes", ip("2001:db8::b"), "probe")
	if _, ok := bans.Lookup(ip("2001:db8::a")); ok {
		t.Errorf("IPv6Prefix 128: two addresses of one /64 share a counter")
	}
	if b := offendUntilBanned(t, j, bans, "2001:db8::a", 1); b.Prefix.String() != "2001:db8::a/128" {
		t.Errorf("IPv6Prefix 128: ban = %s, want 2001:db8::a/128", b.Prefix)
	}
}

func TestJailIPv4MappedFolded(t *testing.T) {
	t.Parallel()
	j, bans, _ := newTestJails(t, probesJail(JailConfig{MaxRetry: 2}))
	j.Report("probes", ip("::ffff:198.51.100.7"), "probe")
	j.Report("probes", ip("198.51.100.7"), "probe")
	b, ok := bans.Lookup(ip("198.51.100.7"))
	if !ok || b.Prefix.String() != "198.51.100.7/32" {
		t.Errorf("after one mapped and one plain offence: Lookup = %v %v, want 198.51.100.7/32", b.Prefix, ok)
	}
}

func TestJailCapacity(t *testing.T) {
	t.Parallel()
	const capacity = 1000
	cfg := JailsConfig{Jails: map[string]JailConfig{"probes": {MaxRetry: 3}}, Capacity: capacity}
	flood := func(j *Jails, n, from int) {
		for i := range n {
			k := from + i
			j.Report("probes", netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)}), "probe")
		}
	}

	// Control: without a flood, the victim's third offence bans.
	j, bans, _ := newTestJails(t, cfg)
	j.Report("probes", ip("192.0.2.1"), "probe")
	j.Report("probes", ip("192.0.2.1"), "probe")
	flood(j, capacity/2, 0)
	j.Report("probes", ip("192.0.2.1"), "probe")
	if _, ok := bans.Lookup(ip("192.0.2.1")); !ok {
		t.Fatalf("victim not banned after 3 offences and a half-capacity flood")
	}

	// A flood of 10× capacity distinct clients: memory stays bounded and
	// the oldest client is evicted with its offences.
	j, bans, _ = newTestJails(t, cfg)
	j.Report("probes", ip("192.0.2.1"), "probe")
	flood(j, 10*capacity, 0)
	tab := j.jails["probes"].clients
	if n := tab.len(); n != capacity {
		t.Errorf("clients tracked after a flood = %d, want %d", n, capacity)
	}
	for i := range tab.shards {
		s := &tab.shards[i]
		if cap(s.slots) > s.max || len(s.index) > 4*s.max {
			t.Errorf("shard %d: slots cap %d, index %d for max %d: grew beyond capacity", i, cap(s.slots), len(s.index), s.max)
		}
	}
	if tab.has(j.key(ip("192.0.2.1"))) {
		t.Errorf("oldest client still tracked after a 10× capacity flood")
	}
	j.Report("probes", ip("192.0.2.1"), "probe")
	j.Report("probes", ip("192.0.2.1"), "probe")
	if _, ok := bans.Lookup(ip("192.0.2.1")); ok {
		t.Errorf("evicted client banned: its first offence was remembered")
	}
	// The newest clients are the ones kept.
	for k := 10*capacity - 10; k < 10*capacity; k++ {
		if a := netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)}); !tab.has(j.key(a)) {
			t.Errorf("recent client %s evicted", a)
		}
	}

	// CLOCK's second chance: a client seen again outlives one-time clients.
	j, _, _ = newTestJails(t, cfg)
	tab = j.jails["probes"].clients
	j.Report("probes", ip("192.0.2.2"), "probe")
	flood(j, capacity-1, 0)
	j.Report("probes", ip("192.0.2.2"), "probe") // referenced again
	flood(j, capacity/2, capacity)
	if !tab.has(j.key(ip("192.0.2.2"))) {
		t.Errorf("client seen twice evicted by a half-capacity flood of one-time clients")
	}
	if a := netip.AddrFrom4([4]byte{10, 0, 0, 0}); tab.has(j.key(a)) {
		t.Errorf("oldest one-time client %s still tracked", a)
	}

	// The default capacity is sharded; its bound holds too.
	j, _, _ = newTestJails(t, JailsConfig{Jails: map[string]JailConfig{"probes": {}}, Capacity: 20000})
	flood(j, 60000, 0)
	tab = j.jails["probes"].clients
	if n, limit := tab.len(), 20000+len(tab.shards)-1; len(tab.shards) < 2 || n > limit || n < 20000-len(tab.shards) {
		t.Errorf("sharded table (%d shards) tracks %d clients after a 3× flood, want about 20000, at most %d", len(tab.shards), n, limit)
	}
}

func TestJailBannedClientNotCounted(t *testing.T) {
	t.Parallel()
	j, bans, clk := newTestJails(t, probesJail(JailConfig{MaxRetry: 2, BanTime: time.Hour}))
	first := offendUntilBanned(t, j, bans, "192.0.2.1", 2)
	// Offences while banned (had they passed the guard) do not count, so
	// the ban is not renewed when it ends.
	j.Report("probes", ip("192.0.2.1"), "probe")
	j.Report("probes", ip("192.0.2.1"), "probe")
	if b, _ := bans.Lookup(ip("192.0.2.1")); b != first {
		t.Errorf("ban changed by offences while banned: %v, want %v", b, first)
	}
	clk.Add(time.Hour)
	j.Report("probes", ip("192.0.2.1"), "probe")
	if _, ok := bans.Lookup(ip("192.0.2.1")); ok {
		t.Errorf("banned again by the first offence after the ban: offences while banned were counted")
	}
	// Offence counts restart after a ban.
	j.Report("probes", ip("192.0.2.1"), "probe")
	if b, ok := bans.Lookup(ip("192.0.2.1")); !ok || b.Count != 2 {
		t.Errorf("second ban = %v %v, want count 2", b, ok)
	}
	// An operator lifts the ban early: the client is counted again.
	bans.Unban(netip.MustParsePrefix("192.0.2.1/32"))
	if b := offendUntilBanned(t, j, bans, "192.0.2.1", 2); b.Count != 3 {
		t.Errorf("ban after an early unban = %v, want count 3", b)
	}
	if got := j.Offences("probes"); got != 8 {
		t.Errorf("Offences = %d, want 8 (every report)", got)
	}
}

func TestJailUnknownName(t *testing.T) {
	t.Parallel()
	j, bans, _ := newTestJails(t, probesJail(JailConfig{MaxRetry: 1}))
	for range 3 {
		j.Report("nope", ip("192.0.2.1"), "probe")
	}
	if got := j.Offences("nope"); got != 3 {
		t.Errorf(`Offences("nope") = %d, want 3`, got)
	}
	if got := j.Offences("never"); got != 0 {
		t.Errorf(`Offences("never") = %d, want 0`, got)
	}
	if b, ok := bans.Lookup(ip("192.0.2.1")); ok {
		t.Errorf("unknown jail banned: %v", b)
	}
	// No jails at all, no ban list: what the middleware tests use.
	j, err := NewJails(JailsConfig{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	j.Report(JailAuth, ip("192.0.2.1"), "bad credentials")
	j.Report(JailAuth, netip.Addr{}, "bad credentials")
	if got := j.Offences(JailAuth); got != 2 {
		t.Errorf("Offences(auth) = %d, want 2", got)
	}
}

func TestJailNoBanList(t *testing.T) {
	t.Parallel()
	j, err := NewJails(probesJail(JailConfig{MaxRetry: 1, BanTime: time.Hour}), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	j.now = clk.Now
	j.Report("probes", ip("192.0.2.1"), "probe") // decided, logged, not enforced
	j.Report("probes", ip("192.0.2.1"), "probe") // serving the decided ban: not counted
	b, ok, _, _ := j.report("probes", ip("192.0.2.1"), "probe", clk.Now().Add(time.Hour))
	if !ok || b.Count != 2 {
		t.Errorf("after the unenforced ban ends: report = %v %v, want a second ban", b, ok)
	}
}

func TestNewJailsErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     JailsConfig
		wantErr string
	}{
		{"maxretry negative", probesJail(JailConfig{MaxRetry: -1}), `jail "probes": maxretry -1 is not between 1 and 1000`},
		{"maxretry huge", probesJail(JailConfig{MaxRetry: 5000}), "maxretry 5000 is not between"},
		{"findtime negative", probesJail(JailConfig{FindTime: -time.Second}), "findtime -1s is negative"},
		{"bantime negative", probesJail(JailConfig{BanTime: -time.Second}), "bantime -1s is negative"},
		{"bantime huge", probesJail(JailConfig{BanTime: 20 * 365 * 24 * time.Hour}), "bantime 175200h0m0s is over"},
		{"forget negative", probesJail(JailConfig{Forget: -time.Second}), "forget -1s is negative"},
		{"factor below 1", probesJail(JailConfig{Increment: &Increment{Factor: 0.5}}), "increment factor 0.5 is not a number of at least 1"},
		{"max below bantime", probesJail(JailConfig{BanTime: time.Hour, Increment: &Increment{Max: time.Minute}}), "increment max 1m0s is less than bantime 1h0m0s"},
		{"max negative", probesJail(JailConfig{Increment: &Increment{Max: -time.Minute}}), "increment max -1m0s is negative"},
		{"empty name", JailsConfig{Jails: map[string]JailConfig{"": {}}}, "empty name"},
		{"ipv6 prefix small", JailsConfig{IPv6Prefix: 16}, "ipv6_prefix: 16 is not between 32 and 128"},
		{"ipv6 prefix big", JailsConfig{IPv6Prefix: 129}, "ipv6_prefix: 129"},
		{"capacity negative", JailsConfig{Capacity: -1}, "capacity: -1 is negative"},
		{"invalid allow", JailsConfig{Allow: []netip.Prefix{{}}}, "allow[0]: invalid Prefix is not a valid prefix"},
		{"every problem", JailsConfig{IPv6Prefix: 1, Jails: map[string]JailConfig{"a": {MaxRetry: -1}, "b": {FindTime: -1, BanTime: -1}}}, `ipv6_prefix: 1 is not between 32 and 128
jail "a": maxretry -1 is not between 1 and 1000
jail "b": findtime -1ns is negative; bantime -1ns is negative`},
	}
	for _, tc := range tests {
		j, err := NewJails(tc.cfg, nil, nil)
		if len(tc.cfg.Jails) == 1 && err != nil {
			// proxy/config names the field and unwraps the bare problem.
			if u := errors.Unwrap(err); u == nil || strings.HasPrefix(u.Error(), "jail ") {
				t.Errorf("%s: errors.Unwrap(%v) = %v, want the problem without the jail's name", tc.name, err, u)
			}
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: NewJails error %v, want %q", tc.name, err, tc.wantErr)
		}
		if j != nil {
			t.Errorf("%s: NewJails returned jails with an error", tc.name)
		}
		if _, err := NewDryRun(tc.cfg); err == nil {
			t.Errorf("%s: NewDryRun accepted what NewJails refuses", tc.name)
		}
	}
}

func TestDryRun(t *testing.T) {
	t.Parallel()
	d, err := NewDryRun(JailsConfig{
		Jails: map[string]JailConfig{"probes": {MaxRetry: 2, FindTime: time.Minute, BanTime: time.Hour, Increment: &Increment{}}},
		Allow: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Log time, days in the past: the replay's clock, not the wall's.
	t0 := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	type step struct {
		at   time.Duration
		ip   string
		want string // "" or the ban: prefix count duration
	}
	steps := []step{
		{0, "192.0.2.1", ""},
		{30 * time.Second, "192.0.2.1", "192.0.2.1/32 1 1h0m0s"},
		{31 * time.Second, "192.0.2.1", ""}, // serving its ban: not counted
		{time.Hour + 30*time.Second, "192.0.2.1", ""},
		{time.Hour + 40*time.Second, "192.0.2.1", "192.0.2.1/32 2 2h0m0s"},
		{0, "203.0.113.9", ""},
		{0, "203.0.113.9", ""},
		{0, "2001:db8::1", ""},
		{0, "2001:db8::2", "2001:db8::/64 1 1h0m0s"},
	}
	for i, s := range steps {
		b, ok, _, _ := d.ReportAt("probes", ip(s.ip), "probe", t0.Add(s.at))
		got := ""
		if ok {
			got = fmt.Sprintf("%s %d %s", b.Prefix, b.Count, b.Until.Sub(b.Created))
			if !b.Created.Equal(t0.Add(s.at)) || b.Jail != "probes" || b.Reason != "probe" {
				t.Errorf("step %d: ban %+v: want created at the report's time, jail probes, reason probe", i, b)
			}
		}
		if got != s.want {
			t.Errorf("step %d: ReportAt(%s, +%v) = %q, want %q", i, s.ip, s.at, got, s.want)
		}
	}
	if got := d.Offences("probes"); got != uint64(len(steps)) {
		t.Errorf("Offences = %d, want %d", got, len(steps))
	}
}

func TestRestoreHistory(t *testing.T) {
	t.Parallel()
	j, bans, clk := newTestJails(t, JailsConfig{
		Jails: map[string]JailConfig{"probes": {MaxRetry: 1, BanTime: time.Hour, Increment: &Increment{Max: 24 * time.Hour}, Forget: 24 * time.Hour}},
		Allow: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
	})
	now := clk.Now()
	for _, tc := range []struct {
		b    Ban
		want bool
	}{
		{Ban{Jail: "probes", Prefix: netip.MustParsePrefix("192.0.2.1/32"), Count: 2, Until: now.Add(-time.Hour)}, true},
		{Ban{Jail: "probes", Prefix: netip.MustParsePrefix("2001:db8::/64"), Count: 1, Until: now.Add(time.Hour)}, true},
		{Ban{Jail: "other", Prefix: netip.MustParsePrefix("192.0.2.2/32"), Count: 1, Until: now}, false},
		{Ban{Jail: "probes", Prefix: netip.MustParsePrefix("192.0.2.0/24"), Count: 1, Until: now}, false},
		{Ban{Jail: "probes", Prefix: netip.MustParsePrefix("203.0.113.1/32"), Count: 1, Until: now}, false},
		{Ban{Jail: "probes", Prefix: netip.MustParsePrefix("192.0.2.3/32"), Until: now}, false},
	} {
		if got := j.RestoreHistory(tc.b); got != tc.want {
			t.Errorf("RestoreHistory(%+v) = %v, want %v", tc.b, got, tc.want)
		}
	}
	// The third ban of 192.0.2.1: 4h.
	if b := offendUntilBanned(t, j, bans, "192.0.2.1", 1); b.Count != 3 || b.Until.Sub(b.Created) != 4*time.Hour {
		t.Errorf("ban after restored history = count %d, %v; want count 3, 4h", b.Count, b.Until.Sub(b.Created))
	}
	// A restored ban still running (enforced by the restored ban list, here
	// not) keeps its client from being counted only while the list bans it.
	if _, err := bans.Ban(Ban{Jail: "probes", Prefix: netip.MustParsePrefix("2001:db8::/64"), Count: 1, Until: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	j.Report("probes", ip("2001:db8::5"), "probe")
	if b, _ := bans.Lookup(ip("2001:db8::5")); b.Count != 1 {
		t.Errorf("client serving a restored ban was counted: %+v", b)
	}
}

// TestJailsConcurrent reports from many goroutines while others look
// up; run with -race. Each client gets exactly maxretry offences, all at
// one instant, so each is banned exactly once.
func TestJailsConcurrent(t *testing.T) {
	t.Parallel()
	const clients, maxRetry, workers = 300, 4, 4
	j, bans, _ := newTestJails(t, JailsConfig{Jails: map[string]JailConfig{"probes": {MaxRetry: maxRetry}}, Capacity: 10 * clients})
	sub := bans.Subscribe(2 * clients)
	defer sub.Close()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range clients * maxRetry / workers {
				c := (i*workers + w) % clients
				a := netip.AddrFrom4([4]byte{192, 0, byte(c >> 8), byte(c)})
				j.Report("probes", a, "probe")
				bans.Lookup(a)
			}
		})
	}
	wg.Wait()
	if got := len(bans.List()); got != clients {
		t.Errorf("bans = %d, want %d", got, clients)
	}
	if got := len(sub.C); got != clients {
		t.Errorf("changes = %d, want %d (one ban per client)", got, clients)
	}
	if got := j.Offences("probes"); got != clients*maxRetry {
		t.Errorf("Offences = %d, want %d", got, clients*maxRetry)
	}
}

// TestJailsInherit: a reload that changes a jail's settings
// keeps its clients' offences (re-judged under the new maxretry and
// findtime) and ban history, instead of starting every count again.
func TestJailsInherit(t *testing.T) {
	t.Parallel()
	a := netip.MustParseAddr("198.51.100.1")
	b := netip.MustParseAddr("2001:db8::1")
	allowed := netip.MustParseAddr("192.0.2.9")
	tests := []struct {
		name     string
		next     JailConfig
		v6bits   int
		allow    []netip.Prefix
		more     int  // offences after the reload
		banA     bool // a banned after them
		banB     bool
		offences uint64 // the jail's total after them
	}{
		{name: "same maxretry: the count goes on", next: JailConfig{MaxRetry: 5, FindTime: time.Hour, BanTime: time.Hour},
			more: 2, banA: true, banB: true, offences: 3*3 + 2*3},
		{name: "lower maxretry keeps the newest offences", next: JailConfig{MaxRetry: 3, FindTime: time.Hour, BanTime: time.Hour},
			more: 1, banA: true, banB: true, offences: 3*3 + 1*3},
		{name: "higher maxretry needs more", next: JailConfig{MaxRetry: 7, FindTime: time.Hour, BanTime: time.Hour},
			more: 3, banA: false, banB: false, offences: 3*3 + 3*3},
		{name: "shorter findtime judges the old offences anew", next: JailConfig{MaxRetry: 5, FindTime: time.Minute, BanTime: time.Hour},
			more: 2, banA: false, banB: false, offences: 3*3 + 2*3},
		{name: "new ipv6_prefix drops IPv6 clients", next: JailConfig{MaxRetry: 5, FindTime: time.Hour, BanTime: time.Hour},
			v6bits: 56, more: 2, banA: true, banB: false, offences: 3*3 + 2*3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			prev, _, clk := newTestJails(t, JailsConfig{Jails: map[string]JailConfig{"probes": {MaxRetry: 5, FindTime: time.Hour, BanTime: time.Hour}}})
			for range 3 {
				for _, ip := range []netip.Addr{a, b, allowed} {
					prev.Report("probes", ip, "probe")
				}
				clk.Add(10 * time.Minute)
			}
			next, bans, _ := newTestJails(t, JailsConfig{Jails: map[string]JailConfig{"probes": tc.next}, IPv6Prefix: tc.v6bits,
				Allow: []netip.Prefix{netip.PrefixFrom(allowed, 32)}})
			next.now = clk.Now
			next.HandOver(prev)
			if next.jails["probes"].clients.has(next.key(allowed)) {
				t.Error("an address now in allow was carried over")
			}
			for range tc.more {
				for _, ip := range []netip.Addr{a, b, allowed} {
					next.Report("probes", ip, "probe")
				}
			}
			if got := bans.banned(a); got != tc.banA {
				t.Errorf("%v banned = %v, want %v", a, got, tc.banA)
			}
			if got := bans.banned(b); got != tc.banB {
				t.Errorf("%v banned = %v, want %v", b, got, tc.banB)
			}
			if bans.banned(allowed) {
				t.Errorf("%v banned, but it is in allow", allowed)
			}
			if got := next.Offences("probes"); got != tc.offences {
				t.Errorf("Offences = %d, want %d", got, tc.offences)
			}
			next.jails["probes"].clients.check(t)
		})
	}
}

// TestJailsHandOverForwards: after a hand-over, offences reported to the
// old jails (by requests still in flight on the old chain) are counted by
// the new ones, together with what the old ones had counted.
func TestJailsHandOverForwards(t *testing.T) {
	t.Parallel()
	cfg := JailsConfig{Jails: map[string]JailConfig{"probes": {MaxRetry: 3, FindTime: time.Hour, BanTime: time.Hour}}}
	prev, _, clk := newTestJails(t, cfg)
	next, bans, _ := newTestJails(t, cfg)
	next.now = clk.Now
	a := netip.MustParseAddr("198.51.100.9")
	prev.Report("probes", a, "probe")
	next.HandOver(prev)
	clk.Add(time.Minute)
	prev.Report("probes", a, "probe")
	if bans.banned(a) {
		t.Fatal("banned after two offences, want three")
	}
	clk.Add(time.Minute)
	prev.Report("probes", a, "probe")
	if !bans.banned(a) {
		t.Error("not banned after three offences across the hand-over, the last two reported to the old jails")
	}
	if got := next.Offences("probes"); got != 3 {
		t.Errorf("new jails' Offences = %d, want 3", got)
	}
	next.HandOver(next) // no-op, no loop
	next.Report("probes", netip.MustParseAddr("198.51.100.10"), "probe")
}

// TestJailsTracked: Tracked counts the distinct clients a jail holds (an
// IPv6 client by its prefix), bounded by the capacity, and 0 for a jail
// that is not configured.
func TestJailsTracked(t *testing.T) {
	t.Parallel()
	j, err := NewJails(JailsConfig{Jails: map[string]JailConfig{"probes": {MaxRetry: 1000}}, Capacity: 1000}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	j.Report("probes", netip.MustParseAddr("203.0.113.1"), "probe")
	j.Report("probes", netip.MustParseAddr("203.0.113.1"), "probe")
	j.Report("probes", netip.MustParseAddr("2001:db8::1"), "probe")
	j.Report("probes", netip.MustParseAddr("2001:db8::2"), "probe") // same /64
	if got := j.Tracked("probes"); got != 2 {
		t.Errorf("Tracked(probes) = %d, want 2", got)
	}
	for i := range 3000 {
		j.Report("probes", netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), "probe")
	}
	if got := j.Tracked("probes"); got > 1024 || got < 1000 {
		t.Errorf("Tracked(probes) after 3000 clients = %d, want the capacity (1000, rounded up to a shard of 1024)", got)
	}
	if got := j.Tracked("nope"); got != 0 {
		t.Errorf("Tracked(nope) = %d, want 0", got)
	}
}
