//go:build !race

// The race detector adds allocations of its own, so the zero-allocation
// claims of the jails and the ban list are pinned in this file only
// without -race.

package rules

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"
)

func TestBanLookupAllocs(t *testing.T) {
	l, clk := newTestBanList(BanListConfig{})
	for _, p := range []string{"192.0.2.1/32", "198.51.100.0/24", "2001:db8::/64", "2001:db8:1::/48", "2001:db8:2::1/128"} {
		mustBan(t, l, clk, p, "probes", time.Hour)
	}
	for _, a := range []string{"192.0.2.1", "192.0.2.2", "198.51.100.9", "::ffff:192.0.2.1", "2001:db8::1", "2001:db8:1:5::1", "2001:db8:3::1"} {
		addr := netip.MustParseAddr(a)
		if n := testing.AllocsPerRun(200, func() { l.Lookup(addr) }); n != 0 {
			t.Errorf("Lookup(%s) allocates %v times, want 0", a, n)
		}
	}
}

func TestReportAllocs(t *testing.T) {
	cfg := JailsConfig{
		Jails: map[string]JailConfig{
			"auth":   {MaxRetry: 1000},
			"probes": {MaxRetry: 5, FindTime: time.Second},
		},
		Allow: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
	}
	bans, clk := newTestBanList(BanListConfig{Allow: cfg.Allow})
	// An info-level handler: Report's debug check must not allocate either.
	j, err := NewJails(cfg, bans, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	j.now = clk.Now
	for _, a := range []string{"192.0.2.1", "2001:db8::1", "::ffff:192.0.2.7"} {
		addr := netip.MustParseAddr(a)
		j.Report("auth", addr, "bad credentials") // now a known client
		if n := testing.AllocsPerRun(200, func() { j.Report("auth", addr, "bad credentials") }); n != 0 {
			t.Errorf("Report(auth, %s) for a known client below maxretry allocates %v times, want 0", a, n)
		}
		// A full window that slides: the clock moves past findtime.
		j.Report("probes", addr, "probe")
		if n := testing.AllocsPerRun(200, func() {
			clk.Add(time.Second + 1)
			j.Report("probes", addr, "probe")
		}); n != 0 {
			t.Errorf("Report(probes, %s) with a sliding window allocates %v times, want 0", a, n)
		}
		if _, ok := bans.Lookup(addr); ok {
			t.Fatalf("%s banned: the test must stay below maxretry", a)
		}
	}
	// An escalating jail also counts each offence towards the client's
	// network: no allocation for a known network either, whether the
	// offender stays or rotates among known clients of it.
	esc, err := NewJails(JailsConfig{Jails: map[string]JailConfig{"probes": {MaxRetry: 1000, Escalate: &Escalate{}}}}, bans, nil)
	if err != nil {
		t.Fatal(err)
	}
	escAddr := netip.MustParseAddr("198.51.100.1")
	esc.Report("probes", escAddr, "probe")
	if n := testing.AllocsPerRun(200, func() { esc.Report("probes", escAddr, "probe") }); n != 0 {
		t.Errorf("Report to an escalating jail for a known client below maxretry allocates %v times, want 0", n)
	}
	for i := range 50 {
		esc.Report("probes", netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 7: byte(i), 15: 1}), "probe")
	}
	r := 0
	if n := testing.AllocsPerRun(200, func() {
		r++
		esc.Report("probes", netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 7: byte(r % 50), 15: byte(r)}), "probe")
	}); n != 0 {
		t.Errorf("Report to an escalating jail rotating among known /64s of a /48 allocates %v times, want 0", n)
	}
	if made, _ := esc.Escalations("probes"); made != 0 {
		t.Fatalf("%d escalations: the test must stay below after×maxretry", made)
	}
	allowed := netip.MustParseAddr("203.0.113.5")
	if n := testing.AllocsPerRun(200, func() { j.Report("probes", allowed, "probe") }); n != 0 {
		t.Errorf("Report for an allowed client allocates %v times, want 0", n)
	}
	j.Report("unknown", allowed, "probe")
	if n := testing.AllocsPerRun(200, func() { j.Report("unknown", allowed, "probe") }); n != 0 {
		t.Errorf("Report to an unknown jail allocates %v times, want 0", n)
	}
	d, err := NewDryRun(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr, at := netip.MustParseAddr("192.0.2.1"), clk.Now()
	d.ReportAt("auth", addr, "bad credentials", at)
	if n := testing.AllocsPerRun(200, func() { d.ReportAt("auth", addr, "bad credentials", at) }); n != 0 {
		t.Errorf("DryRun.ReportAt for a known client allocates %v times, want 0", n)
	}
}
