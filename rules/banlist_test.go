package rules

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeClock is the injected clock of the jail and ban list tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestBanList(cfg BanListConfig) (*BanList, *fakeClock) {
	clk := newFakeClock()
	l := NewBanList(cfg)
	l.now = clk.Now
	return l, clk
}

// mustBan bans p for d from clk's now, failing the test on an error.
func mustBan(tb testing.TB, l *BanList, clk *fakeClock, p, jail string, d time.Duration) Ban {
	tb.Helper()
	b, err := l.Ban(Ban{Prefix: netip.MustParsePrefix(p), Jail: jail, Reason: "test", Until: clk.Now().Add(d)})
	if err != nil {
		tb.Fatalf("Ban(%s) error %v", p, err)
	}
	return b
}

// lookupPrefix is Lookup's answer as the banned prefix, "" for none.
func lookupPrefix(l *BanList, ip string) string {
	b, ok := l.Lookup(netip.MustParseAddr(ip))
	if !ok {
		return ""
	}
	return b.Prefix.String()
}

func sortedPrefixes(bans []Ban) []string {
	out := make([]string, len(bans))
	for i, b := range bans {
		out[i] = b.Prefix.String()
	}
	slices.Sort(out)
	return out
}

func TestBanListLookup(t *testing.T) {
	t.Parallel()
	l, clk := newTestBanList(BanListConfig{})
	for _, p := range []string{
		"203.0.113.7/32", "198.51.100.0/24", "192.0.2.0/24", "192.0.2.9/32",
		"2001:db8:1:2::/64", "2001:db8:ffff::/48", "2001:db8:5::7/128", "10.0.0.0/8",
	} {
		mustBan(t, l, clk, p, "", time.Hour)
	}
	tests := []struct {
		name, ip, want string
	}{
		{"ipv4 exact", "203.0.113.7", "203.0.113.7/32"},
		{"ipv4 neighbour", "203.0.113.8", ""},
		{"ipv4-mapped folded", "::ffff:203.0.113.7", "203.0.113.7/32"},
		{"manual /24", "198.51.100.200", "198.51.100.0/24"},
		{"manual /8", "10.200.3.4", "10.0.0.0/8"},
		{"longest prefix wins", "192.0.2.9", "192.0.2.9/32"},
		{"shorter prefix still bans", "192.0.2.10", "192.0.2.0/24"},
		{"ipv6 in /64", "2001:db8:1:2:dead:beef:0:1", "2001:db8:1:2::/64"},
		{"ipv6 next /64", "2001:db8:1:3::1", ""},
		{"ipv6 in /48", "2001:db8:ffff:42::1", "2001:db8:ffff::/48"},
		{"ipv6 /128", "2001:db8:5::7", "2001:db8:5::7/128"},
		{"ipv6 beside /128", "2001:db8:5::8", ""},
		{"zone ignored", "2001:db8:1:2::1%eth0", "2001:db8:1:2::/64"},
		{"ipv4 is not ipv6", "::cb00:7107", ""},
		{"ipv6 is not ipv4", "::ffff:0:cb00:7107", ""},
	}
	for _, tc := range tests {
		if got := lookupPrefix(l, tc.ip); got != tc.want {
			t.Errorf("%s: Lookup(%s) = %q, want %q", tc.name, tc.ip, got, tc.want)
		}
	}
	if _, ok := l.Lookup(netip.Addr{}); ok {
		t.Errorf("Lookup(invalid) = banned, want not banned")
	}
}

func TestBanListBanStored(t *testing.T) {
	t.Parallel()
	l, clk := newTestBanList(BanListConfig{})
	until := clk.Now().Add(time.Hour).In(time.FixedZone("CET", 3600))
	got, err := l.Ban(Ban{Prefix: netip.MustParsePrefix("::ffff:198.51.100.77/120"), Reason: "manual", Until: until, Count: 2})
	if err != nil {
		t.Fatalf("Ban error %v", err)
	}
	want := Ban{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Reason: "manual", Until: until.UTC(), Count: 2, Created: clk.Now()}
	if got != want {
		t.Errorf("Ban = %+v, want %+v", got, want)
	}
	if b, _ := l.Lookup(netip.MustParseAddr("198.51.100.1")); b != want {
		t.Errorf("Lookup = %+v, want %+v", b, want)
	}
	if got := l.List(); len(got) != 1 || got[0] != want {
		t.Errorf("List = %+v, want [%+v]", got, want)
	}
	// A ban far in the future saturates instead of wrapping around.
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	b, err := l.Ban(Ban{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Until: far})
	if err != nil || b.Until.Year() != 2262 {
		t.Errorf("Ban(until 9999) = %v, %v; want until in 2262", b.Until, err)
	}
}

