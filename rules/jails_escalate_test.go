package rules

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// escalatingJails returns jails with one jail "probes" that bans at the
// first offence for bantime and escalates after `after` bans.
func escalatingJails(tb testing.TB, after int, c JailsConfig) (*Jails, *BanList, *fakeClock) {
	tb.Helper()
	jc := JailConfig{MaxRetry: 1, FindTime: 10 * time.Minute, BanTime: time.Hour, Escalate: &Escalate{IPv4: 24, IPv6: 48, After: after}}
	if old, ok := c.Jails["probes"]; ok {
		old.Escalate = jc.Escalate
		jc = old
	}
	c.Jails = map[string]JailConfig{"probes": jc}
	return newTestJails(tb, c)
}

// newTestLogger logs at info level to w.
func newTestLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// banned lists the active bans' prefixes, sorted.
func banned(l *BanList) []string { return sortedPrefixes(l.List()) }

func TestEscalateIPv4(t *testing.T) {
	t.Parallel()
	j, bans, clk := escalatingJails(t, 3, JailsConfig{})
	sub := bans.Subscribe(64)
	defer sub.Close()
	j.Report("probes", ip("192.0.2.1"), "probe")
	j.Report("probes", ip("192.0.2.2"), "probe")
	j.Report("probes", ip("198.51.100.1"), "probe") // another /24
	if got, want := banned(bans), []string{"192.0.2.1/32", "192.0.2.2/32", "198.51.100.1/32"}; !slices.Equal(got, want) {
		t.Fatalf("after two bans in 192.0.2.0/24: bans %v, want %v", got, want)
	}
	clk.Add(time.Minute)
	j.Report("probes", ip("192.0.2.3"), "probe")
	if got, want := banned(bans), []string{"192.0.2.0/24", "198.51.100.1/32"}; !slices.Equal(got, want) {
		t.Fatalf("after three bans in 192.0.2.0/24: bans %v, want %v", got, want)
	}
	b, ok := bans.Lookup(ip("192.0.2.200"))
	if !ok || b.Prefix.String() != "192.0.2.0/24" {
		t.Fatalf("Lookup(192.0.2.200) = %v %v, want the /24", b, ok)
	}
	if b.Jail != "probes" || b.Reason != "escalated from 3 bans in jail probes" || b.Count != 1 || b.Until != clk.Now().Add(time.Hour) {
		t.Errorf("escalated ban = %+v, want jail probes, reason %q, count 1, until %s", b, EscalatedReason("probes", 3), clk.Now().Add(time.Hour))
	}
	if made, refused := j.Escalations("probes"); made != 1 || refused != 0 {
		t.Errorf("Escalations = %d, %d; want 1, 0", made, refused)
	}
	// The feed: four bans, then the network, then its three members
	// removed as replaced by it.
	var got []string
	for len(sub.C) > 0 {
		c := <-sub.C
		got = append(got, fmt.Sprintf("%s %s by %s", c.Op, c.Ban.Prefix, c.By))
	}
	want := []string{
		"added 192.0.2.1/32 by invalid Prefix", "added 192.0.2.2/32 by invalid Prefix", "added 198.51.100.1/32 by invalid Prefix",
		"added 192.0.2.3/32 by invalid Prefix", "added 192.0.2.0/24 by invalid Prefix",
	}
	if len(got) != 8 || !slices.Equal(got[:5], want) {
		t.Fatalf("changes %q, want %q and three removals", got, want)
	}
	removed := got[5:]
	slices.Sort(removed)
	if w := []string{"removed 192.0.2.1/32 by 192.0.2.0/24", "removed 192.0.2.2/32 by 192.0.2.0/24", "removed 192.0.2.3/32 by 192.0.2.0/24"}; !slices.Equal(removed, w) {
		t.Errorf("removals %q, want %q", removed, w)
	}
	// A member banned later is no entry of its own, and the network is
	// not escalated twice.
	j.Report("probes", ip("192.0.2.4"), "probe")
	j.Report("probes", ip("192.0.2.5"), "probe")
	j.Report("probes", ip("192.0.2.6"), "probe")
	if got, want := banned(bans), []string{"192.0.2.0/24", "198.51.100.1/32"}; !slices.Equal(got, want) {
		t.Errorf("after more offenders inside the banned /24: bans %v, want %v", got, want)
	}
	if made, _ := j.Escalations("probes"); made != 1 {
		t.Errorf("Escalations made = %d after offenders inside the banned network, want 1", made)
	}
}

