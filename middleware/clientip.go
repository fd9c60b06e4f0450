package middleware

import (
	"fmt"
	"math/bits"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"

	"golang.org/x/net/http/httpguts"

	"gatehouse/rules/intel"
)

// maxXFFHops bounds the right-to-left walk over X-Forwarded-For, so a
// trusted proxy that forwards a huge header cannot make every request walk
// it. Real chains have a handful of hops.
const maxXFFHops = 32

// ClientIPConfig configures client address resolution.
type ClientIPConfig struct {
	// TrustedProxies lists the peers whose X-Forwarded-For is believed.
	// Default none: the TCP peer is always the client.
	TrustedProxies []netip.Prefix
	// Sets are named trusted-proxy sets (a CDN's published ranges, a
	// file: or url: list): their addresses are trusted proxies as
	// TrustedProxies are, and a set with a Provider names the client in
	// the provider's header. At most MaxTrustedSets. Default none.
	Sets []TrustedSet
}

// MaxTrustedSets is the most named sets a resolver takes: with
// TrustedProxies they share one intel.Index.
const MaxTrustedSets = intel.MaxIndexSets - 1

// TrustedSet is one named set of trusted proxies.
type TrustedSet struct {
	// Name names the set in logs ("cloudflare", "file:/etc/lb.txt").
	Name string
	// Ranges holds the set's addresses. nil: none (yet).
	Ranges *intel.Set
	// Provider is the CDN whose edges Ranges are: a request from them
	// names its client in Provider.Header. nil: a plain list, whose
	// requests X-Forwarded-For alone resolves.
	Provider *intel.Provider
}

// trustState is what Resolve reads: replaced whole by Update.
type trustState struct {
	// index holds the TrustedProxies as set 0 and Sets[i] as set i+1.
	index *intel.Index
	// headers has bit i+1 set when Sets[i] has a provider.
	headers uint64
	sets    []TrustedSet
}

// ClientIPResolver resolves the client address of a request. It is safe
// for concurrent use; Resolve does not allocate and takes no lock, and
// Update replaces the trusted sets atomically.
type ClientIPResolver struct {
	state atomic.Pointer[trustState]
}

// NewClientIPResolver validates cfg and returns a resolver.
func NewClientIPResolver(cfg ClientIPConfig) (*ClientIPResolver, error) {
	c := &ClientIPResolver{}
	if err := c.Update(cfg); err != nil {
		return nil, err
	}
	return c, nil
}

// Update validates cfg and makes it the resolver's from the next request
// on; an error leaves the resolver as it was. Requests in flight finish
// with the sets they started with.
func (c *ClientIPResolver) Update(cfg ClientIPConfig) error {
	st, err := newTrustState(cfg)
	if err != nil {
		return err
	}
	c.state.Store(st)
	return nil
}

func newTrustState(cfg ClientIPConfig) (*trustState, error) {
	for _, p := range cfg.TrustedProxies {
		if !p.IsValid() {
			return nil, fmt.Errorf("trusted proxy %v: invalid prefix", p)
		}
	}
	if len(cfg.Sets) > MaxTrustedSets {
		return nil, fmt.Errorf("trusted proxy sets: %d is more than %d", len(cfg.Sets), MaxTrustedSets)
	}
	// NewSet folds ::ffff:10.0.0.0/104 style prefixes to their IPv4
	// form, so they match the folded addresses Resolve compares.
	all := make([]*intel.Set, 1, len(cfg.Sets)+1)
	all[0] = intel.NewSet(cfg.TrustedProxies)
	st := &trustState{sets: slices.Clone(cfg.Sets)}
	for i, s := range st.sets {
		if p := s.Provider; p != nil && p.Header != "" {
			if !httpguts.ValidHeaderFieldName(p.Header) || http.CanonicalHeaderKey(p.Header) != p.Header {
				return nil, fmt.Errorf("trusted proxy set %q: header %q is not a valid field name in canonical form", s.Name, p.Header)
			}
			if p.Header == "X-Forwarded-For" {
				return nil, fmt.Errorf("trusted proxy set %q: X-Forwarded-For is read for every trusted proxy; name the provider's own header", s.Name)
			}
			st.headers |= 1 << (i + 1)
		}
		all = append(all, s.Ranges)
	}
	st.index = intel.NewIndex(all)
	return st, nil
}

// Trusted reports whether a is a trusted proxy.
func (c *ClientIPResolver) Trusted(a netip.Addr) bool {
	return c.state.Load().contains(a)
}

func (st *trustState) contains(a netip.Addr) bool { return st.index.Mask(a) != 0 }

// provider returns the address that a provider's header names for a
// request from peer, and true when peer is in the ranges of a provider
// whose header the request carries once, with an address.
func (st *trustState) provider(peer netip.Addr, h http.Header) (netip.Addr, bool) {
	for m := st.index.Mask(peer) & st.headers; m != 0; m &= m - 1 {
		p := st.sets[bits.TrailingZeros64(m)-1].Provider
		// A header sent twice is garbled: which one the provider wrote
		// cannot be told.
		if v := h[p.Header]; len(v) == 1 {
			if a, ok := p.ClientIP(v[0]); ok {
				return a, true
			}
		}
	}
	return netip.Addr{}, false
}

