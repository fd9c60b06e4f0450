package middleware

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"gatehouse/rules"
)

// nginxZone is ngx_http_limit_req_module.c transcribed as directly as
// Go allows (one zone, keys by name, no expiry), the reference the
// Limiter is compared with.
type nginxZone struct {
	rate  uint64 // ctx->rate
	nodes map[string]*nginxNode
	node  *nginxNode // ctx->node
}

type nginxNode struct {
	last   uint64
	excess uint64
	count  uint64
}

type nginxLimit struct {
	zone         *nginxZone
	burst, delay uint64
}

const (
	ngxOK = iota
	ngxAgain
	ngxBusy
)

// lookup is ngx_http_limit_req_lookup.
func (z *nginxZone) lookup(l *nginxLimit, key string, now uint64, ep *uint64, account bool) int {
	if lr, ok := z.nodes[key]; ok {
		ms := int64(now - lr.last)
		if ms < -60000 {
			ms = 1
		} else if ms < 0 {
			ms = 0
		}
		excess := int64(lr.excess) - int64(z.rate)*ms/1000 + 1000
		if excess < 0 {
			excess = 0
		}
		*ep = uint64(excess)
		if uint64(excess) > l.burst {
			return ngxBusy
		}
		if account {
			lr.excess = uint64(excess)
			if ms != 0 {
				lr.last = now
			}
			return ngxOK
		}
		lr.count++
		z.node = lr
		return ngxAgain
	}
	*ep = 0
	lr := &nginxNode{}
	z.nodes[key] = lr
	if account {
		lr.last = now
		return ngxOK
	}
	lr.last, lr.count = 0, 1
	z.node = lr
	return ngxAgain
}

// handler is ngx_http_limit_req_handler and ngx_http_limit_req_account
// for one request: refused (index), or the delay in ms.
func nginxHandler(limits []*nginxLimit, keys []string, now uint64) (refused int, delay uint64) {
	var excess uint64
	rc := ngxOK
	n := 0
	for n = 0; n < len(limits); n++ {
		rc = limits[n].zone.lookup(limits[n], keys[n], now, &excess, n == len(limits)-1)
		if rc != ngxAgain {
			break
		}
	}
	if rc == ngxBusy {
		for i := range n {
			if z := limits[i].zone; z.node != nil {
				z.node.count--
				z.node = nil
			}
		}
		return n, 0
	}
	limit := limits[n]
	var maxDelay uint64
	if excess > limit.delay {
		maxDelay = (excess - limit.delay) * 1000 / limit.zone.rate
	}
	for n--; n >= 0; n-- {
		z := limits[n].zone
		lr := z.node
		if lr == nil {
			continue
		}
		ms := int64(now - lr.last)
		if ms < -60000 {
			ms = 1
		} else if ms < 0 {
			ms = 0
		}
		e := int64(lr.excess) - int64(z.rate)*ms/1000 + 1000
		if e < 0 {
			e = 0
		}
		if ms != 0 {
			lr.last = now
		}
		lr.excess = uint64(e)
		lr.count--
		z.node = nil
		if uint64(e) <= limits[n].delay {
			continue
		}
		if d := (uint64(e) - limits[n].delay) * 1000 / z.rate; d > maxDelay {
			maxDelay = d
		}
	}
	return -1, maxDelay
}