// Only bans within findtime of each other count, and a client banned
// twice counts once.
func TestEscalateWindow(t *testing.T) {
	t.Parallel()
	j, bans, clk := escalatingJails(t, 3, JailsConfig{Jails: map[string]JailConfig{"probes": {MaxRetry: 1, FindTime: 10 * time.Minute, BanTime: time.Minute}}})
	j.Report("probes", ip("192.0.2.1"), "probe")
	clk.Add(6 * time.Minute)
	j.Report("probes", ip("192.0.2.2"), "probe")
	j.Report("probes", ip("192.0.2.2"), "probe") // still banned: not counted
	clk.Add(2 * time.Minute)                     // 192.0.2.2's ban ended
	j.Report("probes", ip("192.0.2.2"), "probe") // banned again: the same client
	clk.Add(3 * time.Minute)                     // 192.0.2.1's ban is 11 minutes old
	j.Report("probes", ip("192.0.2.3"), "probe")
	if got := banned(bans); slices.Contains(got, "192.0.2.0/24") {
		t.Fatalf("escalated with one client out of findtime and one banned twice: bans %v", got)
	}
	j.Report("probes", ip("192.0.2.4"), "probe")
	if got, want := banned(bans), []string{"192.0.2.0/24"}; !slices.Equal(got, want) {
		t.Errorf("after three clients banned within findtime: bans %v, want %v", got, want)
	}
}

// IPv6 clients are banned by /64, so a /48 escalates after After /64s,
// however many addresses of each offended.
func TestEscalateIPv6(t *testing.T) {
	t.Parallel()
	j, bans, _ := escalatingJails(t, 3, JailsConfig{})
	for _, a := range []string{"2001:db8:0:1::1", "2001:db8:0:1::2", "2001:db8:0:1:ffff::9", "2001:db8:0:2::1", "2001:db8:1:3::1"} {
		j.Report("probes", ip(a), "probe")
	}
	if got, want := banned(bans), []string{"2001:db8:0:1::/64", "2001:db8:0:2::/64", "2001:db8:1:3::/64"}; !slices.Equal(got, want) {
		t.Fatalf("two /64s of one /48 and one of another: bans %v, want %v", got, want)
	}
	j.Report("probes", ip("2001:db8:0:ff::7"), "probe")
	if got, want := banned(bans), []string{"2001:db8:1:3::/64", "2001:db8::/48"}; !slices.Equal(got, want) {
		t.Errorf("three /64s of 2001:db8::/48: bans %v, want %v", got, want)
	}
	if got := lookupPrefix(bans, "2001:db8:0:abcd::1"); got != "2001:db8::/48" {
		t.Errorf("Lookup(2001:db8:0:abcd::1) = %q, want the /48", got)
	}
}

