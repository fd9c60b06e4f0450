package upstream

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"gatehouse/middleware"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Pool.
type Config struct {
	// URLs are the host's upstreams, at least one and at most 64 (the
	// health bits of a request fit one word; config.MaxUpstreams).
	URLs []*url.URL
	// FailTimeout is how long an upstream is skipped once marked down,
	// and the window its failures are counted in (nginx's fail_timeout).
	FailTimeout time.Duration
	// MaxFails is how many failed attempts (a refused or timed-out
	// connection, an answer that timed out) within FailTimeout mark an
	// upstream down (nginx's max_fails); 0 never marks it down.
	MaxFails int
	// Transport sends the requests; shared by the hosts of a config.
	Transport http.RoundTripper
	// Client sends the requests Exchange is given; shared by the hosts
	// of a config. nil: Exchange is not used.
	Client *Client
	// Latency observes each upstream answer's header latency, in
	// seconds. Required.
	Latency prometheus.Observer
	// Now is the clock. nil: time.Now.
	Now func() time.Time
}

// Upstream is one upstream's passive health, for the dashboard and
// gatehouse_upstream_up.
type Upstream struct {
	URL *url.URL
	// DownUntil is when an upstream that refused a connection may be
	// tried again; zero when it is healthy.
	DownUntil time.Time
}

// upstream is one backend of a host.
type upstream struct {
	url *url.URL
	// addr is url's host:port, the port filled in from the scheme.
	addr string
	// downUntil is when a refused upstream may be tried again, in Unix
	// nanoseconds; 0 when healthy.
	downUntil atomic.Int64
	// fails counts failed attempts since failStart (Unix ns).
	fails     atomic.Int32
	failStart atomic.Int64
}

// Pool spreads a host's requests over its upstreams round robin, with
// passive health checks as nginx's max_fails=1 fail_timeout does: an
// upstream that refuses a connection is skipped for failTimeout, and the
// request moves on to the next one. When every upstream is marked down they
// are still tried, in turn, so recovery needs no waiting; when all of them
// refuse, the request fails fast with 502.
//
// Pool is the http.RoundTripper of the host's ReverseProxy and is safe for
// concurrent use.
type Pool struct {
	ups         []*upstream
	next        atomic.Uint64
	failTimeout time.Duration
	maxFails    int32
	transport   http.RoundTripper
	client      *Client
	latency     prometheus.Observer // upstream response header latency
	now         func() time.Time
}

// NewPool returns the pool of cfg.URLs.
func NewPool(cfg Config) *Pool {
	p := &Pool{failTimeout: cfg.FailTimeout, maxFails: int32(min(cfg.MaxFails, 1<<20)),
		transport: cfg.Transport, client: cfg.Client, latency: cfg.Latency, now: cfg.Now}
	if p.now == nil {
		p.now = time.Now
	}
	for _, u := range cfg.URLs {
		port := u.Port()
		if port == "" {
			port = "80"
			if u.Scheme == "https" {
				port = "443"
			}
		}
		p.ups = append(p.ups, &upstream{url: u, addr: net.JoinHostPort(u.Hostname(), port)})
	}
	return p
}

// Upstreams returns the upstreams' health, in config order.
func (p *Pool) Upstreams() []Upstream {
	out := make([]Upstream, len(p.ups))
	for i, u := range p.ups {
		out[i].URL = u.url
		if t := u.downUntil.Load(); t != 0 {
			out[i].DownUntil = time.Unix(0, t)
		}
	}
	return out
}

// Addrs returns the addresses (host:port) of the pool's upstreams.
func (p *Pool) Addrs() []string {
	out := make([]string, len(p.ups))
	for i, u := range p.ups {
		out[i] = u.addr
	}
	return out
}

var _ http.RoundTripper = (*Pool)(nil)