func mustLimiter(t testing.TB, cfg LimitConfig) *Limiter {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	l, err := NewLimiter(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// at is a time n ms after a fixed instant.
func at(ms int64) time.Time { return time.UnixMilli(1_700_000_000_000 + ms) }

// TestLimiterNginx walks one key through nginx's arithmetic at the
// edges: the first request of a key passes at excess 0, the next one in
// the same ms has excess 1000, a refused request counts nothing, and a
// delay is (excess - delay)/rate.
func TestLimiterNginx(t *testing.T) {
	type step struct {
		ms   int64
		ok   bool
		wait time.Duration
	}
	tests := []struct {
		name  string
		cfg   LimitConfig
		steps []step
	}{
		{"1r/s no burst", LimitConfig{Rate: 1}, []step{
			{0, true, 0}, {0, false, time.Second}, {999, false, time.Millisecond}, {1000, true, 0}, {1500, false, 500 * time.Millisecond},
		}},
		{"burst 2 nodelay", LimitConfig{Rate: 1, Burst: 2, NoDelay: true}, []step{
			// excess 0, 1000, 2000; then 3000 > 2000 refused, and the
			// refusal did not count: at 1000 ms the excess is 2000 again.
			{0, true, 0}, {0, true, 0}, {0, true, 0}, {0, false, time.Second}, {1000, true, 0}, {1000, false, time.Second},
		}},
		{"burst 3 delayed", LimitConfig{Rate: 2, Burst: 3}, []step{
			// rate 2000/s: excess 1000 waits 500 ms, 2000 waits 1 s.
			{0, true, 0}, {0, true, 500 * time.Millisecond}, {0, true, time.Second}, {0, true, 1500 * time.Millisecond}, {0, false, 500 * time.Millisecond},
		}},
		{"delay=1", LimitConfig{Rate: 1, Burst: 3, Delay: 1}, []step{
			{0, true, 0}, {0, true, 0}, {0, true, time.Second}, {0, true, 2 * time.Second}, {0, false, time.Second},
		}},
		{"30r/m", LimitConfig{Rate: 0.5, Window: 60, Quota: 30}, []step{
			// 500 thousandths per second: 1000 drain in 2 s.
			{0, true, 0}, {1999, false, time.Millisecond}, {2000, true, 0},
		}},
		{"1r/m truncates as nginx", LimitConfig{Rate: 1.0 / 60, Window: 60, Quota: 1}, []step{
			// 1000/60 = 16 per second: the key drains in 62.5 s, not 60.
			{0, true, 0}, {60000, false, 2500 * time.Millisecond}, {62500, true, 0},
		}},
		{"clock back", LimitConfig{Rate: 1, Burst: 1, NoDelay: true}, []step{
			// Less than a minute back: no time passed. More: one ms.
			{10000, true, 0}, {9000, true, 0}, {8000, false, time.Second}, {-100000, false, 999 * time.Millisecond},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := mustLimiter(t, tc.cfg)
			k := l.Key(netip.MustParseAddr("192.0.2.1"), "", "")
			for i, s := range tc.steps {
				ok, wait := l.Take(k, at(s.ms))
				if ok != s.ok || wait != s.wait {
					t.Fatalf("step %d: Take(at %d ms) = %v, %v, want %v, %v", i, s.ms, ok, wait, s.ok, s.wait)
				}
			}
		})
	}
}

// TestLimiterMatchesNginx replays random request sequences, one and
// several limits per request, through TakeAll and through the
// transcription of nginx's module, and requires the same answer and
// delay for every request.
func TestLimiterMatchesNginx(t *testing.T) {
	rng := rand.New(rand.NewPCG(18, 2))
	keys := []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}
	for round := range 300 {
		nl := 1 + rng.IntN(3)
		var ls []*Limiter
		var ngx []*nginxLimit
		for range nl {
			cfg := LimitConfig{Name: "l", Burst: rng.IntN(6), Delay: rng.IntN(4), NoDelay: rng.IntN(3) == 0}
			if rng.IntN(2) == 0 {
				cfg.Window, cfg.Quota = 1, float64(1+rng.IntN(20))
				cfg.Rate = cfg.Quota
			} else {
				cfg.Window, cfg.Quota = 60, float64(1+rng.IntN(120))
				cfg.Rate = cfg.Quota / 60
			}
			l := mustLimiter(t, cfg)
			ls = append(ls, l)
			nlim := &nginxLimit{zone: &nginxZone{rate: uint64(l.t.rate), nodes: map[string]*nginxNode{}}, burst: uint64(cfg.Burst) * 1000, delay: uint64(cfg.Delay) * 1000}
			if cfg.NoDelay {
				nlim.delay = uint64(1<<63-1) / 1000 * 1000
			}
			ngx = append(ngx, nlim)
		}
		now := int64(1_700_000_000_000)
		for step := range 200 {
			switch rng.IntN(10) {
			case 0:
				now -= int64(rng.IntN(120000)) // the clock goes back
			case 1, 2, 3:
				// same ms
			default:
				now += int64(rng.IntN(700))
			}
			key := keys[rng.IntN(len(keys))]
			ks := make([]string, nl)
			tks := make([]rules.TableKey, nl)
			for i := range nl {
				ks[i] = key
				tks[i] = ls[i].Key(netip.MustParseAddr(key), "", "")
			}
			wantRefused, wantDelay := nginxHandler(ngx, ks, uint64(now))
			gotRefused, gotWait := TakeAll(ls, tks, time.UnixMilli(now))
			if gotRefused != wantRefused || (wantRefused < 0 && gotWait != time.Duration(wantDelay)*time.Millisecond) {
				t.Fatalf("round %d step %d (%d limits, key %s, t=%d): TakeAll = %d, %v; nginx = %d, %d ms",
					round, step, nl, key, now, gotRefused, gotWait, wantRefused, wantDelay)
			}
		}
	}
}

func TestNewLimiterErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     LimitConfig
		wantErr string
	}{
		{"no name", LimitConfig{Rate: 1}, "no name"},
		{"no rate", LimitConfig{Name: "a"}, "rate 0 must be greater than 0"},
		{"bad key", LimitConfig{Name: "a", Rate: 1, Key: "cookie:x"}, `key "cookie:x" is not client`},
		{"bad header", LimitConfig{Name: "a", Rate: 1, Key: "header:"}, `key "header:" is not`},
		{"bad status", LimitConfig{Name: "a", Rate: 1, Status: 302}, "status 302 is not 400-599"},
		{"negative burst", LimitConfig{Name: "a", Rate: 1, Burst: -1}, "must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewLimiter(tc.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewLimiter(%+v) = %v, want error containing %q", tc.cfg, err, tc.wantErr)
			}
		})
	}
}