// A network that holds an allowed address, a trusted proxy or a
// NoEscalate prefix is never banned; its clients stay banned one by one
// and the allowed address is served.
func TestEscalateNeverAcrossAllow(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	j, bans, _ := escalatingJails(t, 2, JailsConfig{
		Allow:      []netip.Prefix{netip.MustParsePrefix("192.0.2.200/32"), netip.MustParsePrefix("2001:db8:0:ff::/64")},
		NoEscalate: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	})
	j.log = newTestLogger(&logs)
	for _, a := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "127.0.0.2", "127.0.0.3", "2001:db8:0:1::1", "2001:db8:0:2::1"} {
		j.Report("probes", ip(a), "probe")
	}
	want := []string{"127.0.0.2/32", "127.0.0.3/32", "192.0.2.1/32", "192.0.2.2/32", "192.0.2.3/32", "192.0.2.4/32", "2001:db8:0:1::/64", "2001:db8:0:2::/64"}
	if got := banned(bans); !slices.Equal(got, want) {
		t.Errorf("bans %v, want %v (no network)", got, want)
	}
	if _, ok := bans.Lookup(ip("192.0.2.200")); ok {
		t.Error("allowed 192.0.2.200 is banned")
	}
	// 192.0.2.0/24 twice (2 then 4 bans), 127.0.0.0/24 and 2001:db8::/48 once.
	if made, refused := j.Escalations("probes"); made != 0 || refused != 4 {
		t.Errorf("Escalations = %d, %d; want 0, 4", made, refused)
	}
	if n := strings.Count(logs.String(), "escalation refused"); n != 3 {
		t.Errorf("%d refusals logged, want 3 (once per network):\n%s", n, logs.String())
	}
}

// The network's ban lasts bantime and grows with increment when the
// network is escalated again; a member banned for longer keeps its ban.
func TestEscalateBanTime(t *testing.T) {
	t.Parallel()
	j, bans, clk := escalatingJails(t, 2, JailsConfig{Jails: map[string]JailConfig{"probes": {
		MaxRetry: 1, FindTime: 10 * time.Minute, BanTime: time.Hour, Increment: &Increment{Factor: 2, Max: 24 * time.Hour}}}})
	net := netip.MustParsePrefix("192.0.2.0/24")
	// 192.0.2.1's third ban lasts 4h: the network's first ban lasts as long.
	for _, d := range []time.Duration{time.Hour, 2 * time.Hour} {
		j.Report("probes", ip("192.0.2.1"), "probe")
		clk.Add(d + time.Second)
	}
	j.Report("probes", ip("192.0.2.1"), "probe")
	clk.Add(time.Minute)
	j.Report("probes", ip("192.0.2.2"), "probe")
	b, ok := bans.Lookup(ip("192.0.2.9"))
	if !ok || b.Prefix != net || b.Count != 1 || b.Until != clk.Now().Add(time.Hour) {
		t.Fatalf("first escalation = %+v %v, want %s count 1 for 1h", b, ok, net)
	}
	if got, want := banned(bans), []string{"192.0.2.0/24", "192.0.2.1/32"}; !slices.Equal(got, want) {
		t.Errorf("bans %v, want %v: the repeat offender's 4h ban stays, the other goes", got, want)
	}
	// Lifted by the operator; escalated again: count 2, 2h.
	if !bans.Unban(net) {
		t.Fatal("Unban of the network reported no ban")
	}
	j.Report("probes", ip("192.0.2.3"), "probe")
	j.Report("probes", ip("192.0.2.4"), "probe")
	b, ok = bans.Lookup(ip("192.0.2.9"))
	if !ok || b.Prefix != net || b.Count != 2 || b.Until != clk.Now().Add(2*time.Hour) {
		t.Errorf("second escalation = %+v %v, want %s count 2 for 2h", b, ok, net)
	}
}

