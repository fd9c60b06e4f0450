package ui

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"gatehouse/middleware"
	"gatehouse/rules"
)

// t0 is the tests' clock: a whole minute.
var t0 = time.Unix(1_800_000_000, 0)

func TestStatsSeries(t *testing.T) {
	t.Parallel()
	st := NewStats(StatsConfig{})
	for i := range 5 {
		for range i + 1 {
			st.Count(t0.Add(time.Duration(i)*time.Second+time.Duration(i)*time.Millisecond), Requests)
		}
	}
	st.Count(t0.Add(2*time.Second), Probe)
	now := t0.Add(5 * time.Second)
	if got, want := st.Series(Requests, now, 7), []uint64{0, 0, 1, 2, 3, 4, 5}; !slices.Equal(got, want) {
		t.Errorf("Series(Requests, 7) = %v, want %v", got, want)
	}
	if got, want := st.Series(Probe, now, 4), []uint64{0, 1, 0, 0}; !slices.Equal(got, want) {
		t.Errorf("Series(Probe, 4) = %v, want %v", got, want)
	}
	// The second being counted is not part of the series yet.
	st.Count(now, Requests)
	if got := st.Series(Requests, now, 1); got[0] != 5 {
		t.Errorf("Series(Requests, 1) = %v, want [5]", got)
	}

	// An hour later the ring slots are reused: the old counts are gone,
	// and a straggler from the old hour does not reset a newer second.
	later := t0.Add(ringSeconds * time.Second)
	st.Count(later, Requests)
	st.Count(t0, Requests)
	if got := st.Series(Requests, later.Add(time.Second), 1); got[0] != 1 {
		t.Errorf("after a slot's reuse: Series = %v, want [1]", got)
	}
	if got := st.Series(Requests, later.Add(10*time.Second), 3600); slices.Max(got) != 1 {
		t.Errorf("an hour later, counts of the previous hour are back: max %d", slices.Max(got))
	}
}

func TestStatsMinutes(t *testing.T) {
	t.Parallel()
	st := NewStats(StatsConfig{})
	st.Count(t0.Add(-61*time.Minute), Requests) // over an hour ago
	st.Count(t0.Add(-59*time.Minute), Requests) // the oldest minute shown
	st.Count(t0.Add(-30*time.Minute+time.Second), Requests)
	st.Count(t0.Add(-30*time.Minute+59*time.Second), Requests)
	st.Count(t0.Add(10*time.Second), Requests) // the current minute
	m := st.Minutes(Requests, t0.Add(10*time.Second))
	if len(m) != 60 || m[0] != 1 || m[29] != 2 || m[59] != 1 {
		t.Fatalf("Minutes = %v, want 1 at [0], 2 at [29], 1 at [59]", m)
	}
	var sum uint64
	for _, v := range m {
		sum += v
	}
	if sum != 4 {
		t.Errorf("Minutes sum = %d, want 4 (the one over an hour old left out)", sum)
	}
}

// TestStatsCountConcurrent: counts from many goroutines across second
// boundaries are all kept (the counter slot's compare-and-swap).
func TestStatsCountConcurrent(t *testing.T) {
	t.Parallel()
	st := NewStats(StatsConfig{})
	const workers, each = 8, 2000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				st.Count(t0.Add(time.Duration((i+w)%3)*time.Second), Kind(i%int(numKinds)))
			}
		})
	}
	wg.Wait()
	var total uint64
	for k := range numKinds {
		for _, v := range st.Series(k, t0.Add(3*time.Second), 3) {
			total += v
		}
	}
	if total != workers*each {
		t.Errorf("counted %d, want %d", total, workers*each)
	}
}

func TestKindOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		offence  string
		kind     Kind
		wantRule string
	}{
		{"probe /wp-login.php", Probe, "/wp-login.php"},
		{"bad credentials", Auth, "bad credentials"},
		{"hotlink", Hotlink, "hotlink"},
		{"flood", Flood, "flood"},
		{"limit login", Flood, "limit login"},
		{"access", Other, "access"},
		{"something new", Other, "something new"},
		{"probe", Other, "probe"},
	} {
		if k, rule := kindOf(tc.offence); k != tc.kind || rule != tc.wantRule {
			t.Errorf("kindOf(%q) = %v, %q, want %v, %q", tc.offence, k, rule, tc.kind, tc.wantRule)
		}
	}
}