// TestNewLimiterKept pins that a reload keeps the keys of a limit whose
// arithmetic is unchanged (no fresh burst), and starts afresh otherwise.
func TestNewLimiterKept(t *testing.T) {
	cfg := LimitConfig{Name: "login", Rate: 1}
	old := mustLimiter(t, cfg)
	k := old.Key(netip.MustParseAddr("192.0.2.1"), "", "")
	if ok, _ := old.Take(k, at(0)); !ok {
		t.Fatal("first request refused")
	}
	cfg.Status, cfg.Jail = 503, "limits" // not the arithmetic
	same, err := NewLimiter(cfg, old)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := same.Take(same.Key(netip.MustParseAddr("192.0.2.1"), "", ""), at(0)); ok {
		t.Error("after a reload with the same rate, the second request passed: the keys were not kept")
	}
	cfg.Burst = 1
	changed, err := NewLimiter(cfg, old)
	if err != nil {
		t.Fatal(err)
	}
	if changed.t == old.t {
		t.Error("a new burst kept the old table")
	}
}

// TestLimiterKeys pins what each key kind counts together.
func TestLimiterKeys(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	v6a, v6b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	tests := []struct {
		name      string
		key       string
		k1, k2    func(l *Limiter) rules.TableKey
		wantShare bool
	}{
		{"client", "client", func(l *Limiter) rules.TableKey { return l.Key(a, "x", "k") }, func(l *Limiter) rules.TableKey { return l.Key(a, "y", "j") }, true},
		{"clients differ", "client", func(l *Limiter) rules.TableKey { return l.Key(a, "", "") }, func(l *Limiter) rules.TableKey { return l.Key(b, "", "") }, false},
		{"ipv6 /64", "client", func(l *Limiter) rules.TableKey { return l.Key(v6a, "", "") }, func(l *Limiter) rules.TableKey { return l.Key(v6b, "", "") }, true},
		{"mapped ipv4", "client", func(l *Limiter) rules.TableKey { return l.Key(a, "", "") }, func(l *Limiter) rules.TableKey { return l.Key(netip.AddrFrom16(a.As16()), "", "") }, true},
		{"client+host", "client+host", func(l *Limiter) rules.TableKey { return l.Key(a, "a.example.com", "") }, func(l *Limiter) rules.TableKey { return l.Key(a, "b.example.com", "") }, false},
		{"client+host same", "client+host", func(l *Limiter) rules.TableKey { return l.Key(a, "a.example.com", "") }, func(l *Limiter) rules.TableKey { return l.Key(a, "a.example.com", "") }, true},
		{"header across clients", "header:X-Api-Key", func(l *Limiter) rules.TableKey { return l.Key(a, "", "k1") }, func(l *Limiter) rules.TableKey { return l.Key(b, "", "k1") }, true},
		{"header values differ", "header:X-Api-Key", func(l *Limiter) rules.TableKey { return l.Key(a, "", "k1") }, func(l *Limiter) rules.TableKey { return l.Key(a, "", "k2") }, false},
		{"no header by client", "header:X-Api-Key", func(l *Limiter) rules.TableKey { return l.Key(a, "", "") }, func(l *Limiter) rules.TableKey { return l.Key(b, "", "") }, false},
		{"no header is not an empty key", "header:X-Api-Key", func(l *Limiter) rules.TableKey { return l.Key(a, "", "") }, func(l *Limiter) rules.TableKey { return l.Key(a, "", "k1") }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := mustLimiter(t, LimitConfig{Rate: 1, Key: tc.key})
			if got := tc.k1(l) == tc.k2(l); got != tc.wantShare {
				t.Errorf("same key = %v, want %v", got, tc.wantShare)
			}
		})
	}
}