// After a restart the store gives the jails the bans it kept: an
// escalated ban keeps its place in the increment sequence, and clients
// banned within findtime count towards their network again.
func TestEscalateRestore(t *testing.T) {
	t.Parallel()
	j, bans, clk := escalatingJails(t, 3, JailsConfig{Jails: map[string]JailConfig{"probes": {
		MaxRetry: 1, FindTime: 10 * time.Minute, BanTime: time.Hour, Increment: &Increment{}}}})
	now := clk.Now()
	for _, tc := range []struct {
		b    Ban
		want bool
	}{
		{Ban{Jail: "probes", Prefix: netip.MustParsePrefix("198.51.100.0/24"), Count: 1, Created: now.Add(-2 * time.Hour), Until: now.Add(-time.Hour)}, true},
		{Ban{Jail: "probes", Prefix: netip.MustParsePrefix("192.0.2.1/32"), Count: 1, Created: now.Add(-time.Minute), Until: now.Add(time.Hour)}, true},
		{Ban{Jail: "probes", Prefix: netip.MustParsePrefix("192.0.2.2/32"), Count: 1, Created: now.Add(-2 * time.Minute), Until: now.Add(time.Hour)}, true},
		{Ban{Jail: "probes", Prefix: netip.MustParsePrefix("192.0.2.0/25"), Count: 1, Created: now, Until: now.Add(time.Hour)}, false},
	} {
		if got := j.RestoreHistory(tc.b); got != tc.want {
			t.Errorf("RestoreHistory(%s) = %v, want %v", tc.b.Prefix, got, tc.want)
		}
		if tc.want && tc.b.Until.After(now) {
			if _, err := bans.Ban(tc.b); err != nil {
				t.Fatal(err)
			}
		}
	}
	j.Report("probes", ip("192.0.2.3"), "probe")
	if got := lookupPrefix(bans, "192.0.2.3"); got != "192.0.2.0/24" {
		t.Errorf("third client after two restored: banned as %q, want 192.0.2.0/24", got)
	}
	for _, a := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
		j.Report("probes", ip(a), "probe")
	}
	if b, _ := bans.Lookup(ip("198.51.100.9")); b.Count != 2 || b.Until.Sub(b.Created) != 2*time.Hour {
		t.Errorf("network escalated before the restart, again: count %d for %s, want count 2 for 2h", b.Count, b.Until.Sub(b.Created))
	}
}

// A reload that keeps the escalation settings keeps the count.
func TestEscalateHandOver(t *testing.T) {
	t.Parallel()
	old, bans, clk := escalatingJails(t, 3, JailsConfig{})
	old.Report("probes", ip("192.0.2.1"), "probe")
	old.Report("probes", ip("192.0.2.2"), "probe")
	j, err := NewJails(JailsConfig{Jails: map[string]JailConfig{"probes": {
		MaxRetry: 1, BanTime: 2 * time.Hour, Escalate: &Escalate{IPv4: 24, After: 3}}}}, bans, nil)
	if err != nil {
		t.Fatal(err)
	}
	j.now = clk.Now
	j.HandOver(old)
	old.Report("probes", ip("192.0.2.3"), "probe") // in flight on the old chain
	if got := lookupPrefix(bans, "192.0.2.9"); got != "192.0.2.0/24" {
		t.Errorf("after a reload, the third ban: Lookup = %q, want the /24", got)
	}
}

// Members banned from many goroutines at once: each network is banned
// exactly once and no member entry is left.
func TestEscalateConcurrent(t *testing.T) {
	t.Parallel()
	const nets, perNet, workers = 40, 30, 4
	j, bans, _ := escalatingJails(t, 5, JailsConfig{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < nets*perNet; i += workers {
				a := netip.AddrFrom4([4]byte{10, 0, byte(i % nets), byte(1 + i/nets)})
				j.Report("probes", a, "probe")
				bans.Lookup(a)
			}
		})
	}
	wg.Wait()
	got := banned(bans)
	if len(got) != nets {
		t.Errorf("%d bans, want %d networks: %v", len(got), nets, got)
	}
	for _, p := range got {
		if !strings.HasSuffix(p, "/24") {
			t.Errorf("ban %s left beside the networks", p)
		}
	}
	if made, _ := j.Escalations("probes"); made != nets {
		t.Errorf("Escalations made = %d, want %d", made, nets)
	}
}