// Resolve returns the client address for a request that arrived from
// remoteAddr ("ip:port", as in http.Request.RemoteAddr) carrying the
// X-Forwarded-For header lines xff, the TCP peer itself, and whether the
// peer is a trusted proxy. It reads no provider header; see
// ResolveHeader.
//
// The peer is the client unless it is a trusted proxy; then the client is
// the right-most X-Forwarded-For entry that is not a trusted proxy (the
// header lines are read in order, as one comma-separated list). When every
// entry is trusted the left-most one is the client, as nginx's
// real_ip_recursive does. The walk stops at an entry that is not an address
// (a forged or garbled header): the hop that appended it — the last trusted
// address seen — is then the client, so garbage never helps an attacker
// pick an identity. IPv4-mapped IPv6 addresses are folded to IPv4; the
// peer's IPv6 zone is dropped, and an X-Forwarded-For entry with a zone is
// garbage. An unparsable remoteAddr gives invalid addresses.
func (c *ClientIPResolver) Resolve(remoteAddr string, xff []string) (client, peer netip.Addr, peerTrusted bool) {
	st := c.state.Load()
	peer = parsePeer(remoteAddr)
	if !peer.IsValid() || !st.contains(peer) {
		return peer, peer, false
	}
	return st.walkXFF(peer, xff), peer, true
}

// ResolveHeader is Resolve for a request with headers h, which also reads
// the client-IP header of the provider of the named set the peer is in
// (ClientIPConfig.Sets).
//
// When the peer is in a set with a header and the request carries that
// header once, with an address, that address is the client, and nothing
// else is read: a CDN names its client there and overwrites what the
// client sent. The header's word is final even when it names an address
// inside a CDN's ranges: code a CDN's customers run on its edge (Workers,
// Compute) sends from those ranges with headers of its own choosing, so
// going on from there to another provider's header or to X-Forwarded-For
// would let it pick any identity. A header from a peer outside its set is
// never read — anyone can send CF-Connecting-IP. A missing or garbled
// header (not one address, sent twice) is ignored, and X-Forwarded-For
// decides as in Resolve.
func (c *ClientIPResolver) ResolveHeader(remoteAddr string, h http.Header) (client, peer netip.Addr, peerTrusted bool) {
	st := c.state.Load()
	peer = parsePeer(remoteAddr)
	if !peer.IsValid() || !st.contains(peer) {
		return peer, peer, false
	}
	if a, ok := st.provider(peer, h); ok {
		return a, peer, true
	}
	return st.walkXFF(peer, h["X-Forwarded-For"]), peer, true
}

// walkXFF walks X-Forwarded-For from the right, from the trusted hop
// client; see Resolve.
func (st *trustState) walkXFF(client netip.Addr, xff []string) netip.Addr {
	hops := 0
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		for len(line) > 0 {
			var entry string
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				entry, line = line[j+1:], line[:j]
			} else {
				entry, line = line, ""
			}
			entry = trimOWS(entry)
			if entry == "" {
				continue // "a, , b": empty list elements are allowed (RFC 9110 §5.6.1)
			}
			hops++
			a, ok := parseXFFEntry(entry)
			if !ok || hops > maxXFFHops {
				return client
			}
			client = a
			if !st.contains(a) {
				return client
			}
		}
	}
	return client
}

// parsePeer parses http.Request.RemoteAddr.
func parsePeer(remoteAddr string) netip.Addr {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}

// parseXFFEntry parses one X-Forwarded-For element: a bare address, or an
// address with a port ("203.0.113.7:51234", "[2001:db8::1]:443") as some
// load balancers append, or a bracketed IPv6 address without a port. An
// address with a zone ("fe80::1%eth0") is refused: a zone names an
// interface of the host that wrote it, so the entry identifies no client,
// and dropping the zone would let one client speak for
// another's link-local address.
func parseXFFEntry(s string) (netip.Addr, bool) {
	a, ok := parseXFFAddr(s)
	if !ok || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func parseXFFAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a, true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// trimOWS trims optional white space (SP and HTAB, RFC 9110 §5.6.3).
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// ClientIP resolves the client address of every request and records it, the
// TCP peer and the peer's trust in the request's Scope. It must run below
// WithScope and before every middleware that looks at the client. It does
// not allocate.
func ClientIP(cfg ClientIPConfig) (func(http.Handler) http.Handler, error) {
	res, err := NewClientIPResolver(cfg)
	if err != nil {
		return nil, err
	}
	return ClientIPFrom(res), nil
}

// ClientIPFrom is ClientIP with a resolver the caller keeps, to Update
// its trusted sets without rebuilding the chain.
func ClientIPFrom(res *ClientIPResolver) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := ScopeFrom(r)
			s.ClientIP, s.Peer, s.PeerTrusted = res.ResolveHeader(r.RemoteAddr, r.Header)
			next.ServeHTTP(w, r)
		})
	}
}
