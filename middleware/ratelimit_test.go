package middleware

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"gatehouse/rules"
)

func TestRateLimit(t *testing.T) {
	t.Parallel()
	jails := newTestJails(t)
	mw, err := RateLimit(RateLimitConfig{Rate: 0.001, Burst: 3, Jail: "flood",
		Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, nil, jails, nil)
	if err != nil {
		t.Fatal(err)
	}
	var reached bool
	h := chainFor(t, mw, &reached)
	get := func(remote string) int {
		reached = false
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if reached != (w.Code == http.StatusOK) {
			t.Errorf("from %s: status %d but reached = %v", remote, w.Code, reached)
		}
		if w.Code == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		return w.Code
	}
	for i := range 3 {
		if code := get("203.0.113.1:1000"); code != 200 {
			t.Fatalf("request %d within the burst: %d", i, code)
		}
	}
	if code := get("203.0.113.1:1000"); code != http.StatusTooManyRequests {
		t.Errorf("over the burst: %d, want 429", code)
	}
	if got := jails.Offences("flood"); got != 1 {
		t.Errorf("flood offences = %d, want 1", got)
	}
	// Another client has its own bucket; an IPv6 /64 shares one.
	if code := get("203.0.113.2:1000"); code != 200 {
		t.Errorf("another client: %d, want 200", code)
	}
	for i := range 3 {
		get("[2001:db8::" + string(rune('1'+i)) + "]:1000")
	}
	if code := get("[2001:db8::99]:1000"); code != http.StatusTooManyRequests {
		t.Errorf("fourth request from one /64: %d, want 429", code)
	}
	// Allowed clients are never limited.
	for range 10 {
		if code := get("192.0.2.7:1000"); code != 200 {
			t.Fatalf("allowed client: %d, want 200", code)
		}
	}
}

func TestRateLimitConfigErrors(t *testing.T) {
	t.Parallel()
	if _, err := RateLimit(RateLimitConfig{Jail: "flood"}, nil, newTestJails(t), nil); err == nil {
		t.Error("RateLimit without a rate = nil error")
	}
	if _, err := RateLimit(RateLimitConfig{Rate: 1}, nil, newTestJails(t), nil); err == nil {
		t.Error("RateLimit without a jail = nil error")
	}
}

func BenchmarkRateLimit(b *testing.B) {
	j, err := rules.NewJails(rules.JailsConfig{}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	mw, err := RateLimit(RateLimitConfig{Rate: 1e9, Jail: "flood"}, nil, j, nil)
	if err != nil {
		b.Fatal(err)
	}
	h := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/", nil)
	c := &scopeCtx{Context: r.Context()}
	c.scope.ClientIP = netip.MustParseAddr("203.0.113.7")
	r = r.WithContext(c)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}

// TestRateBucketsSurviveReload pins the reload rule for flood
// jails: buckets made for the same limits are kept (a flooding client gets
// no fresh burst from a reload), new limits start new buckets.
func TestRateBucketsSurviveReload(t *testing.T) {
	t.Parallel()
	cfg := RateLimitConfig{Rate: 0.001, Burst: 2, Jail: "flood"}
	b, err := NewRateBuckets(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	jails := newTestJails(t)
	serve := func(b *RateBuckets) int {
		mw, err := RateLimit(cfg, b, jails, nil)
		if err != nil {
			t.Fatal(err)
		}
		h := WithScope(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ScopeFrom(r).ClientIP = netip.MustParseAddr("198.51.100.1")
			mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})).ServeHTTP(w, r)
		}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		return w.Code
	}
	for range 2 {
		serve(b)
	}
	kept, err := NewRateBuckets(cfg, b)
	if err != nil || kept != b {
		t.Fatalf("NewRateBuckets(same limits, prev) = %p, %v; want prev %p", kept, err, b)
	}
	if code := serve(kept); code != http.StatusTooManyRequests {
		t.Errorf("after the burst and a reload with the same limits: %d, want 429", code)
	}
	cfg.Burst = 3
	fresh, err := NewRateBuckets(cfg, b)
	if err != nil || fresh == b {
		t.Fatalf("NewRateBuckets(new burst, prev) = %p, %v; want new buckets", fresh, err)
	}
	if code := serve(fresh); code != http.StatusOK {
		t.Errorf("with new limits: %d, want 200", code)
	}
}

// TestRateLimitRefills pins the token bucket's arithmetic against a fake
// clock: a new client has the full burst, a token comes back every
// 1/Rate, and an idle client refills to Burst, never beyond.
func TestRateLimitRefills(t *testing.T) {
	t.Parallel()
	at := time.Unix(1_700_000_000, 0)
	cfg := RateLimitConfig{Rate: 2, Burst: 3, Jail: "flood", now: func() time.Time { return at }}
	mw, err := RateLimit(cfg, nil, newTestJails(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	var reached bool
	h := chainFor(t, mw, &reached)
	get := func() int {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "203.0.113.9:1000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	for _, step := range []struct {
		wait time.Duration
		want []int
	}{
		{0, []int{200, 200, 200, 429}},            // the burst, then empty
		{400 * time.Millisecond, []int{429}},      // 0.8 of a token
		{100 * time.Millisecond, []int{200, 429}}, // 1 token at 2/s
		{time.Hour, []int{200, 200, 200, 429}},    // refilled to Burst, not beyond
	} {
		at = at.Add(step.wait)
		for i, want := range step.want {
			if got := get(); got != want {
				t.Fatalf("after %v more, request %d = %d, want %d", step.wait, i, got, want)
			}
		}
	}
}