// limitChain is Limit behind WithScope and a fixed client address, with
// an upstream that counts what it served.
func limitChain(t *testing.T, ls []*Limiter, jails *rules.Jails) (http.Handler, *atomic.Int64) {
	t.Helper()
	var served atomic.Int64
	mw, err := Limit(ls, jails, nil)
	if err != nil {
		t.Fatal(err)
	}
	inner := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.Add(1) }))
	return WithScope(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := ScopeFrom(r)
		addr, _ := netip.ParseAddrPort(r.RemoteAddr)
		s.ClientIP, s.RequestHost = addr.Addr(), r.Host
		inner.ServeHTTP(w, r)
		if code, got := w.(*httptest.ResponseRecorder).Code, ScopeFrom(r).Offence; code != http.StatusOK && code != 499 && got != "limit" {
			t.Errorf("refused request's offence = %q, want %q", got, "limit")
		}
	})), &served
}

func get(h http.Handler, client, path string, hdr ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", path, nil)
	r.RemoteAddr = client + ":1234"
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestLimitRefusal(t *testing.T) {
	l := mustLimiter(t, LimitConfig{Name: "login", Rate: 1, Window: 1, Quota: 1, Burst: 2, NoDelay: true})
	h, served := limitChain(t, []*Limiter{l}, nil)
	for i := range 3 {
		if w := get(h, "192.0.2.1", "/login"); w.Code != 200 || w.Header().Get("Retry-After") != "" {
			t.Fatalf("request %d: %d Retry-After %q, want 200 and none", i, w.Code, w.Header().Get("Retry-After"))
		}
	}
	w := get(h, "192.0.2.1", "/login")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("4th request = %d, want 429", w.Code)
	}
	for name, want := range map[string]string{
		"Retry-After":      "1",
		"RateLimit-Policy": `"login";q=1;w=1;gatehouse-burst=2`,
		"RateLimit":        `"login";r=0;t=1`,
	} {
		if got := w.Header().Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if served.Load() != 3 {
		t.Errorf("served %d, want 3", served.Load())
	}
	if w := get(h, "192.0.2.2", "/login"); w.Code != 200 {
		t.Errorf("another client = %d, want 200", w.Code)
	}
}

// TestLimitStatusAndJail pins the configured status and that refusals
// are offences that ban: the jail bans after maxretry refusals.
func TestLimitStatusAndJail(t *testing.T) {
	bans := rules.NewBanList(rules.BanListConfig{})
	jails, err := rules.NewJails(rules.JailsConfig{Jails: map[string]rules.JailConfig{"limits": {MaxRetry: 3, FindTime: time.Minute, BanTime: time.Hour}}}, bans, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := mustLimiter(t, LimitConfig{Name: "api", Rate: 1, Status: 503, Jail: "limits"})
	h, _ := limitChain(t, []*Limiter{l}, jails)
	get(h, "192.0.2.9", "/")
	for i := range 3 {
		if w := get(h, "192.0.2.9", "/"); w.Code != 503 {
			t.Fatalf("refusal %d = %d, want 503", i, w.Code)
		}
	}
	if _, ok := bans.Lookup(netip.MustParseAddr("192.0.2.9")); !ok {
		t.Error("client not banned after 3 refusals with maxretry 3")
	}
	if n := jails.Offences("limits"); n != 3 {
		t.Errorf("offences = %d, want 3", n)
	}
}

func TestLimitAllow(t *testing.T) {
	l := mustLimiter(t, LimitConfig{Rate: 1, Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	h, _ := limitChain(t, []*Limiter{l}, nil)
	for i := range 5 {
		if w := get(h, "10.1.2.3", "/"); w.Code != 200 {
			t.Fatalf("allowed client request %d = %d, want 200", i, w.Code)
		}
	}
}

func TestLimitHeaderKey(t *testing.T) {
	l := mustLimiter(t, LimitConfig{Rate: 1, Key: "header:x-api-key"})
	h, _ := limitChain(t, []*Limiter{l}, nil)
	if w := get(h, "192.0.2.1", "/", "X-Api-Key", "k1"); w.Code != 200 {
		t.Fatalf("k1 first = %d", w.Code)
	}
	if w := get(h, "192.0.2.2", "/", "X-Api-Key", "k1"); w.Code != 429 {
		t.Errorf("k1 from another client = %d, want 429: the key counts, not the client", w.Code)
	}
	if w := get(h, "192.0.2.1", "/", "X-Api-Key", "k2"); w.Code != 200 {
		t.Errorf("k2 = %d, want 200", w.Code)
	}
	if w := get(h, "192.0.2.1", "/"); w.Code != 200 {
		t.Errorf("no key = %d, want 200: counted by client apart from the keys", w.Code)
	}
	if w := get(h, "192.0.2.1", "/"); w.Code != 429 {
		t.Errorf("no key again = %d, want 429", w.Code)
	}
}

// TestLimitSeveral pins nginx's rule for several limits: a refusal by
// the second leaves the first uncounted.
func TestLimitSeveral(t *testing.T) {
	wide := mustLimiter(t, LimitConfig{Name: "wide", Rate: 1, Burst: 1, NoDelay: true})
	narrow := mustLimiter(t, LimitConfig{Name: "narrow", Rate: 1, Key: "client+host"})
	h, _ := limitChain(t, []*Limiter{wide, narrow}, nil)
	r := func(host string) int {
		req := httptest.NewRequest("GET", "http://"+host+"/", nil)
		req.RemoteAddr = "192.0.2.1:1"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	if c := r("a.example.com"); c != 200 {
		t.Fatalf("first = %d", c)
	}
	if c := r("a.example.com"); c != 429 {
		t.Fatalf("second on the same host = %d, want 429 by narrow", c)
	}
	// wide holds excess 0 (the refusal did not count), so it has room
	// for two more: both hosts new to narrow pass.
	if c := r("b.example.com"); c != 200 {
		t.Errorf("b = %d, want 200", c)
	}
	if c := r("c.example.com"); c != 429 {
		t.Errorf("c = %d, want 429 by wide (excess 2000 > burst 1000)", c)
	}
}

// TestLimitDelay pins that a request over the rate without nodelay
// waits its delay and is then served, and that a client that leaves
// while it waits is not served.
func TestLimitDelay(t *testing.T) {
	// The fake clock of a synctest bubble: the wait is exactly the
	// rate's 50 ms, whatever the machine's load.
	synctest.Test(t, func(t *testing.T) {
		l := mustLimiter(t, LimitConfig{Rate: 20, Burst: 5})
		h, _ := limitChain(t, []*Limiter{l}, nil)
		get(h, "192.0.2.1", "/")
		start := time.Now()
		if w := get(h, "192.0.2.1", "/"); w.Code != 200 {
			t.Fatalf("delayed request = %d, want 200", w.Code)
		}
		if d := time.Since(start); d != 50*time.Millisecond {
			t.Errorf("second request at 20r/s served after %v, want 50 ms", d)
		}
	})
	l := mustLimiter(t, LimitConfig{Rate: 20, Burst: 5})
	h, served := limitChain(t, []*Limiter{l}, nil)
	get(h, "192.0.2.1", "/")
	get(h, "192.0.2.1", "/")
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequestWithContext(ctx, "GET", "/", nil)
	r.RemoteAddr = "192.0.2.1:1"
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(w, r)
	}()
	cancel()
	<-done
	if w.Code != 499 || served.Load() != 2 {
		t.Errorf("left while waiting: %d, served %d; want 499 and 2 served", w.Code, served.Load())
	}
}

// downShared is a fleet that cannot answer.
type downShared struct{ calls atomic.Int64 }

func (d *downShared) TakeShared(context.Context, string, int64, int64, int64) (bool, time.Duration, error) {
	d.calls.Add(1)
	return false, 0, errors.New("redis down")
}

// TestLimitSharedFallback pins that a shared limit whose fleet cannot
// answer is counted by the node itself.
func TestLimitSharedFallback(t *testing.T) {
	fleet := &downShared{}
	l := mustLimiter(t, LimitConfig{Rate: 1, Shared: fleet})
	h, _ := limitChain(t, []*Limiter{l}, nil)
	if w := get(h, "192.0.2.1", "/"); w.Code != 200 {
		t.Fatalf("first = %d", w.Code)
	}
	if w := get(h, "192.0.2.1", "/"); w.Code != 429 {
		t.Errorf("second = %d, want 429 from the local fallback", w.Code)
	}
	if fleet.calls.Load() != 2 {
		t.Errorf("fleet asked %d times, want 2", fleet.calls.Load())
	}
}

func TestSFString(t *testing.T) {
	for in, want := range map[string]string{`login`: `"login"`, `a"b\c`: `"a\"b\\c"`, "é\n": `"???"`} {
		if got := sfString(in); got != want {
			t.Errorf("sfString(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLimitKeyEvasion: a key header sent twice counts by client (an
// upstream may believe the second value), and client+host counts a
// wildcard host's names as one host.
func TestLimitKeyEvasion(t *testing.T) {
	l := mustLimiter(t, LimitConfig{Rate: 1, Key: "header:x-api-key"})
	h, _ := limitChain(t, []*Limiter{l}, nil)
	twice := func(client, a, b string) int {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = client + ":1234"
		r.Header["X-Api-Key"] = []string{a, b}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if code := twice("192.0.2.1", "fresh1", "real"); code != 200 {
		t.Fatalf("first = %d", code)
	}
	if code := twice("192.0.2.1", "fresh2", "real"); code != 429 {
		t.Errorf("a second request with a fresh first value = %d, want 429 (counted by client)", code)
	}

	ch := mustLimiter(t, LimitConfig{Rate: 1, Key: "client+host"})
	mw, err := Limit([]*Limiter{ch}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	inner := mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	hw := WithScope(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := ScopeFrom(r)
		s.ClientIP, s.RequestHost, s.Host = netip.MustParseAddr("192.0.2.5"), r.Host, "*.wild.example"
		inner.ServeHTTP(w, r)
	}))
	for i, host := range []string{"a.wild.example", "b.wild.example"} {
		r := httptest.NewRequest("GET", "http://"+host+"/", nil)
		w := httptest.NewRecorder()
		hw.ServeHTTP(w, r)
		if want := []int{200, 429}[i]; w.Code != want {
			t.Errorf("%s = %d, want %d: one wildcard host is one host", host, w.Code, want)
		}
	}
}