func TestBanListBanErrors(t *testing.T) {
	t.Parallel()
	l, clk := newTestBanList(BanListConfig{Allow: []netip.Prefix{
		netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::1/128"),
		netip.MustParsePrefix("::ffff:192.0.2.0/120"), {},
	}})
	now := clk.Now()
	tests := []struct {
		name, prefix string
		until        time.Time
		wantErr      string
		allowed      bool
	}{
		{name: "invalid prefix", until: now.Add(time.Hour), wantErr: "invalid prefix"},
		{name: "until in the past", prefix: "198.51.100.1/32", until: now.Add(-time.Second), wantErr: "is not in the future"},
		{name: "until now", prefix: "198.51.100.1/32", until: now, wantErr: "is not in the future"},
		{name: "zero until", prefix: "198.51.100.1/32", wantErr: "is not in the future"},
		{name: "allowed address", prefix: "203.0.113.9/32", until: now.Add(time.Hour), wantErr: "overlaps allowed 203.0.113.0/24", allowed: true},
		{name: "covers allowed", prefix: "203.0.0.0/16", until: now.Add(time.Hour), wantErr: "overlaps allowed", allowed: true},
		{name: "mapped allowed", prefix: "::ffff:203.0.113.9/128", until: now.Add(time.Hour), wantErr: "overlaps allowed", allowed: true},
		{name: "allow given mapped", prefix: "192.0.2.5/32", until: now.Add(time.Hour), wantErr: "overlaps allowed 192.0.2.0/24", allowed: true},
		{name: "ipv6 /64 around allowed /128", prefix: "2001:db8::/64", until: now.Add(time.Hour), wantErr: "overlaps allowed 2001:db8::1/128", allowed: true},
	}
	for _, tc := range tests {
		var p netip.Prefix
		if tc.prefix != "" {
			p = netip.MustParsePrefix(tc.prefix)
		}
		_, err := l.Ban(Ban{Prefix: p, Until: tc.until})
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: Ban(%s) error %v, want %q", tc.name, tc.prefix, err, tc.wantErr)
		}
		if errors.Is(err, ErrAllowed) != tc.allowed {
			t.Errorf("%s: errors.Is(%v, ErrAllowed) = %v, want %v", tc.name, err, !tc.allowed, tc.allowed)
		}
	}
	if got := l.List(); len(got) != 0 {
		t.Errorf("List after refused bans = %v, want none", got)
	}
	// Beside the allowed /128, in the same /64, a /128 is fine.
	mustBan(t, l, clk, "2001:db8::2/128", "", time.Hour)
}

func TestBanListReplace(t *testing.T) {
	t.Parallel()
	l, clk := newTestBanList(BanListConfig{})
	mustBan(t, l, clk, "192.0.2.1/32", "probes", time.Hour)
	second := mustBan(t, l, clk, "192.0.2.1/32", "", 5*time.Minute)
	if got, _ := l.Lookup(netip.MustParseAddr("192.0.2.1")); got != second {
		t.Errorf("Lookup after re-ban = %+v, want the second ban %+v", got, second)
	}
	if got := l.List(); len(got) != 1 {
		t.Errorf("List after re-ban = %d bans, want 1", len(got))
	}
}