// RoundTrip sends req to the next healthy upstream. req is the outgoing
// request ReverseProxy cloned for us, so its URL is ours to point at the
// chosen upstream.
func (p *Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	n := len(p.ups)
	start := int(p.next.Add(1) % uint64(n))
	now := p.now().UnixNano()

	// Retrying is safe only while the body is untouched: a refused dial
	// never read it. The transport's Close of it is ignored; net/http's
	// server closes the request body when the handler returns.
	var rb *retryBody
	if n > 1 && req.Body != nil && req.Body != http.NoBody {
		rb = &retryBody{ReadCloser: req.Body}
		req.Body = rb
	}
	path, rawPath := req.URL.Path, req.URL.RawPath
	s := middleware.ScopeFrom(req)

	// Healthy upstreams in round-robin order first, then the ones that
	// were marked down when the request arrived, in the same order. Each
	// upstream is tried at most once per request.
	var err error
	var wasDown uint64 // bit i: ups[i] was down at the start (config.MaxUpstreams is 64)
	for i, u := range p.ups {
		if u.downUntil.Load() > now {
			wasDown |= 1 << i
		}
	}
	for pass := 0; pass < 2; pass++ {
		for i := 0; i < n; i++ {
			j := (start + i) % n
			down := wasDown&(1<<j) != 0
			if down != (pass == 1) {
				continue
			}
			u := p.ups[j]
			target(req, u.url, path, rawPath)
			s.Upstream = u.url.Host
			t0 := p.now()
			var resp *http.Response
			resp, err = p.transport.RoundTrip(req)
			if err == nil {
				if down {
					u.downUntil.Store(0)
				}
				if u.fails.Load() != 0 {
					u.fails.Store(0)
				}
				p.latency.Observe(p.now().Sub(t0).Seconds())
				return resp, nil
			}
			dial := isDialError(err)
			if req.Context().Err() == nil && (dial || isTimeout(err)) {
				p.failed(u)
			}
			if !dial || (rb != nil && rb.read.Load()) || req.Context().Err() != nil {
				// Not safe to send again: the upstream may have
				// acted on it, or its body is spent.
				return nil, err
			}
		}
	}
	return nil, err
}

// Plain tells whether every upstream of the pool speaks plain HTTP, so
// that Exchange can reach them.
func (p *Pool) Plain() bool {
	if p.client == nil {
		return false
	}
	for _, u := range p.ups {
		if u.url.Scheme != "http" {
			return false
		}
	}
	return true
}

// Exchange is RoundTrip for a request without a body, through the
// pool's Client (the pool must be Plain): write writes the request head
// (request line, header, empty line) for upstream u into w; the answer's
// first head is read into h, and its status returned with the
// connection, from which the body is read and which the caller must
// Release. head tells whether the request is a HEAD. An upstream that
// refuses the connection is skipped as RoundTrip skips it.
func (p *Pool) Exchange(r *http.Request, head bool, write func(w *bufio.Writer, u *url.URL) error,
	h http.Header) (*Conn, int, error) {
	n := len(p.ups)
	start := int(p.next.Add(1) % uint64(n))
	t0 := p.now()
	now := t0.UnixNano()
	ctx := r.Context()
	s := middleware.ScopeFrom(r)
	var wasDown uint64 // bit i: ups[i] was down at the start (config.MaxUpstreams is 64)
	for i, u := range p.ups {
		if u.downUntil.Load() > now {
			wasDown |= 1 << i
		}
	}
	var err error
	for pass := 0; pass < 2; pass++ {
		for i := 0; i < n; i++ {
			j := (start + i) % n
			down := wasDown&(1<<j) != 0
			if down != (pass == 1) {
				continue
			}
			u := p.ups[j]
			s.Upstream = u.url.Host
			if err != nil {
				t0 = p.now() // the next upstream, after a refusal
			}
			var cn *Conn
			var status int
			cn, status, err = p.client.exchange(ctx, u.addr, u.url, head, write, h)
			if err == nil {
				if down {
					u.downUntil.Store(0)
				}
				if u.fails.Load() != 0 {
					u.fails.Store(0)
				}
				p.latency.Observe(p.now().Sub(t0).Seconds())
				return cn, status, nil
			}
			dial := isDialError(err)
			if ctx.Err() == nil && (dial || isTimeout(err)) {
				p.failed(u)
			}
			if !dial || ctx.Err() != nil {
				return nil, 0, err
			}
		}
	}
	return nil, 0, err
}

