package middleware

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
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
}

// ClientIPResolver resolves the client address of a request. It is
// immutable and safe for concurrent use; Resolve does not allocate.
type ClientIPResolver struct {
	trusted []netip.Prefix
}

// NewClientIPResolver validates cfg and returns a resolver.
func NewClientIPResolver(cfg ClientIPConfig) (*ClientIPResolver, error) {
	trusted := make([]netip.Prefix, 0, len(cfg.TrustedProxies))
	for _, p := range cfg.TrustedProxies {
		if !p.IsValid() {
			return nil, fmt.Errorf("trusted proxy %v: invalid prefix", p)
		}
		// Fold ::ffff:10.0.0.0/104 style prefixes to their IPv4 form so
		// they match the folded addresses Resolve compares.
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		trusted = append(trusted, p.Masked())
	}
	return &ClientIPResolver{trusted: trusted}, nil
}

// Trusted reports whether a is a trusted proxy.
func (c *ClientIPResolver) Trusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve returns the client address for a request that arrived from
// remoteAddr ("ip:port", as in http.Request.RemoteAddr) carrying the
// X-Forwarded-For header lines xff, the TCP peer itself, and whether the
// peer is a trusted proxy.
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
	peer = parsePeer(remoteAddr)
	if !peer.IsValid() || !c.Trusted(peer) {
		return peer, peer, false
	}
	client = peer
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
				return client, peer, true
			}
			client = a
			if !c.Trusted(a) {
				return client, peer, true
			}
		}
	}
	return client, peer, true
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
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := ScopeFrom(r)
			s.ClientIP, s.Peer, s.PeerTrusted = res.Resolve(r.RemoteAddr, r.Header["X-Forwarded-For"])
			next.ServeHTTP(w, r)
		})
	}, nil
}
