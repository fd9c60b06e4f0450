package middleware

import (
	"context"
	"net/http"
	"net/netip"
	"time"

	"gatehouse/rules/match"
)

// Scope is the request-scoped state shared by the middleware chain. It is
// created once per request by WithScope and mutated only by the goroutine
// serving the request, so it needs no locking.
type Scope struct {
	// Start is when the request reached the gateway.
	Start time.Time
	// ClientIP is the resolved client address (set by ClientIP): the TCP
	// peer, or the right-most untrusted X-Forwarded-For entry when the peer
	// is a trusted proxy. IPv4-mapped IPv6 is folded to IPv4.
	ClientIP netip.Addr
	// Peer is the TCP peer address (set by ClientIP).
	Peer netip.Addr
	// PeerTrusted reports whether Peer is a trusted proxy, whose
	// X-Forwarded-* headers may be passed on (set by ClientIP).
	PeerTrusted bool
	// Path is the canonical form of the request path (set by
	// CanonicalPath): what every path rule matches. The upstream receives
	// the path as sent.
	Path match.CanonicalPath
	// RequestHost is the request's host (set by Hygiene): from the
	// absolute-form request target, else Host or :authority; lower case,
	// without port, brackets and trailing dot.
	RequestHost string
	// Host is the name of the configured host that served the request
	// ("" when no host matched); it is bounded by the config, so it may be
	// used as a metrics label.
	Host string
	// Upstream is the upstream that answered, for the access log.
	Upstream string
	// User is the authenticated user name, for the access log.
	User string
	// Country is the client's country, an upper-case ISO 3166-1 alpha-2
	// code, "" when unknown; ASN its autonomous system number, 0 when
	// unknown. Both are set by LookupGeo, which sets GeoDone.
	Country string
	ASN     uint32
	GeoDone bool
	// ClientCert is the subject of the verified TLS client certificate
	// on a host with client_certs, for the access log; "" for none.
	ClientCert string
	// Offence names what the request was reported for ("probe", "flood",
	// …), "" for a clean request: ban notifications quote such requests.
	Offence string
}

// scopeCtx carries the Scope inside the context value itself, so creating
// the scope costs one allocation instead of a context.WithValue plus a
// separate Scope.
type scopeCtx struct {
	context.Context
	scope Scope
}

type scopeKey struct{}

func (c *scopeCtx) Value(key any) any {
	if key == (scopeKey{}) {
		return &c.scope
	}
	return c.Context.Value(key)
}

// WithScope installs a fresh Scope in the request context. It must be the
// outermost middleware: everything below it finds the scope with ScopeFrom.
func WithScope(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &scopeCtx{Context: r.Context()}
		c.scope.Start = time.Now()
		next.ServeHTTP(w, r.WithContext(c))
	})
}

// ScopeFrom returns the request's Scope. A request that did not pass
// through WithScope gets a throwaway Scope, so callers never check for nil;
// that only happens in tests that call one middleware directly.
func ScopeFrom(r *http.Request) *Scope {
	if s, ok := r.Context().Value(scopeKey{}).(*Scope); ok {
		return s
	}
	return &Scope{}
}