// Report's path for a client below maxretry is the same in an escalating
// jail: a ban list of many escalated networks changes nothing of it.
func TestEscalateNoBanList(t *testing.T) {
	t.Parallel()
	j, err := NewJails(JailsConfig{Jails: map[string]JailConfig{"probes": {MaxRetry: 1, Escalate: &Escalate{After: 2}}}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	j.Report("probes", ip("192.0.2.1"), "probe")
	j.Report("probes", ip("192.0.2.2"), "probe")
	if made, refused := j.Escalations("probes"); made != 0 || refused != 0 {
		t.Errorf("Escalations without a ban list = %d, %d; want 0, 0", made, refused)
	}
}

func TestEscalateConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		e       Escalate
		v6bits  int
		wantErr string
	}{
		{"ipv4 too short", Escalate{IPv4: 7}, 0, "escalate ipv4 /7 is not between 8 and 31"},
		{"ipv4 a client", Escalate{IPv4: 32}, 0, "escalate ipv4 /32 is not between 8 and 31"},
		{"ipv6 a client", Escalate{IPv6: 64}, 0, "escalate ipv6 /64 is not between 16 and 63 and shorter than the /64"},
		{"ipv6 not shorter than ipv6_prefix", Escalate{IPv6: 48}, 48, "escalate ipv6 /48 is not between 16 and 63 and shorter than the /48"},
		{"after 1", Escalate{After: 1}, 0, "escalate after 1 is not between 2 and 1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewJails(JailsConfig{IPv6Prefix: tc.v6bits, Jails: map[string]JailConfig{"probes": {Escalate: &tc.e}}}, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("NewJails(escalate %+v) error %v, want %q", tc.e, err, tc.wantErr)
			}
		})
	}
	if _, err := NewJails(JailsConfig{Jails: map[string]JailConfig{"probes": {Escalate: &Escalate{}}}}, nil, nil); err != nil {
		t.Errorf("NewJails(escalate {}) error %v, want the defaults", err)
	}
}

