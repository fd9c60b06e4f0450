package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gatehouse/rules/fleet/fleettest"
)

// limitAnswer is what a client saw of one request.
type limitAnswer struct {
	status  int
	header  http.Header
	elapsed time.Duration
}

// limitGet sends GET path on host to g as client ip (X-Forwarded-For
// from the trusted loopback), with extra headers as name, value pairs.
func limitGet(t *testing.T, g *gateway, host, ip, path string, hdr ...string) limitAnswer {
	t.Helper()
	req, err := g.newRequest(t.Context(), http.MethodGet, host, path, nil)
	if err != nil {
		t.Error(err)
		return limitAnswer{}
	}
	req.Header.Set("X-Forwarded-For", ip)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	start := time.Now()
	resp, _, err := g.do(req)
	if err != nil {
		// Called from goroutines too: no Fatal.
		t.Errorf("GET %s%s as %s: %v", host, path, ip, err)
		return limitAnswer{}
	}
	return limitAnswer{status: resp.StatusCode, header: resp.Header, elapsed: time.Since(start)}
}

// TestNamedLimits drives limits.rates through the binary: a login limit
// with nodelay answers its burst at once and then 429 with Retry-After
// and the RateLimit headers, and its jail bans the client after
// repeated refusals; a limit without nodelay makes requests over the
// rate wait instead; a header key counts an API key across clients and
// answers its own status.
func TestNamedLimits(t *testing.T) {
	t.Parallel()
	up := newEchoUpstream(t, "app")
	g := startGateway(t, gatewayConfig(fmt.Sprintf(`trusted_proxies: [127.0.0.1/32]
jails:
  limited: {maxretry: 3, findtime: 10m, bantime: 1h}
limits:
  rates:
    login: {rate: 1r/m, burst: 2, delay: nodelay, jail: limited}
    slow: {rate: 5r/s, burst: 3}
    api: {rate: 1r/m, key: "header:X-Api-Key", status: 503}
hosts:
  - match: [app.test]
    upstreams: [%s]
    routes:
      - {paths: [/login], limit: login}
      - {paths: [/slow/], limit: slow}
      - {paths: [/api/], limit: api}
`, up.URL())))

	// login: burst 2 with nodelay, at 1r/m: three answered at once (no
	// 60 s wait, which a limit without nodelay would impose), then 429.
	const client = "198.51.100.10"
	for i := range 3 {
		if a := limitGet(t, g, "app.test", client, "/login"); a.status != http.StatusOK || a.elapsed > 30*time.Second {
			t.Fatalf("login request %d = %d after %v, want 200 at once", i+1, a.status, a.elapsed)
		}
	}
	a := limitGet(t, g, "app.test", client, "/login")
	if a.status != http.StatusTooManyRequests {
		t.Fatalf("4th login request = %d, want 429", a.status)
	}
	// At 1000/60 = 16 thousandths of a request per second (nginx's
	// rounding), the stored excess of 2000 must drain 1000 before a
	// request fits the burst again: 62.5 s, rounded up.
	retry, err := strconv.Atoi(a.header.Get("Retry-After"))
	if err != nil || retry < 50 || retry > 63 {
		t.Errorf("Retry-After = %q, want 63 seconds less the time the requests took", a.header.Get("Retry-After"))
	}
	if got, want := a.header.Get("RateLimit-Policy"), `"login";q=1;w=60;gatehouse-burst=2`; got != want {
		t.Errorf("RateLimit-Policy = %q, want %q", got, want)
	}
	if got, want := a.header.Get("RateLimit"), `"login";r=0;t=`+a.header.Get("Retry-After"); got != want {
		t.Errorf("RateLimit = %q, want %q", got, want)
	}
	// The limit is the route's: the rest of the host is not limited,
	// and another client has its own count.
	if a := limitGet(t, g, "app.test", client, "/"); a.status != http.StatusOK {
		t.Errorf("GET / after the login limit = %d, want 200", a.status)
	}
	if a := limitGet(t, g, "app.test", "198.51.100.11", "/login"); a.status != http.StatusOK {
		t.Errorf("another client's login = %d, want 200", a.status)
	}
	// Two more refusals make three offences: the jail bans the client
	// everywhere.
	for range 2 {
		limitGet(t, g, "app.test", client, "/login")
	}
	waitUntil(t, g, waitTimeout, "the client banned by the limited jail", func() bool {
		return limitGet(t, g, "app.test", client, "/").status == http.StatusForbidden
	})

	// slow: 5r/s, burst 3, no nodelay: of 5 requests at once, one is
	// answered at once, three wait 200, 400 and 600 ms, one is refused.
	var wg sync.WaitGroup
	answers := make([]limitAnswer, 5)
	for i := range answers {
		wg.Go(func() { answers[i] = limitGet(t, g, "app.test", "198.51.100.20", "/slow/x") })
	}
	wg.Wait()
	var ok, refused int
	var slowest time.Duration
	for _, a := range answers {
		switch a.status {
		case http.StatusOK:
			ok++
			slowest = max(slowest, a.elapsed)
		case http.StatusTooManyRequests:
			refused++
		}
	}
	if ok != 4 || refused != 1 {
		t.Errorf("5 requests at once at 5r/s burst 3: %d passed, %d refused; want 4 and 1", ok, refused)
	}
	// The last admitted waited its turn: 600 ms less the few ms the
	// requests took to arrive.
	if slowest < 500*time.Millisecond {
		t.Errorf("slowest admitted request took %v; without nodelay it waits about 600 ms", slowest)
	}

	// api: counted by X-Api-Key across clients; answers 503.
	if a := limitGet(t, g, "app.test", "198.51.100.30", "/api/v1", "X-Api-Key", "key-one"); a.status != http.StatusOK {
		t.Fatalf("key-one first = %d, want 200", a.status)
	}
	if a := limitGet(t, g, "app.test", "198.51.100.31", "/api/v1", "X-Api-Key", "key-one"); a.status != http.StatusServiceUnavailable {
		t.Errorf("key-one from another client = %d, want 503: the key is counted, not the client", a.status)
	}
	if a := limitGet(t, g, "app.test", "198.51.100.31", "/api/v1", "X-Api-Key", "key-two"); a.status != http.StatusOK {
		t.Errorf("key-two = %d, want 200", a.status)
	}
	if a := limitGet(t, g, "app.test", "198.51.100.32", "/api/v1"); a.status != http.StatusOK {
		t.Errorf("no key = %d, want 200 (counted by client)", a.status)
	}
	if a := limitGet(t, g, "app.test", "198.51.100.32", "/api/v1"); a.status != http.StatusServiceUnavailable {
		t.Errorf("no key, same client again = %d, want 503", a.status)
	}
}