func TestBanListExpiry(t *testing.T) {
	t.Parallel()
	l, clk := newTestBanList(BanListConfig{})
	sub := l.Subscribe(16)
	defer sub.Close()
	mustBan(t, l, clk, "192.0.2.1/32", "probes", time.Hour)
	mustBan(t, l, clk, "2001:db8::/64", "probes", 2*time.Hour)
	clk.Add(time.Hour - time.Nanosecond)
	if got := lookupPrefix(l, "192.0.2.1"); got != "192.0.2.1/32" {
		t.Errorf("Lookup 1ns before the end = %q, want banned", got)
	}
	clk.Add(time.Nanosecond)
	if got := lookupPrefix(l, "192.0.2.1"); got != "" {
		t.Errorf("Lookup at the end = %q, want not banned (Until is exclusive)", got)
	}
	if got := sortedPrefixes(l.List()); !slices.Equal(got, []string{"2001:db8::/64"}) {
		t.Errorf("List after expiry = %v, want [2001:db8::/64]", got)
	}
	if n := l.Prune(clk.Now()); n != 1 {
		t.Errorf("Prune = %d, want 1", n)
	}
	if n := l.Prune(clk.Now()); n != 0 {
		t.Errorf("second Prune = %d, want 0", n)
	}
	var got []string
	for range 3 {
		c := <-sub.C
		got = append(got, c.Op.String()+" "+c.Ban.Prefix.String())
	}
	want := []string{"added 192.0.2.1/32", "added 2001:db8::/64", "removed 192.0.2.1/32"}
	if !slices.Equal(got, want) {
		t.Errorf("changes = %q, want %q", got, want)
	}
	// An expired ban is replaced by a new ban of the prefix.
	mustBan(t, l, clk, "2001:db8::/64", "", time.Minute)
	clk.Add(time.Minute)
	mustBan(t, l, clk, "2001:db8::/64", "", time.Minute)
	if got := lookupPrefix(l, "2001:db8::1"); got != "2001:db8::/64" {
		t.Errorf("Lookup after re-ban of an expired prefix = %q, want banned", got)
	}
}

func TestBanListUnban(t *testing.T) {
	t.Parallel()
	l, clk := newTestBanList(BanListConfig{})
	mustBan(t, l, clk, "192.0.2.0/24", "", time.Hour)
	mustBan(t, l, clk, "192.0.2.7/32", "", time.Hour)
	mustBan(t, l, clk, "2001:db8::/64", "", time.Hour)
	tests := []struct {
		name, prefix string
		want         bool
	}{
		{"not banned", "198.51.100.1/32", false},
		{"inside a banned /24 is not the /24", "192.0.2.8/32", false},
		{"exact, mapped form", "::ffff:192.0.2.7/128", true},
		{"again", "192.0.2.7/32", false},
		{"unmasked /24", "192.0.2.200/24", true},
		{"ipv6", "2001:db8::/64", true},
		{"invalid", "", false},
	}
	for _, tc := range tests {
		var p netip.Prefix
		if tc.prefix != "" {
			p = netip.MustParsePrefix(tc.prefix)
		}
		if got := l.Unban(p); got != tc.want {
			t.Errorf("%s: Unban(%s) = %v, want %v", tc.name, tc.prefix, got, tc.want)
		}
	}
	for _, ip := range []string{"192.0.2.7", "192.0.2.1", "2001:db8::1"} {
		if got := lookupPrefix(l, ip); got != "" {
			t.Errorf("Lookup(%s) after Unban = %q, want not banned", ip, got)
		}
	}
	if got := l.List(); len(got) != 0 {
		t.Errorf("List after Unban = %v, want none", got)
	}
	// Unbanning an expired ban removes it but reports false.
	mustBan(t, l, clk, "198.51.100.1/32", "", time.Minute)
	clk.Add(time.Hour)
	if l.Unban(netip.MustParsePrefix("198.51.100.1/32")) {
		t.Errorf("Unban(expired) = true, want false")
	}
}

func TestBanListFull(t *testing.T) {
	t.Parallel()
	l, clk := newTestBanList(BanListConfig{MaxBans: 3})
	mustBan(t, l, clk, "192.0.2.1/32", "", time.Minute)
	mustBan(t, l, clk, "192.0.2.2/32", "", time.Hour)
	mustBan(t, l, clk, "2001:db8::/64", "", time.Hour)
	_, err := l.Ban(Ban{Prefix: netip.MustParsePrefix("192.0.2.4/32"), Until: clk.Now().Add(time.Hour)})
	if !errors.Is(err, ErrBanListFull) {
		t.Errorf("Ban beyond MaxBans error %v, want ErrBanListFull", err)
	}
	// Replacing a held ban needs no room.
	mustBan(t, l, clk, "192.0.2.2/32", "", 2*time.Hour)
	// Once a ban has expired, a new one makes room by pruning it.
	clk.Add(time.Minute)
	mustBan(t, l, clk, "192.0.2.4/32", "", time.Hour)
	if got := sortedPrefixes(l.List()); !slices.Equal(got, []string{"192.0.2.2/32", "192.0.2.4/32", "2001:db8::/64"}) {
		t.Errorf("List = %v", got)
	}
}