// failed counts a failed attempt on u and marks it down for failTimeout
// once maxFails attempts failed within failTimeout.
func (p *Pool) failed(u *upstream) {
	if p.maxFails == 0 {
		return
	}
	now := p.now().UnixNano()
	if start := u.failStart.Load(); now-start > int64(p.failTimeout) {
		u.failStart.Store(now)
		u.fails.Store(0)
	}
	if u.fails.Add(1) >= p.maxFails {
		u.fails.Store(0)
		u.downUntil.Store(now + int64(p.failTimeout))
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// ReadTimeout wraps rt so that an answer whose upstream sends nothing
// for d is cut off (nginx's proxy_read_timeout once the headers are in):
// only a read that waits on the upstream is timed, never the time spent
// writing to a slow client. A protocol switch (101) is passed as is.
func ReadTimeout(rt http.RoundTripper, d time.Duration) http.RoundTripper {
	return &readTimeout{next: rt, d: d}
}

type readTimeout struct {
	next http.RoundTripper
	d    time.Duration
}

func (t *readTimeout) RoundTrip(req *http.Request) (*http.Response, error) {
	// The timeout ends the request through its context.
	ctx, cancel := context.WithCancel(req.Context())
	resp, err := t.next.RoundTrip(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok && resp.StatusCode == http.StatusSwitchingProtocols {
		// The upgraded connection; ReverseProxy needs it writable.
		resp.Body = &upgradeBody{ReadWriteCloser: rwc, cancel: cancel}
		return resp, nil
	}
	timer := time.AfterFunc(t.d, cancel)
	timer.Stop()
	resp.Body = &idleBody{ReadCloser: resp.Body, d: t.d, timer: timer, cancel: cancel}
	return resp, nil
}

// idleBody times each read of an upstream answer: one that waits d
// cancels the request.
type idleBody struct {
	io.ReadCloser
	d      time.Duration
	timer  *time.Timer
	cancel context.CancelFunc
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.timer.Reset(b.d)
	n, err := b.ReadCloser.Read(p)
	b.timer.Stop()
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// upgradeBody ends the request's context when the upgraded connection
// closes.
type upgradeBody struct {
	io.ReadWriteCloser
	cancel context.CancelFunc
}

func (b *upgradeBody) Close() error {
	err := b.ReadWriteCloser.Close()
	b.cancel()
	return err
}

// target points req at upstream u, joining u's base path with the
// request's path.
func target(req *http.Request, u *url.URL, path, rawPath string) {
	req.URL.Scheme = u.Scheme
	req.URL.Host = u.Host
	if u.Path == "" || u.Path == "/" {
		req.URL.Path, req.URL.RawPath = path, rawPath
		return
	}
	req.URL.Path = singleJoiningSlash(u.Path, path)
	if rawPath != "" {
		req.URL.RawPath = singleJoiningSlash(u.EscapedPath(), rawPath)
	} else {
		req.URL.RawPath = ""
	}
}

func singleJoiningSlash(a, b string) string {
	aslash := a[len(a)-1] == '/'
	bslash := b != "" && b[0] == '/'
	switch {
	case aslash && bslash:
		return a + b[1:]
	case !aslash && !bslash:
		return a + "/" + b
	}
	return a + b
}

// isDialError reports whether err happened before any byte of the request
// reached the upstream: connection refused, unreachable, dial timeout.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// retryBody lets the pool hand the same request body to a second upstream
// when the first one refused the connection: it records whether anything
// was read and ignores the transport's Close.
type retryBody struct {
	io.ReadCloser
	read atomic.Bool
}

func (b *retryBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.ReadCloser.Read(p)
}

func (b *retryBody) Close() error { return nil }
