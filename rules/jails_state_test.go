package rules

import (
	"net/netip"
	"testing"
	"time"
)

// TestJailsStateRestart: offences counted before a restart (AppendState,
// then RestoreState into new jails) keep counting after it, under the
// same rules as a reload's hand-over.
func TestJailsStateRestart(t *testing.T) {
	t.Parallel()
	a := netip.MustParseAddr("198.51.100.1")
	b := netip.MustParseAddr("2001:db8::1")
	allowed := netip.MustParseAddr("192.0.2.9")
	old := netip.MustParseAddr("198.51.100.2")
	cfg := JailsConfig{Jails: map[string]JailConfig{"sshd": {MaxRetry: 5, FindTime: time.Hour, BanTime: time.Hour}}}
	tests := []struct {
		name       string
		next       JailsConfig
		banA, banB bool
	}{
		{name: "same jails: the count goes on", next: cfg, banA: true, banB: true},
		{name: "a new ipv6_prefix drops IPv6 clients", next: JailsConfig{Jails: cfg.Jails, IPv6Prefix: 56}, banA: true},
		{name: "a jail no longer configured is dropped", next: JailsConfig{Jails: map[string]JailConfig{"other": {MaxRetry: 5}}}},
		{name: "higher maxretry needs more", next: JailsConfig{Jails: map[string]JailConfig{"sshd": {MaxRetry: 6, FindTime: time.Hour, BanTime: time.Hour}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			prev, _, clk := newTestJails(t, cfg)
			prev.Report("sshd", old, "x") // falls out of findtime before the save
			clk.Add(2 * time.Hour)
			for range 3 {
				for _, ip := range []netip.Addr{a, b, allowed} {
					prev.Report("sshd", ip, "x")
				}
				clk.Add(time.Minute)
			}
			state := prev.AppendState([]byte("prefix"), clk.Now())

			tc.next.Allow = []netip.Prefix{netip.PrefixFrom(allowed, 32)}
			next, bans, _ := newTestJails(t, tc.next)
			next.now = clk.Now
			if _, err := next.RestoreState(state[len("prefix"):]); err != nil {
				t.Fatalf("RestoreState: %v", err)
			}
			if jl := next.jails["sshd"]; jl != nil {
				if jl.clients.has(next.key(allowed)) {
					t.Error("an address in allow was restored")
				}
				if jl.clients.has(next.key(old)) {
					t.Error("offences outside findtime were saved")
				}
				jl.clients.check(t)
			}
			for range 2 {
				for _, ip := range []netip.Addr{a, b, allowed} {
					next.Report("sshd", ip, "x")
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
		})
	}
}

// TestJailsStateHistory: a client's ban history survives, so its next
// ban is longer (increment), and its ban is not counted again while it
// lasts.
func TestJailsStateHistory(t *testing.T) {
	t.Parallel()
	cfg := JailsConfig{Jails: map[string]JailConfig{"sshd": {MaxRetry: 2, FindTime: time.Hour, BanTime: time.Minute, Increment: &Increment{}}}}
	prev, _, clk := newTestJails(t, cfg)
	ip := netip.MustParseAddr("203.0.113.5")
	prev.Report("sshd", ip, "x")
	prev.Report("sshd", ip, "x")
	clk.Add(2 * time.Minute)
	state := prev.AppendState(nil, clk.Now())
	next, bans, _ := newTestJails(t, cfg)
	next.now = clk.Now
	if n, err := next.RestoreState(state); err != nil || n != 1 {
		t.Fatalf("RestoreState = %d, %v; want 1 client", n, err)
	}
	next.Report("sshd", ip, "x")
	next.Report("sshd", ip, "x")
	b, ok := bans.Lookup(ip)
	if !ok || b.Count != 2 || b.Until.Sub(b.Created) != 2*time.Minute {
		t.Fatalf("second ban = %+v, %v; want count 2 lasting 2m", b, ok)
	}
}

// TestJailsStateCorrupt: every truncation of a valid state is an error
// that leaves the jails as they were, never a panic nor some clients.
func TestJailsStateCorrupt(t *testing.T) {
	t.Parallel()
	cfg := JailsConfig{Jails: map[string]JailConfig{"sshd": {MaxRetry: 5}, "probes": {MaxRetry: 3}}}
	prev, _, clk := newTestJails(t, cfg)
	for i := range 20 {
		prev.Report("sshd", netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), "x")
		prev.Report("probes", netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), "x")
	}
	state := prev.AppendState(nil, clk.Now())
	for n := range len(state) {
		next, _, _ := newTestJails(t, cfg)
		got, err := next.RestoreState(state[:n])
		if err == nil || got != 0 || next.Tracked("sshd")+next.Tracked("probes") != 0 {
			t.Fatalf("RestoreState(%d of %d bytes) = %d, %v, %d clients tracked; want an error and none", n, len(state), got, err, next.Tracked("sshd")+next.Tracked("probes"))
		}
	}
	next, _, _ := newTestJails(t, cfg)
	if got, err := next.RestoreState(state); err != nil || got != 40 {
		t.Fatalf("RestoreState(all) = %d, %v; want 40", got, err)
	}
}

func FuzzJailsRestoreState(f *testing.F) {
	cfg := JailsConfig{Jails: map[string]JailConfig{"sshd": {MaxRetry: 3}}}
	j, err := NewJails(cfg, nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	j.Report("sshd", netip.MustParseAddr("198.51.100.1"), "x")
	j.Report("sshd", netip.MustParseAddr("2001:db8::1"), "x")
	f.Add(j.AppendState(nil, time.Now()))
	f.Add([]byte(stateMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := NewJails(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = j.RestoreState(data)
		j.jails["sshd"].clients.check(t)
	})
}

// BenchmarkJailsAppendState: the checkpoint's cost for a jail holding
// 100,000 clients with 4 offences each.
func BenchmarkJailsAppendState(b *testing.B) {
	j, _, clk := newTestJails(b, JailsConfig{Jails: map[string]JailConfig{"probes": {MaxRetry: 5, FindTime: time.Hour}}, Capacity: 200_000})
	for i := range 100_000 {
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		for range 4 {
			j.Report("probes", ip, "x")
		}
	}
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = j.AppendState(buf[:0], clk.Now())
	}
	b.ReportMetric(float64(len(buf)), "bytes")
}