// TestStatsObserve: the access log hook counts requests, offences by kind
// and ban guard refusals, and files offences with bounded text.
func TestStatsObserve(t *testing.T) {
	t.Parallel()
	st := NewStats(StatsConfig{Latest: 3})
	bans := rules.NewBanList(rules.BanListConfig{})
	banned := netip.MustParseAddr("203.0.113.66")
	if _, err := bans.Ban(rules.Ban{Prefix: netip.PrefixFrom(banned, 32), Until: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	observe := func(ip, target, ua string, status int, s middleware.Scope) {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		r.Header.Set("User-Agent", ua)
		s.ClientIP = netip.MustParseAddr(ip)
		st.Observe(r, &s, status, t0, bans)
	}
	long := strings.Repeat("é", maxPathLen) // 2 bytes each: clipped
	observe("198.51.100.1", "/", "curl", 200, middleware.Scope{Host: "www.example.com"})
	observe("198.51.100.2", "/wp-login.php?x=1", "bot", 403, middleware.Scope{Offence: "probe /wp-login.php"})
	observe("198.51.100.3", "/"+long, "bot\xff", 403, middleware.Scope{Offence: "probe *.php"})
	observe("2001:db8:1:2::7", "/admin", "ua", 401, middleware.Scope{Offence: "bad credentials", Host: "staging.example.com", RequestHost: "staging.example.com"})
	observe(banned.String(), "/", "ua", 403, middleware.Scope{})                                   // ban guard
	observe("198.51.100.9", "/", "ua", 403, middleware.Scope{Host: "www.example.com"})             // upstream's 403
	observe("198.51.100.10", "/", "ua", 403, middleware.Scope{})                                   // not banned
	observe("198.51.100.11", "/", "ua", 429, middleware.Scope{Offence: "flood", RequestHost: "x"}) // flood
	for k, want := range map[Kind]uint64{Requests: 8, Probe: 2, Auth: 1, Banned: 1, Flood: 1, Hotlink: 0, Other: 0} {
		if got := st.Series(k, t0.Add(time.Second), 1)[0]; got != want {
			t.Errorf("count of %v = %d, want %d", k, got, want)
		}
	}
	for len(st.queue) > 0 {
		st.file(<-st.queue)
	}
	latest, seq := st.Latest(0, 10)
	if seq != 4 || len(latest) != 3 {
		t.Fatalf("Latest = %d offences, seq %d; want the 3 kept of 4", len(latest), seq)
	}
	if latest[0].Kind != Flood || latest[1].Kind != Auth || latest[2].Kind != Probe || latest[2].Rule != "*.php" {
		t.Errorf("Latest kinds = %v %v %v (rule %q)", latest[0].Kind, latest[1].Kind, latest[2].Kind, latest[2].Rule)
	}
	if p := latest[2].Path; len(p) > maxPathLen+len("…") || !strings.HasSuffix(p, "é…") {
		t.Errorf("long path kept as %d bytes ending %q", len(p), p[len(p)-8:])
	}
	if latest[2].UserAgent != "bot\uFFFD" {
		t.Errorf("invalid UTF-8 user agent kept as %q", latest[2].UserAgent)
	}
	if latest[1].Host != "staging.example.com" || latest[1].ClientIP.String() != "2001:db8:1:2::7" {
		t.Errorf("auth offence = %+v", latest[1])
	}
	if got, _ := st.Latest(3, 10); len(got) != 1 || got[0].Seq != 4 {
		t.Errorf("Latest(after 3) = %+v, want offence 4 only", got)
	}
	paths, nets := st.Top(t0.Add(time.Minute), 10)
	wantLong := "/" + strings.Repeat("é", maxTopKeyLen/2-1) + "…" // clipped at a rune boundary
	if len(paths) != 2 || paths[0].Key != "/wp-login.php" || paths[1].Key != wantLong {
		t.Errorf("Top paths = %v, want /wp-login.php and %q", paths, wantLong)
	}
	wantNets := []string{"198.51.100.0/24", "2001:db8:1::/48"}
	var gotNets []string
	for _, n := range nets {
		gotNets = append(gotNets, n.Key)
	}
	if !slices.Equal(gotNets, wantNets) || nets[0].Count != 3 {
		t.Errorf("Top nets = %v, want %v with 3 for the first", nets, wantNets)
	}
	if paths, nets := st.Top(t0.Add(61*time.Minute), 10); len(paths)+len(nets) != 0 {
		t.Errorf("an hour later Top = %v, %v, want nothing", paths, nets)
	}
}

// TestStatsTopHeavyHitter: a path probed far more than others stays on
// top even when a minute sees many more distinct paths than it keeps.
func TestStatsTopHeavyHitter(t *testing.T) {
	t.Parallel()
	st := NewStats(StatsConfig{})
	for i := range 5000 {
		path := fmt.Sprintf("/random-%d", i)
		if i%4 == 0 {
			path = "/.env"
		}
		st.file(Offence{Time: t0, Kind: Probe, Path: path, ClientIP: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})})
	}
	paths, nets := st.Top(t0, 3)
	if len(paths) == 0 || paths[0].Key != "/.env" || paths[0].Count < 1250-5000/topPerMinute {
		t.Errorf("Top paths = %v, want /.env first with at least %d", paths, 1250-5000/topPerMinute)
	}
	if len(nets) == 0 || nets[0].Key != "10.0.0.0/24" {
		t.Errorf("Top nets = %v", nets)
	}
	if n := len(st.minutes[uint64(t0.Unix()/60)%60].paths); n > topPerMinute {
		t.Errorf("a minute keeps %d paths, bound %d", n, topPerMinute)
	}
}

