package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"

	"gatehouse/middleware"
	"gatehouse/proxy/upstream"
	"gatehouse/rules"
	"gatehouse/rules/match"
	"gatehouse/signer"

	"golang.org/x/net/http/httpguts"
)

// route serves one configured host: upgrade policy, body limit and body
// read timeout (body.go), then the host's own middleware (basic auth) and
// the reverse proxy to its upstream pool.
type route struct {
	name      string // first name in hosts[].match: the host's label in logs and metrics
	websocket bool
	maxBody   int64
	headers   *middleware.HeaderPolicy
	proxy     *httputil.ReverseProxy
	// fast is the upstream pool the fast path (forward.go) sends
	// through; nil when the host's requests all take proxy.
	fast    *upstream.Pool
	buffers *bufferPool
	next    http.Handler // the host's middleware, ending in proxy
	log     *slog.Logger
	// userHeaders are the headers that tell an upstream who logged in
	// (X-Forwarded-User and the host's basic_auth.user_header). A client
	// never gets to send them, on any host: an upstream behind several
	// hosts may trust them everywhere.
	userHeaders []string
	// authHeader is the header basic auth tells the upstream the user in
	// (basic_auth.user_header); "" without basic auth.
	authHeader string
	// canonical holds the path refusals the host waives
	// (hosts[].allow_encoded_slash, hosts[].allow_stream_syntax).
	canonical match.CanonicalOptions
	// passClient holds the client identity headers (lower case) this
	// host's upstream may receive from clients (hosts[].headers.pass_client).
	passClient map[string]bool
	// bodyTimeout is the time allowed between two reads of a request
	// body (hosts[].body_read_timeout, body.go).
	bodyTimeout time.Duration
	// jails receive a stalled body's offence (the flood jail).
	jails *rules.Jails
	// paths chooses among routes (hosts[].routes) by path; nil when the
	// host has none. routes[i] serves hosts[].routes[i]: a copy of the
	// host with the route's policy, whose paths is nil.
	paths  *match.RouteTable
	routes []*route
}

var _ http.Handler = (*route)(nil)

func (rt *route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rt.paths != nil {
		s := middleware.ScopeFrom(r)
		i, ok := rt.paths.Select(match.RequestPath(r.RequestURI), s.Path)
		if !ok {
			// The path's readings choose different routes: an upstream
			// might read it as a path the gateway did not check.
			s.Host = rt.name
			rt.log.Debug("path readings choose different routes", "host", rt.name, "client_ip", s.ClientIP, "path", s.Path.Path)
			rt.errorPage(w, r, http.StatusBadRequest)
			return
		}
		if i >= 0 {
			rt = rt.routes[i]
		}
	}
	s := middleware.ScopeFrom(r)
	s.Host = rt.name
	for _, h := range rt.userHeaders {
		delete(r.Header, h)
	}
	if httpguts.HeaderValuesContainsToken(r.Header["Connection"], "upgrade") {
		// WebSocket is the only protocol switch ever passed; any other
		// Upgrade (h2c, TLS, …) is ignored as RFC 9110 §7.8 allows, so the
		// request is served as plain HTTP/1.1.
		if !strings.EqualFold(strings.TrimSpace(r.Header.Get("Upgrade")), "websocket") {
			r.Header.Del("Upgrade")
		} else if !rt.websocket {
			rt.errorPage(w, r, http.StatusForbidden)
			return
		}
	}
	if rt.maxBody > 0 && r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength > rt.maxBody {
			rt.errorPage(w, r, http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, rt.maxBody)
	}
	if r.Body == nil || r.Body == http.NoBody {
		rt.next.ServeHTTP(w, r)
		return
	}
	b := newClientBody(w, r, rt.bodyTimeout)
	// The proxy's error handler gets the outgoing request, whose body
	// ReverseProxy wraps: it finds b through the context (bodyOf).
	r = r.WithContext(b)
	r.Body = b
	rt.next.ServeHTTP(w, r)
	rt.finishBody(r, b)
}