func TestBanListEscalate(t *testing.T) {
	t.Parallel()
	l, clk := newTestBanList(BanListConfig{Allow: []netip.Prefix{netip.MustParsePrefix("203.0.113.7/32")}})
	mustBan(t, l, clk, "192.0.2.1/32", "probes", time.Hour)
	mustBan(t, l, clk, "192.0.2.2/32", "probes", 3*time.Hour)
	mustBan(t, l, clk, "192.0.2.3/32", "auth", 5*time.Hour) // another jail's
	mustBan(t, l, clk, "192.0.2.4/32", "", time.Hour)       // manual
	mustBan(t, l, clk, "192.0.2.128/25", "probes", time.Hour)
	mustBan(t, l, clk, "192.0.3.1/32", "probes", time.Hour) // outside
	// Many IPv4 bans, so the /32 table is large and the members are found
	// by probing each address of the /24.
	for i := range 600 {
		mustBan(t, l, clk, netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}).String()+"/32", "probes", time.Hour)
	}
	net := netip.MustParsePrefix("192.0.2.0/24")
	b, n, err := l.Escalate(Ban{Prefix: net, Jail: "probes", Reason: "r", Until: clk.Now().Add(time.Hour)})
	if err != nil || n != 2 || b.Until != clk.Now().Add(time.Hour) {
		t.Fatalf("Escalate(%s) = %+v, %d, %v; want 2 replaced (not the member banned for longer)", net, b, n, err)
	}
	for a, want := range map[string]string{"192.0.2.1": "192.0.2.0/24", "192.0.2.2": "192.0.2.2/32", "192.0.2.3": "192.0.2.3/32", "192.0.2.4": "192.0.2.4/32", "192.0.2.200": "192.0.2.0/24", "192.0.3.1": "192.0.3.1/32"} {
		if got := lookupPrefix(l, a); got != want {
			t.Errorf("Lookup(%s) = %q, want %q", a, got, want)
		}
	}
	if _, _, err := l.Escalate(Ban{Prefix: net, Jail: "probes", Until: clk.Now().Add(time.Hour)}); !errors.Is(err, ErrCovered) {
		t.Errorf("second Escalate(%s) error %v, want ErrCovered", net, err)
	}
	if _, err := l.Ban(Ban{Prefix: netip.MustParsePrefix("192.0.2.9/32"), Jail: "probes", Until: clk.Now().Add(time.Hour)}); !errors.Is(err, ErrCovered) {
		t.Errorf("jail ban inside the network: error %v, want ErrCovered", err)
	}
	if _, err := l.Ban(Ban{Prefix: netip.MustParsePrefix("192.0.2.9/32"), Jail: "probes", Until: clk.Now().Add(9 * time.Hour)}); err != nil {
		t.Errorf("jail ban inside the network lasting longer: error %v, want it stored", err)
	}
	if _, err := l.Ban(Ban{Prefix: netip.MustParsePrefix("192.0.2.10/32"), Until: clk.Now().Add(time.Hour)}); err != nil {
		t.Errorf("manual ban inside the network: error %v, want it stored", err)
	}
	// A /8 of few bans: found by one pass over them.
	if _, n, err := l.Escalate(Ban{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Jail: "probes", Until: clk.Now().Add(time.Hour)}); err != nil || n != 600 {
		t.Errorf("Escalate(10.0.0.0/8) = %d, %v; want 600 replaced", n, err)
	}
	if _, _, err := l.Escalate(Ban{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Jail: "probes", Until: clk.Now().Add(time.Hour)}); !errors.Is(err, ErrAllowed) {
		t.Errorf("Escalate over an allowed address: error %v, want ErrAllowed", err)
	}
	if got := len(l.List()); got != 8 {
		t.Errorf("%d bans left, want 8: %v", got, banned(l))
	}

	// IPv6: 40,000 /64s of one /48, enough that probing each of the
	// /48's 65,536 /64s beats a pass over the table, and one outside.
	for i := range 40_000 {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, byte(i >> 8), byte(i)})
		if _, err := l.Ban(Ban{Prefix: netip.PrefixFrom(a, 64), Jail: "probes", Until: clk.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	mustBan(t, l, clk, "2001:db8:2:1::/64", "probes", time.Hour)
	if _, n, err := l.Escalate(Ban{Prefix: netip.MustParsePrefix("2001:db8:1::/48"), Jail: "probes", Until: clk.Now().Add(time.Hour)}); err != nil || n != 40_000 {
		t.Errorf("Escalate(2001:db8:1::/48) = %d, %v; want 40000 replaced", n, err)
	}
	for a, want := range map[string]string{"2001:db8:1:7530::1": "2001:db8:1::/48", "2001:db8:1:1::1": "2001:db8:1::/48", "2001:db8:2:1::1": "2001:db8:2:1::/64"} {
		if got := lookupPrefix(l, a); got != want {
			t.Errorf("Lookup(%s) = %q, want %q", a, got, want)
		}
	}
	if got := len(l.List()); got != 10 {
		t.Errorf("%d bans left, want 10", got)
	}
}

// An escalation the ban list refuses (its allow list is the one of the
// start, where a reload narrowed the jails') is not made, counted as
// refused each time and logged once per network, and leaves the
// network's place in the increment sequence.
func TestEscalateRefusedByBanList(t *testing.T) {
	t.Parallel()
	var logs strings.Builder
	bans, clk := newTestBanList(BanListConfig{Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.200/32")}})
	j, err := NewJails(JailsConfig{Jails: map[string]JailConfig{"probes": {MaxRetry: 1, BanTime: time.Hour,
		Increment: &Increment{}, Escalate: &Escalate{After: 2}}}}, bans, newTestLogger(&logs))
	if err != nil {
		t.Fatal(err)
	}
	j.now = clk.Now
	for _, a := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"} {
		j.Report("probes", ip(a), "probe")
	}
	if made, refused := j.Escalations("probes"); made != 0 || refused != 2 {
		t.Errorf("Escalations = %d, %d; want 0, 2", made, refused)
	}
	if n := strings.Count(logs.String(), "escalation refused"); n != 1 {
		t.Errorf("%d refusals logged, want 1:\n%s", n, logs.String())
	}
	// Allowed no more (as after a restart): the first escalation.
	j.bans = NewBanList(BanListConfig{})
	j.bans.now = clk.Now
	j.Report("probes", ip("192.0.2.5"), "probe")
	j.Report("probes", ip("192.0.2.6"), "probe")
	if b, ok := j.bans.Lookup(ip("192.0.2.9")); !ok || b.Count != 1 || b.Until.Sub(b.Created) != time.Hour {
		t.Errorf("escalation after two refused = %+v %v, want count 1 for 1h", b, ok)
	}
}
