//go:build !race

package middleware

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"gatehouse/rules"
	"gatehouse/rules/match"
)

// TestClientIPAllocs pins the client-IP step at zero allocations: it runs
// on every request.
func TestClientIPAllocs(t *testing.T) {
	res := mustResolver(t, "10.0.0.0/8")
	xff := []string{"198.51.100.1, 10.0.0.2"}
	if n := testing.AllocsPerRun(100, func() { res.Resolve("10.0.0.1:5000", xff) }); n != 0 {
		t.Errorf("Resolve allocs = %v, want 0", n)
	}
	mw := ClientIPFrom(res)
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.1:1234"
	r.Header["X-Forwarded-For"] = xff
	r = r.WithContext(&scopeCtx{Context: r.Context()})
	w := httptest.NewRecorder()
	if n := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) }); n != 0 {
		t.Errorf("ClientIP middleware allocs = %v, want 0", n)
	}
}

// TestResolveHeaderAllocs pins the provider-header path at zero
// allocations.
func TestResolveHeaderAllocs(t *testing.T) {
	res := cdnResolver(t)
	h := http.Header{"Fastly-Client-Ip": {"198.51.100.7"}, "Cf-Connecting-Ip": {"198.18.0.1"},
		"X-Forwarded-For": {"198.18.0.1, 198.51.100.7"}}
	if n := testing.AllocsPerRun(100, func() { res.ResolveHeader("198.51.100.200:5000", h) }); n != 0 {
		t.Errorf("ResolveHeader allocs = %v, want 0", n)
	}
}

// cleanRequestAllocs is what one clean request costs the per-request
// security path (scope, client IP, ban check, canonical view, probe
// match): the Scope and the request copy that carries it, both made by
// WithScope. Every later step must add none for a path that is already
// canonical; a path that has to be rewritten (decoded, dot segments,
// ";params") costs match.Canonical one more, for the canonical copy.
// docs/performance.md quotes these numbers; a change that adds an
// allocation fails here and has to update both.
const (
	cleanRequestAllocs          = 2
	cleanRequestRewrittenAllocs = cleanRequestAllocs + 1
)

// TestCleanRequestAllocs pins the allocations of the per-request
// middleware path for a clean request: a request that passes every check
// and reaches the next handler. The path is the chain proxy builds, in
// its order, with real rules: a ban list holding bans (none for this
// client), jails, and every probe preset.
func TestCleanRequestAllocs(t *testing.T) {
	bans := rules.NewBanList(rules.BanListConfig{})
	for _, p := range []string{"198.51.100.0/24", "203.0.113.9/32", "2001:db8::/64"} {
		if _, err := bans.Ban(rules.Ban{Prefix: netip.MustParsePrefix(p), Jail: "probes", Until: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	jails, err := rules.NewJails(rules.JailsConfig{Jails: map[string]rules.JailConfig{"probes": {MaxRetry: 3}}}, bans, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := match.CompileProbes(match.ProbeConfig{Presets: match.PresetNames()})
	if err != nil {
		t.Fatal(err)
	}
	clientIP, err := ClientIP(ClientIPConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	guard, err := BanGuard(bans, nil)
	if err != nil {
		t.Fatal(err)
	}
	probes, err := ProbeBlock(ProbeBlockConfig{}, m, jails, nil)
	if err != nil {
		t.Fatal(err)
	}
	reached := 0
	final := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached++ })
	h := WithScope(clientIP(guard(CanonicalPath(nil)(probes(final)))))

	for _, tc := range []struct {
		name, target, remote, xff string
		want                      int
	}{
		{name: "direct client", target: "/assets/app/main.3f9c2a.js?v=2", remote: "203.0.113.7:50000", want: cleanRequestAllocs},
		{name: "behind a trusted proxy", target: "/index.html", remote: "10.0.0.1:50000", xff: "203.0.113.8", want: cleanRequestAllocs},
		{name: "IPv6 client", target: "/", remote: "[2001:db8:1::7]:50000", want: cleanRequestAllocs},
		{name: "path rewritten", target: "/a//b/./c/%7Euser/../page;jsessionid=1", remote: "203.0.113.7:50000", want: cleanRequestRewrittenAllocs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tc.target, nil)
			r.RemoteAddr = tc.remote
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			w := httptest.NewRecorder()
			reached = 0
			n := testing.AllocsPerRun(200, func() { h.ServeHTTP(w, r) })
			if reached == 0 || w.Code != http.StatusOK {
				t.Fatalf("%s %s: reached next %d times, status %d: not a clean request", tc.remote, tc.target, reached, w.Code)
			}
			if n != float64(tc.want) {
				t.Errorf("clean request %s from %s: allocs = %v, want %d", tc.target, tc.remote, n, tc.want)
			}
		})
	}

	// The same chain refuses a banned client and a probe, so the clean
	// rows above went through real checks.
	for _, tc := range []struct {
		target, remote string
		want           int
	}{
		{target: "/", remote: "198.51.100.20:50000", want: http.StatusForbidden},
		{target: "/wp-login.php", remote: "192.0.2.1:50000", want: http.StatusForbidden},
		{target: "/a/%2e%2e/%2e%2e/etc/passwd", remote: "192.0.2.2:50000", want: http.StatusBadRequest},
	} {
		r := httptest.NewRequest("GET", tc.target, nil)
		r.RemoteAddr = tc.remote
		w := httptest.NewRecorder()
		reached = 0
		h.ServeHTTP(w, r)
		if w.Code != tc.want || reached != 0 {
			t.Errorf("%s from %s: status %d (next reached %d times), want %d", tc.target, tc.remote, w.Code, reached, tc.want)
		}
	}
}

// TestRateLimitAllocs pins the flood limiter at zero allocations for a
// tracked client and for a new one once the table is full.
func TestRateLimitAllocs(t *testing.T) {
	b, err := NewRateBuckets(RateLimitConfig{Rate: 1e9, Capacity: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	allow := func(ip netip.Addr) {
		at := b.now().UnixNano()
		b.clients.Update(ip, func(s *tokenBucket, fresh bool) bool { return s.take(at, b.rate, b.burst, fresh) })
	}
	known := netip.MustParseAddr("203.0.113.7")
	allow(known)
	if n := testing.AllocsPerRun(200, func() { allow(known) }); n != 0 {
		t.Errorf("known client allocs = %v, want 0", n)
	}
	if n := testing.AllocsPerRun(200, func() { i++; allow(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})) }); n != 0 {
		t.Errorf("new client in a full table allocs = %v, want 0", n)
	}
}

// TestLimitAllocs pins a passing request of a limited route at zero
// allocations, for every key kind.
func TestLimitAllocs(t *testing.T) {
	for _, key := range []string{"client", "client+host", "header:X-Api-Key"} {
		h, r, w := limitBench(t, []LimitConfig{{Name: "a", Rate: 1e6, Burst: 1e9, NoDelay: true, Key: key}})
		if n := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) }); n != 0 {
			t.Errorf("Limit with key %s allocs = %v, want 0", key, n)
		}
	}
}