func TestSubscriptionOverflowResync(t *testing.T) {
	t.Parallel()
	l, clk := newTestBanList(BanListConfig{})
	sub := l.Subscribe(2)
	defer sub.Close()
	other := l.Subscribe(100)
	defer other.Close()
	if got := sub.Resync(); len(got) != 0 {
		t.Fatalf("initial Resync = %v, want empty", got)
	}
	for i := 1; i <= 5; i++ {
		mustBan(t, l, clk, fmt.Sprintf("192.0.2.%d/32", i), "", time.Hour)
	}
	l.Unban(netip.MustParsePrefix("192.0.2.1/32"))
	select {
	case <-sub.Overflow():
	default:
		t.Fatalf("Overflow did not fire after 6 changes into a buffer of 2")
	}
	if n := len(sub.C); n != 2 {
		t.Errorf("len(C) after overflow = %d, want 2 (the first changes, nothing after the gap)", n)
	}
	if n := len(other.C); n != 6 {
		t.Errorf("len(C) of a subscriber with room = %d, want 6", n)
	}
	select {
	case <-other.Overflow():
		t.Errorf("Overflow of a subscriber with room fired")
	default:
	}
	snap := sub.Resync()
	if got, want := sortedPrefixes(snap), []string{"192.0.2.2/32", "192.0.2.3/32", "192.0.2.4/32", "192.0.2.5/32"}; !slices.Equal(got, want) {
		t.Errorf("Resync = %v, want %v", got, want)
	}
	if n := len(sub.C); n != 0 {
		t.Errorf("len(C) after Resync = %d, want 0 (stale changes dropped with the snapshot)", n)
	}
	select {
	case <-sub.Overflow():
		t.Errorf("Overflow still pending after Resync")
	default:
	}
	// The feed resumes after the snapshot.
	l.Unban(netip.MustParsePrefix("192.0.2.2/32"))
	if c := <-sub.C; c.Op != Removed || c.Ban.Prefix.String() != "192.0.2.2/32" {
		t.Errorf("change after Resync = %v %v, want removed 192.0.2.2/32", c.Op, c.Ban.Prefix)
	}
}

func TestSubscriptionClose(t *testing.T) {
	t.Parallel()
	l, clk := newTestBanList(BanListConfig{})
	sub := l.Subscribe(0)
	mustBan(t, l, clk, "192.0.2.1/32", "", time.Hour)
	sub.Close()
	sub.Close()
	mustBan(t, l, clk, "192.0.2.2/32", "", time.Hour) // must not send on the closed channel
	var n int
	for range sub.C {
		n++
	}
	if n != 1 {
		t.Errorf("changes received before close = %d, want 1", n)
	}
	if got := sub.Resync(); got != nil {
		t.Errorf("Resync after Close = %v, want nil", got)
	}
}

