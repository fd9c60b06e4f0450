package upstream

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fakeTransport answers per upstream host: refused hosts fail the dial,
// others answer 200 naming themselves. It records what each host received.
type fakeTransport struct {
	mu      sync.Mutex
	refused map[string]bool
	failed  map[string]error // other errors, after the request was sent
	hits    []string
	bodies  []string
}

func (ft *fakeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	ft.hits = append(ft.hits, req.URL.Host+req.URL.Path)
	if ft.refused[req.URL.Host] {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	if err := ft.failed[req.URL.Host]; err != nil {
		return nil, err
	}
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		ft.bodies = append(ft.bodies, string(b))
		req.Body.Close()
	}
	return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: req}, nil
}

func testPool(t *testing.T, ft *fakeTransport, now func() time.Time, urls ...string) *Pool {
	t.Helper()
	cfg := Config{FailTimeout: 10 * time.Second, MaxFails: 1, Transport: ft, Now: now,
		Latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x"})}
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		cfg.URLs = append(cfg.URLs, u)
	}
	return NewPool(cfg)
}

func outgoing(method, path, body string) *http.Request {
	var r *http.Request
	if body == "" {
		r = httptest.NewRequest(method, path, nil)
		r.Body = nil
	} else {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
	}
	r.RequestURI = ""
	return r
}

func TestPoolRoundRobin(t *testing.T) {
	t.Parallel()
	ft := &fakeTransport{}
	p := testPool(t, ft, time.Now, "http://a:1", "http://b:2", "http://c:3")
	for range 6 {
		if _, err := p.RoundTrip(outgoing("GET", "/x", "")); err != nil {
			t.Fatal(err)
		}
	}
	counts := map[string]int{}
	for _, h := range ft.hits {
		counts[h]++
	}
	for _, h := range []string{"a:1/x", "b:2/x", "c:3/x"} {
		if counts[h] != 2 {
			t.Errorf("hits = %v, want each upstream twice", counts)
		}
	}
}

func TestPoolFailover(t *testing.T) {
	t.Parallel()
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	ft := &fakeTransport{refused: map[string]bool{"a:1": true}}
	p := testPool(t, ft, clock, "http://a:1", "http://b:2")

	// A POST body survives the refused first attempt.
	for range 4 {
		if _, err := p.RoundTrip(outgoing("POST", "/post", "payload")); err != nil {
			t.Fatalf("RoundTrip with one refusing upstream: %v", err)
		}
	}
	for _, b := range ft.bodies {
		if b != "payload" {
			t.Errorf("body at the second upstream = %q, want %q", b, "payload")
		}
	}
	refusedTries := 0
	for _, h := range ft.hits {
		if strings.HasPrefix(h, "a:1") {
			refusedTries++
		}
	}
	if refusedTries != 1 {
		t.Errorf("refused upstream tried %d times within fail_timeout, want 1 (hits %v)", refusedTries, ft.hits)
	}
	// It is reported down until fail_timeout has passed, the other healthy.
	if h := p.Upstreams(); !h[0].DownUntil.Equal(now.Add(10*time.Second)) || !h[1].DownUntil.IsZero() {
		t.Errorf("Upstreams() = %+v, want a:1 down until %v and b:2 healthy", h, now.Add(10*time.Second))
	}

	// After fail_timeout it is tried again; it has recovered.
	now = now.Add(11 * time.Second)
	ft.mu.Lock()
	ft.refused = nil
	ft.hits = nil
	ft.mu.Unlock()
	for range 4 {
		if _, err := p.RoundTrip(outgoing("GET", "/", "")); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(ft.hits, " "); !strings.Contains(got, "a:1") {
		t.Errorf("hits after fail_timeout = %q, want the recovered upstream used", got)
	}
}

func TestPoolAllDown(t *testing.T) {
	t.Parallel()
	ft := &fakeTransport{refused: map[string]bool{"a:1": true, "b:2": true}}
	p := testPool(t, ft, time.Now, "http://a:1", "http://b:2")
	for range 3 {
		_, err := p.RoundTrip(outgoing("GET", "/", ""))
		var op *net.OpError
		if !errors.As(err, &op) {
			t.Fatalf("RoundTrip with all refusing = %v, want the dial error", err)
		}
	}
	// Marked-down upstreams are still tried when nothing else is left,
	// each once per request.
	if len(ft.hits) != 6 {
		t.Errorf("attempts = %d (%v), want 6", len(ft.hits), ft.hits)
	}
}

func TestTargetJoinsBasePath(t *testing.T) {
	t.Parallel()
	tests := []struct{ base, path, want string }{
		{"http://u:1", "/a/b", "/a/b"},
		{"http://u:1/", "/a", "/a"},
		{"http://u:1/app", "/a", "/app/a"},
		{"http://u:1/app/", "/a", "/app/a"},
		{"http://u:1/app", "/", "/app/"},
	}
	for _, tc := range tests {
		u, _ := url.Parse(tc.base)
		r := outgoing("GET", tc.path, "")
		target(r, u, r.URL.Path, r.URL.RawPath)
		if r.URL.Path != tc.want || r.URL.Host != u.Host || r.URL.Scheme != "http" {
			t.Errorf("target(%s, %s) = %s, want %s", tc.base, tc.path, r.URL, tc.want)
		}
	}
}

// TestPoolMaxFails: an upstream is marked down after max_fails refusals
// within fail_timeout (nginx's max_fails), never with max_fails 0.
func TestPoolMaxFails(t *testing.T) {
	for _, tc := range []struct {
		maxFails, requests int
		wantDown           bool
	}{{3, 2, false}, {3, 3, true}, {0, 10, false}} {
		ft := &fakeTransport{refused: map[string]bool{"a:1": true}}
		clock := time.Unix(1000, 0)
		p := testPool(t, ft, func() time.Time { return clock }, "http://a:1", "http://b:2")
		p.maxFails = int32(tc.maxFails)
		for range tc.requests {
			// Every request tries a first (when it is in rotation), then b.
			p.next.Store(1)
			if _, err := p.RoundTrip(outgoing("GET", "/x", "")); err != nil {
				t.Fatal(err)
			}
		}
		down := p.Upstreams()[0].DownUntil.After(clock)
		if down != tc.wantDown {
			t.Errorf("max_fails %d after %d refusals: down = %v, want %v", tc.maxFails, tc.requests, down, tc.wantDown)
		}
	}
}

// TestPoolNoResendAfterFailure: an attempt that failed after the
// upstream may have seen the request (not a refused dial) is not sent
// to another upstream, down ones included.
func TestPoolNoResendAfterFailure(t *testing.T) {
	ft := &fakeTransport{failed: map[string]error{"a:1": errors.New("connection reset by peer")}}
	clock := time.Unix(1000, 0)
	p := testPool(t, ft, func() time.Time { return clock }, "http://a:1", "http://b:2", "http://c:3")
	p.ups[2].downUntil.Store(clock.Add(time.Minute).UnixNano()) // c is down
	p.next.Store(2)                                             // a first
	_, err := p.RoundTrip(outgoing("POST", "/x", "body"))
	if err == nil || !strings.Contains(err.Error(), "reset") {
		t.Errorf("RoundTrip error = %v, want a's own", err)
	}
	if len(ft.hits) != 1 {
		t.Errorf("hits = %v, want a alone", ft.hits)
	}
}