// TestStatsReportDrops: with Run not keeping up, Report never blocks,
// counts the offence anyway and counts the drop; Run files what was
// queued and closes Done when it returns.
func TestStatsReportDrops(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		st := NewStats(StatsConfig{Queue: 2})
		for range 5 {
			st.Report(Offence{Time: t0, Rule: "hotlink"})
		}
		if got := st.Series(Hotlink, t0.Add(time.Second), 1)[0]; got != 5 {
			t.Errorf("hotlink count = %d, want 5", got)
		}
		if st.Dropped() != 3 {
			t.Errorf("Dropped() = %d, want 3", st.Dropped())
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- st.Run(ctx) }()
		synctest.Wait() // Run has drained the queue and waits
		if _, seq := st.Latest(0, 0); seq != 2 {
			t.Errorf("Run filed %d offences, want the 2 queued", seq)
		}
		select {
		case <-st.Done():
			t.Error("Done is closed while Run runs")
		default:
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
		select {
		case <-st.Done():
		default:
			t.Error("Done is open after Run returned")
		}
	})
}

func TestClip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijk", 10, "abcdefghij…"},
		{"aaaaaaaaaé", 10, "aaaaaaaaa…"}, // é would straddle the cut
		{"bad\xffbyte", 20, "bad\uFFFDbyte"},
	} {
		if got := clip(tc.in, tc.n); got != tc.want {
			t.Errorf("clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestChart(t *testing.T) {
	t.Parallel()
	c := newChart("x", "X", []uint64{0, 5, 10})
	if c.Points != "0.0,59.0 150.0,30.0 300.0,1.0" || c.Max != 10 {
		t.Errorf("newChart([0 5 10]) = %q max %d", c.Points, c.Max)
	}
	if c := newChart("x", "X", []uint64{0, 0}); c.Points != "0.0,59.0 300.0,59.0" {
		t.Errorf("newChart(zeros) = %q", c.Points)
	}
}

// BenchmarkStatsObserve is the dashboard's cost on the request path:
// a clean request (one counter) and an offence (counter and queue).
func BenchmarkStatsObserve(b *testing.B) {
	bans := rules.NewBanList(rules.BanListConfig{})
	r := httptest.NewRequest(http.MethodGet, "/wp-login.php", nil)
	b.Run("clean", func(b *testing.B) {
		st := NewStats(StatsConfig{})
		s := &middleware.Scope{ClientIP: netip.MustParseAddr("198.51.100.1"), Host: "www.example.com"}
		b.ReportAllocs()
		for b.Loop() {
			st.Observe(r, s, 200, t0, bans)
		}
	})
	b.Run("offence", func(b *testing.B) {
		st := NewStats(StatsConfig{})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			// Run only returns when ctx ends.
			_ = st.Run(ctx)
		}()
		defer func() {
			cancel()
			<-done
		}()
		s := &middleware.Scope{ClientIP: netip.MustParseAddr("198.51.100.1"), Offence: "probe /wp-login.php"}
		b.ReportAllocs()
		for b.Loop() {
			st.Observe(r, s, 403, t0, bans)
		}
	})
	b.Run("count-parallel", func(b *testing.B) {
		st := NewStats(StatsConfig{})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				st.Count(t0, Requests)
			}
		})
	})
}

// TestStatsBlockedTotals: the totals count every blocked request since
// the start, past the hour the per-second ring keeps, and leave clean
// requests out.
func TestStatsBlockedTotals(t *testing.T) {
	t.Parallel()
	st := NewStats(StatsConfig{})
	st.Count(t0, Requests)
	st.Count(t0, Probe)
	st.Count(t0.Add(2*ringSeconds*time.Second), Probe) // the ring forgot t0
	st.Count(t0, Banned)
	st.Count(t0, numKinds+3) // out of range: other
	st.Count(t0, Log)        // a log line: no request
	want := map[Kind]uint64{Probe: 2, Banned: 1, Other: 1}
	got := st.BlockedTotals()
	if len(got) != len(blockedKinds) {
		t.Fatalf("BlockedTotals() has %d kinds, want %d", len(got), len(blockedKinds))
	}
	for _, kt := range got {
		if kt.Kind == Requests || kt.Kind == Log {
			t.Errorf("BlockedTotals() lists %s", kt.Kind)
		}
		if kt.Count != want[kt.Kind] {
			t.Errorf("BlockedTotals()[%s] = %d, want %d", kt.Kind, kt.Count, want[kt.Kind])
		}
	}
}