// TestBanListModel checks the hash tables (tombstones, growth, shrinking,
// tables appearing and going) against a plain map, over random bans,
// unbans and prunes on a small address space.
func TestBanListModel(t *testing.T) {
	t.Parallel()
	l, clk := newTestBanList(BanListConfig{})
	model := map[netip.Prefix]time.Time{}
	r := rand.New(rand.NewPCG(1, 2))
	prefix := func() netip.Prefix {
		switch r.IntN(4) {
		case 0:
			return netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, byte(r.IntN(4)), byte(r.IntN(256))}), 32)
		case 1:
			return netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, byte(r.IntN(4)), 0}), 24)
		case 2:
			return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 7: byte(r.IntN(300))}), 64)
		default:
			return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 7: byte(r.IntN(2)), 15: byte(r.IntN(256))}), 128)
		}
	}
	addr := func() netip.Addr {
		if r.IntN(2) == 0 {
			return netip.AddrFrom4([4]byte{192, 0, byte(r.IntN(5)), byte(r.IntN(256))})
		}
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 7: byte(r.IntN(300)), 15: byte(r.IntN(256))})
	}
	for step := range 40000 {
		switch op := r.IntN(100); {
		case op < 55:
			p := prefix()
			until := clk.Now().Add(time.Duration(1+r.IntN(600)) * time.Second)
			if _, err := l.Ban(Ban{Prefix: p, Until: until}); err != nil {
				t.Fatalf("step %d: Ban(%s) error %v", step, p, err)
			}
			model[p] = until
		case op < 90:
			p := prefix()
			want := model[p].After(clk.Now())
			if got := l.Unban(p); got != want {
				t.Fatalf("step %d: Unban(%s) = %v, want %v", step, p, got, want)
			}
			delete(model, p)
		case op < 92:
			l.Prune(clk.Now())
			for p, u := range model {
				if !u.After(clk.Now()) {
					delete(model, p)
				}
			}
		default:
			clk.Add(time.Duration(r.IntN(30)) * time.Second)
		}
		for range 4 {
			a := addr()
			var want netip.Prefix
			for p, u := range model {
				if p.Contains(a) && u.After(clk.Now()) && p.Bits() > want.Bits() {
					want = p
				}
			}
			b, ok := l.Lookup(a)
			if ok != want.IsValid() || ok && b.Prefix != want {
				t.Fatalf("step %d: Lookup(%s) = %v %v, want %v", step, a, b.Prefix, ok, want)
			}
		}
	}
	var want []string
	for p, u := range model {
		if u.After(clk.Now()) {
			want = append(want, p.String())
		}
	}
	slices.Sort(want)
	if got := sortedPrefixes(l.List()); !slices.Equal(got, want) {
		t.Errorf("List = %d bans, want %d", len(got), len(want))
	}
}

func TestBanListRun(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := NewBanList(BanListConfig{PruneEvery: time.Minute})
		sub := l.Subscribe(8)
		defer sub.Close()
		if _, err := l.Ban(Ban{Prefix: netip.MustParsePrefix("192.0.2.1/32"), Until: time.Now().Add(90 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		<-sub.C
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- l.Run(ctx) }()
		time.Sleep(time.Minute) // fake time: the first prune, too early
		synctest.Wait()
		if n := len(sub.C); n != 0 {
			t.Errorf("changes after the first prune = %d, want 0", n)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		select {
		case c := <-sub.C:
			if c.Op != Removed {
				t.Errorf("change after the second prune = %v, want removed", c.Op)
			}
		default:
			t.Errorf("no change after the second prune, want the expired ban removed")
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil after cancel", err)
		}
	})
}

// TestBanListConcurrent runs lookups against bans, unbans and prunes; run
// it with -race. A ban held throughout must always be seen, and an
// address never banned never.
func TestBanListConcurrent(t *testing.T) {
	t.Parallel()
	l := NewBanList(BanListConfig{})
	if _, err := l.Ban(Ban{Prefix: netip.MustParsePrefix("198.51.100.1/32"), Until: time.Now().Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	sub := l.Subscribe(4)
	defer sub.Close()
	stop := make(chan struct{})
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			held, never := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("203.0.113.1")
			for i := 0; ; i++ {
				select {
				case <-stop:
					errc <- nil
					return
				default:
				}
				if _, ok := l.Lookup(held); !ok {
					errc <- fmt.Errorf("reader %d: Lookup(%s) = not banned, want banned", g, held)
					return
				}
				if b, ok := l.Lookup(never); ok {
					errc <- fmt.Errorf("reader %d: Lookup(%s) = %v, want not banned", g, never, b)
					return
				}
				l.Lookup(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}))
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			sub.Resync()
			for range len(sub.C) {
				<-sub.C
			}
		}
	})
	for i := range 5000 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}), 32)
		if _, err := l.Ban(Ban{Prefix: p, Until: time.Now().Add(time.Duration(i%3) * time.Hour)}); err != nil && i%3 != 0 {
			t.Fatal(err)
		}
		if i%7 == 0 {
			l.Unban(p)
		}
		if i%500 == 0 {
			l.Prune(time.Now().Add(90 * time.Minute)) // the 1h bans
		}
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Error(err)
		}
	}
}