// rewrite sets the forwarding headers. ReverseProxy has already removed
// hop-by-hop headers and every client-sent Forwarded / X-Forwarded-*
// header, so what is set here cannot be dropped by a Connection header:
// that includes the user header basic auth set, which a client's
// "Connection: X-Forwarded-User" would otherwise remove. Hygiene already
// removed every other X-Forwarded-* and user header a client sent.
func (rt *route) rewrite(pr *httputil.ProxyRequest) {
	s := middleware.ScopeFrom(pr.In)
	in, out := pr.In.Header, pr.Out.Header
	delete(out, "X-Real-Ip")
	redactReferer(out)
	if rt.authHeader != "" && s.User != "" {
		if v := in[rt.authHeader]; len(v) == 1 {
			out[rt.authHeader] = v // never mutated: safe to share with the incoming request
		}
	}
	if !s.Peer.IsValid() {
		return
	}
	peer := s.Peer.String()
	client := peer
	if s.ClientIP != s.Peer {
		client = s.ClientIP.String()
	}
	xff, proto, host := peer, "http", pr.In.Host
	if pr.In.TLS != nil {
		proto = "https"
	}
	// Only a trusted proxy's forwarding headers are passed on; an untrusted
	// client's own X-Forwarded-* never reach the upstream.
	if s.PeerTrusted {
		if prior := in["X-Forwarded-For"]; len(prior) > 0 {
			xff = strings.Join(prior, ", ") + ", " + peer
		}
		if v := in.Get("X-Forwarded-Proto"); v != "" {
			proto = v
		}
		if v := in.Get("X-Forwarded-Host"); v != "" {
			host = v
		}
	}
	// One backing array for the four values: one allocation, not four.
	vals := [...]string{xff, proto, host, client}
	out["X-Forwarded-For"] = vals[0:1:1]
	out["X-Forwarded-Proto"] = vals[1:2:2]
	out["X-Forwarded-Host"] = vals[2:3:3]
	out["X-Real-Ip"] = vals[3:4:4]
}

// redactReferer replaces the gh_signature values in h's Referer with
// signer.RedactedSignature: a page opened through a signed link names
// that link in the Referer of its subrequests, and the upstream (its
// logs, its analytics) has no use for the signature. A
// Referer without one is left alone, without allocating. h is the
// outgoing request's header, a copy (http.Request.Clone) whose values
// may be written in place.
func redactReferer(h http.Header) {
	vals := h["Referer"]
	for i, v := range vals {
		vals[i] = signer.RedactSignatures(v)
	}
}

func (rt *route) modifyResponse(resp *http.Response) error {
	if req := resp.Request; req != nil && req.Body != nil && req.Body != http.NoBody && req.ProtoMajor == 1 {
		// The upstream answered before the whole request body was read
		// (a refusal of its own, a redirect): the rest of the body is
		// still on the client connection, where the next request would
		// be read from its middle, and the transport may still be
		// reading it. Close the connection after this answer.
		if b := bodyOf(req); b != nil && b.state.Load() == bodyReading {
			resp.Header["Connection"] = []string{"close"}
		}
	}
	if resp.Request != nil && resp.Request.TLS != nil {
		rt.headers.ApplyTLS(resp.Header)
	} else {
		rt.headers.Apply(resp.Header)
	}
	return nil
}

// statusClientClosed is nginx's 499: the client went away before the
// answer. It is only ever logged; the client is gone.
const statusClientClosed = 499

// proxyError answers a request the upstreams could not serve.
func (rt *route) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	// A failed body first: an HTTP/1 stall cancels the request's
	// context too, and it is answered 408, not logged as 499.
	if b := bodyOf(r); b != nil {
		if r.Context().Err() != nil {
			b.settle()
		}
		if rt.bodyFailed(w, r, b) {
			return
		}
	}
	var mbe *http.MaxBytesError
	var cbe *clientBodyError
	var ne net.Error
	code := http.StatusBadGateway
	switch {
	case r.Context().Err() != nil:
		w.WriteHeader(statusClientClosed)
		return
	case errors.As(err, &mbe):
		code = http.StatusRequestEntityTooLarge
	case errors.As(err, &cbe):
		code = http.StatusBadRequest
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		code = http.StatusGatewayTimeout
	}
	if code == http.StatusBadGateway || code == http.StatusGatewayTimeout {
		rt.log.Warn("upstream failed", "host", rt.name,
			"upstream", middleware.ScopeFrom(r).Upstream, "status", code, "error", err)
	}
	rt.errorPage(w, r, code)
}

// errorPage writes the gateway's own short answer for code, with the
// host's response header policy applied.
func (rt *route) errorPage(w http.ResponseWriter, r *http.Request, code int) {
	switch {
	case rt.headers == nil:
	case r.TLS != nil:
		rt.headers.ApplyTLS(w.Header())
	default:
		rt.headers.Apply(w.Header())
	}
	middleware.PlainStatus(w, code)
}

// misdirected answers a request for a host gatehouse does not serve.
func misdirected(w http.ResponseWriter, _ *http.Request) {
	middleware.PlainStatus(w, http.StatusMisdirectedRequest)
}

// bufferPool recycles the proxy's 32 KiB copy buffers (httputil.BufferPool).
type bufferPool struct{ p sync.Pool }

var _ httputil.BufferPool = (*bufferPool)(nil)

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (bp *bufferPool) Get() []byte  { return *bp.p.Get().(*[]byte) }
func (bp *bufferPool) Put(b []byte) { bp.p.Put(&b) }

// get and put are Get and Put without the allocation Put pays for a
// new pointer: the fast path keeps the one it got.
func (bp *bufferPool) get() *[]byte  { return bp.p.Get().(*[]byte) }
func (bp *bufferPool) put(b *[]byte) { bp.p.Put(b) }
