package proxy

import (
	"errors"
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

// plainListener wraps the plain HTTP listener: the PROXY header (when
// listen.proxy_protocol is set), the connection limit, then the HTTP/1
// framing guard on every connection.
func (s *Server) plainListener(ln net.Listener, l *listener.Limiter, cfg *config.File) net.Listener {
	return listener.Guard(listener.Limit(s.proxyProtocol(ln, cfg), l), int(cfg.Limits.MaxHeaderBytes), s.framingRefused)
}

// proxyProtocol wraps a public listener, right above the socket, with the
// PROXY header reader when listen.proxy_protocol lists balancers: the
// connection limit, jails, bans and the access log then see the client
// the header names. Without balancers it returns ln: no header is read,
// and one sent anyway fails as the bad request it is.
func (s *Server) proxyProtocol(ln net.Listener, cfg *config.File) net.Listener {
	if len(cfg.Listen.ProxyProtocol) == 0 {
		return ln
	}
	return listener.NewProxy(ln, listener.ProxyConfig{
		Allowed:  prefixes(cfg.Listen.ProxyProtocol),
		Timeout:  cfg.Limits.ReadHeaderTimeout.D(),
		OnRefuse: s.proxyRefused,
	})
}

// proxyRefused logs and counts a connection the PROXY listener closed.
// A direct client sending a PROXY header claims another address: no
// browser does, so it counts in the probes jail, as malformed framing
// does (a balancer missing from listen.proxy_protocol is never banned if
// it is in trusted_proxies, and shows in this log line). A balancer
// without a header is misconfigured: a warning, not an offence, since
// its address is not the client's. A connection closed or silent before
// its header (a port probe, a TCP health check) is only debug.
func (s *Server) proxyRefused(peer netip.Addr, err error) {
	reason := "invalid"
	switch {
	case errors.Is(err, listener.ErrProxyHeaderNotAllowed):
		reason = "not_allowed"
		s.log.Info("PROXY header from a peer not in listen.proxy_protocol refused", "client_ip", peer)
		// A trusted proxy is never reported: a balancer sending a header
		// to a listener not set to read it is misconfigured, not hostile.
		if rt := s.current.Load(); rt.clientIP == nil || !rt.clientIP.Trusted(peer) {
			rt.jails.Report(probeJail(rt.cfg), peer, "PROXY header")
		}
	case errors.Is(err, listener.ErrProxyHeaderIncomplete):
		reason = "incomplete"
		s.log.Debug("connection from a load balancer closed before its PROXY header", "peer", peer, "error", err)
	case errors.Is(err, listener.ErrProxyHeaderMissing):
		reason = "missing"
		s.log.Warn("connection from a load balancer without a PROXY header refused; is it set to send one?", "peer", peer)
	default:
		s.log.Warn("invalid PROXY header refused", "peer", peer, "error", err)
	}
	s.metrics.proxyRefused.WithLabelValues(reason).Inc()
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
