package proxy

import (
	"net"
	"net/netip"

	"gatehouse/proxy/config"
	"gatehouse/proxy/listener"
)

// floodJail receives an offence for every connection closed for being
// over limits.conns_per_ip.
const floodJail = "flood"

// connLimiter builds the limiter shared by the public listeners from the
// config the server starts with (conns_per_ip is read once, at start).
func (s *Server) connLimiter(cfg *config.File) *listener.Limiter {
	return listener.NewLimiter(listener.LimitConfig{
		Max:        cfg.Limits.ConnsPerIP,
		IPv6Prefix: cfg.IPv6Prefix,
		Exempt:     neverBanned(cfg, s.current.Load().trustedRanges), // allow and trusted_proxies
		// The trusted proxies of the config in use, with the CDN
		// ranges as refreshed: an edge's many connections are never
		// counted against it.
		ExemptNow: func(a netip.Addr) bool {
			res := s.current.Load().clientIP
			return res != nil && res.Trusted(a)
		},
		OnExceed: func(client netip.Addr) {
			s.log.Debug("connection over conns_per_ip closed", "client_ip", client)
			s.current.Load().jails.Report(floodJail, client, "connections")
		},
	})
}

// plainListener wraps the plain HTTP listener: the connection limit, then
// the HTTP/1 framing guard on every connection.
func (s *Server) plainListener(ln net.Listener, l *listener.Limiter, cfg *config.File) net.Listener {
	return listener.Guard(listener.Limit(ln, l), int(cfg.Limits.MaxHeaderBytes), s.framingRefused)
}

// framingRefused logs a request the framing guard refused (request
// smuggling framing, a malformed chunked body) and counts it against the
// peer in the probes jail, as Hygiene counts its 400s: no
// browser sends such framing. A trusted proxy is never banned for it.
func (s *Server) framingRefused(peer net.Addr, reason string) {
	s.log.Debug("malformed request refused", "peer", peer.String(), "reason", reason)
	ap, err := netip.ParseAddrPort(peer.String())
	if err != nil {
		return
	}
	rt := s.current.Load()
	peerIP := ap.Addr().Unmap()
	if rt.clientIP != nil && rt.clientIP.Trusted(peerIP) {
		// The jails' allow list holds the trusted ranges of the last
		// build; the resolver has them as refreshed since.
		return
	}
	rt.jails.Report(probeJail(rt.cfg), peerIP, "malformed request")
}