// TestSharedLimitFleet runs a shared limit of 10 r/s (no burst) on a
// host of three nodes, each hammered by its own clients' goroutines for
// three seconds with one client address: together they admit 10 ± 1 a
// second, where three independent limits would admit 30.
func TestSharedLimitFleet(t *testing.T) {
	t.Parallel()
	r := fleettest.Start(t)
	up := newEchoUpstream(t, "app")
	var nodes []*gateway
	for _, name := range []string{"a", "b", "c"} {
		nodes = append(nodes, startGateway(t, fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
state_dir: %s
trusted_proxies: [127.0.0.1/32]
`+opsAdmin+`limits:
  rates:
    fleet10: {rate: 10r/s, delay: nodelay, shared: true}
hosts:
  - match: [www.test]
    upstreams: [%s]
    limit: fleet10
fleet:
  redis: redis://%s/0
  prefix: limits
  node: %s
`, filepath.Join(t.TempDir(), "state"), up.URL(), r.Addr, name)))
	}
	for _, g := range nodes {
		waitUntil(t, g, startTimeout, "redis up", func() bool { return g.metric(t, "gatehouse_fleet_redis_up") == 1 })
	}
	const run = 3 * time.Second
	var passed, refused, other atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, g := range nodes {
		for range 4 {
			wg.Go(func() {
				for time.Since(start) < run {
					switch limitGet(t, g, "www.test", "203.0.113.40", "/").status {
					case http.StatusOK:
						passed.Add(1)
					case http.StatusTooManyRequests:
						refused.Add(1)
					default:
						other.Add(1)
					}
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	// The first request passes at excess 0; each later one needs 100 ms
	// since the last that passed.
	perSecond := float64(passed.Load()-1) / elapsed.Seconds()
	t.Logf("shared 10r/s over 3 nodes: %d passed, %d refused in %v: %.2f/s", passed.Load(), refused.Load(), elapsed, perSecond)
	if other.Load() != 0 {
		t.Errorf("%d answers neither 200 nor 429", other.Load())
	}
	if refused.Load() == 0 {
		t.Error("no request was refused: the load did not reach the limit")
	}
	if perSecond < 9 || perSecond > 11 {
		t.Errorf("the fleet admitted %.2f requests a second, want 10 ± 1", perSecond)
	}
}
