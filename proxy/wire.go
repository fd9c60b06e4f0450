package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"time"

	"gatehouse/middleware"
	"gatehouse/proxy/config"
	"gatehouse/rules"
	"gatehouse/rules/match"
)

// runtime is everything built from one config: the request chain and the
// upstream transport. Reload builds a complete new runtime and swaps one
// pointer; requests in flight finish on the runtime they started on.
type runtime struct {
	cfg       *config.File
	handler   http.Handler
	router    *router
	transport *http.Transport
	// creds are the htpasswd stores in use, by file and load settings;
	// they outlive a reload that keeps their file, so logged-in users
	// stay cached.
	creds map[credsKey]*middleware.Credentials
	// jails receive the offences; kept across a reload that leaves the
	// jails, allow and ipv6_prefix settings alone, so counts survive it.
	jails *rules.Jails
	// signing serves the admin API's /v1/sign endpoints and holds the
	// hosts' signed-link keys.
	signing *Signing
	// buckets are the flood jails' token buckets, by jail name.
	buckets map[string]*middleware.RateBuckets
}

// fullDuplex lets a request body keep streaming to the upstream while
// the upstream's answer streams back. Without it Go's HTTP/1 server
// drains and closes the request body as soon as the response starts,
// racing the transport that is still forwarding it: uploads answered
// early stall, and the transport's read fails on the closed body and cuts
// the response short (golang/go#40747). It is enabled only for a request
// that is really forwarded, after the gateway's own early answers (413,
// 401, 403), which must not read the body. HTTP/2 needs no such switch.
func fullDuplex(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.ProtoMajor == 1 {
			// Fails only on writers that cannot do it (HTTP/2), where the
			// race does not exist.
			_ = http.NewResponseController(w).EnableFullDuplex()
		}
		next.ServeHTTP(w, r)
	})
}

// prefixes unwraps config prefixes.
func prefixes(ps []config.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, len(ps))
	for i, p := range ps {
		out[i] = p.Prefix
	}
	return out
}

// neverBanned lists the prefixes no jail, manual ban, fleet peer or
// kernel set may ever cover: allow, and trusted_proxies, since a banned
// load balancer cuts off every client behind it, and a request whose
// X-Forwarded-For cannot be read is attributed to the proxy (issue 17).
func neverBanned(cfg *config.File) []netip.Prefix {
	return append(prefixes(cfg.Allow), prefixes(cfg.TrustedProxies)...)
}

// probeJail is the jail probes and malformed requests are reported to.
func probeJail(cfg *config.File) string {
	if cfg.Probes != nil && cfg.Probes.Jail != "" {
		return cfg.Probes.Jail
	}
	return middleware.DefaultProbeJail
}

// jailsConfig maps the config's jail settings to the rules package's.
func jailsConfig(cfg *config.File) rules.JailsConfig {
	jc := rules.JailsConfig{Jails: map[string]rules.JailConfig{}, Allow: neverBanned(cfg), IPv6Prefix: cfg.IPv6Prefix,
		Capacity: cfg.Limits.TrackedClients}
	for name, j := range cfg.Jails {
		jc.Jails[name] = config.JailConfig(j)
	}
	return jc
}

// transportKey is the part of the config the upstream transport depends
// on; a reload that leaves it alone keeps the warm connection pool.
type transportKey struct {
	dial, responseHeader time.Duration
	idle                 int
}

func transportKeyOf(l config.Limits) transportKey {
	return transportKey{l.UpstreamDialTimeout.D(), l.UpstreamResponseHeaderTimeout.D(), l.UpstreamIdleConns}
}

func newTransport(k transportKey) *http.Transport {
	return &http.Transport{
		Proxy: nil, // never route upstream traffic through $HTTP_PROXY
		DialContext: (&net.Dialer{
			Timeout:   k.dial,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		// Go's default of 2 idle connections per host makes a busy
		// proxy open a new connection for most requests.
		MaxIdleConnsPerHost:   k.idle,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: k.responseHeader,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// The client's Accept-Encoding goes through untouched; the proxy
		// must not decompress on its behalf.
		DisableCompression: true,
	}
}

// credsKey names one htpasswd store: the file and how it is loaded. Two
// hosts sharing a file with different basic_auth.allow_slow_hashes get a
// store each, so each host gets exactly the rule it asked for.
type credsKey struct {
	path      string
	allowSlow bool
}

// credentials returns the store for an htpasswd file: the one the current
// runtime uses (refreshed, so a reload picks up an edited file), or a new
// one. Stores are collected into next for the runtime being built.
func (s *Server) credentials(ba *config.BasicAuth, next map[credsKey]*middleware.Credentials) (*middleware.Credentials, error) {
	key := credsKey{path: ba.Htpasswd, allowSlow: ba.AllowSlowHashes}
	if c := next[key]; c != nil {
		return c, nil
	}
	if cur := s.current.Load(); cur != nil {
		if c := cur.creds[key]; c != nil {
			if _, err := c.Refresh(); err != nil {
				return nil, err
			}
			next[key] = c
			return c, nil
		}
	}
	c, err := middleware.NewCredentials(middleware.CredentialsConfig{Path: key.path, AllowSlowHashes: key.allowSlow}, s.log)
	if err != nil {
		return nil, err
	}
	next[key] = c
	return c, nil
}

// build compiles cfg into a runtime. It has no side effects on the running
// server: a failure leaves everything as it was. prev, when not nil, is the
// runtime being replaced; its transport is reused when unchanged.
func (s *Server) build(cfg *config.File, prev *runtime) (*runtime, error) {
	rt := &runtime{cfg: cfg}
	if prev != nil && reflect.DeepEqual(jailsConfig(prev.cfg), jailsConfig(cfg)) {
		rt.jails = prev.jails
	} else {
		jc := jailsConfig(cfg)
		jc.Shared, jc.Sharer = s.sharedJails(cfg) // fleet.go
		j, err := rules.NewJails(jc, s.bans, s.log.With("component", "jails"))
		if err != nil {
			return nil, fmt.Errorf("jails: %w", err)
		}
		s.restoreHistory(j)
		rt.jails = j // reload hands prev's counts over (Jails.HandOver)
	}
	if prev != nil && transportKeyOf(prev.cfg.Limits) == transportKeyOf(cfg.Limits) {
		rt.transport = prev.transport
	} else {
		rt.transport = newTransport(transportKeyOf(cfg.Limits))
	}

	signing, err := NewSigning(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	rt.signing = signing

	hosts := newRouter()
	var userHeaders []string // every host's basic_auth.user_header, for Hygiene
	hosts.tls = s.tls
	creds := map[credsKey]*middleware.Credentials{}
	counters := make(map[string]*hostCounters, len(cfg.Hosts))
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)
	buffers := newBufferPool()
	for i, h := range cfg.Hosts {
		name := h.Match[0].String()
		hsts := h.HSTS
		if hsts == "off" {
			hsts = ""
		}
		headers, err := middleware.NewHeaderPolicy(middleware.HeadersConfig{Set: h.Headers.Set, Remove: h.Headers.Remove, HSTS: hsts})
		if err != nil {
			return nil, fmt.Errorf("hosts[%d].headers: %w", i, err)
		}
		p := &pool{
			failTimeout: cfg.Limits.UpstreamFailTimeout.D(),
			transport:   rt.transport,
			latency:     s.metrics.latency.WithLabelValues(name),
			now:         time.Now,
		}
		for _, u := range h.Upstreams {
			p.ups = append(p.ups, &upstream{url: u.URL()})
		}
		r := &route{
			userHeaders: []string{"X-Forwarded-User"},
			name:        name,
			websocket:   h.WebSocket == nil || *h.WebSocket,
			maxBody:     int64(h.MaxBody),
			headers:     headers,
			log:         s.log,
			bodyTimeout: h.BodyReadTimeout.D(),
			jails:       rt.jails,
		}
		r.canonical = match.CanonicalOptions{AllowEncodedSlash: h.AllowEncodedSlash, AllowStreamSyntax: h.AllowStreamSyntax}
		for _, name := range h.Headers.PassClient {
			if r.passClient == nil {
				r.passClient = map[string]bool{}
			}
			r.passClient[strings.ToLower(name)] = true
		}
		r.proxy = &httputil.ReverseProxy{
			Rewrite:        r.rewrite,
			Transport:      p,
			ModifyResponse: r.modifyResponse,
			ErrorHandler:   r.proxyError,
			BufferPool:     buffers,
			ErrorLog:       errLog,
		}
		r.next = fullDuplex(r.proxy)
		if h.BufferRequests {
			r.next = r.bufferBody(r.next)
		}
		if ba := h.BasicAuth; ba != nil {
			r.authHeader = http.CanonicalHeaderKey(ba.UserHeader)
			if r.authHeader != "X-Forwarded-User" {
				r.userHeaders = append(r.userHeaders, r.authHeader)
				userHeaders = append(userHeaders, r.authHeader)
			}
			creds, err := s.credentials(ba, creds)
			if err != nil {
				return nil, fmt.Errorf("hosts[%d].basic_auth.htpasswd: %w", i, err)
			}
			auth, err := middleware.BasicAuth(middleware.BasicAuthConfig{
				Realm:             ba.Realm,
				Paths:             ba.Paths,
				UserHeader:        ba.UserHeader,
				PassAuthorization: ba.PassAuthorization,
			}, creds, rt.jails, s.log)
			if err != nil {
				return nil, fmt.Errorf("hosts[%d].basic_auth: %w", i, err)
			}
			r.next = auth(r.next)
		}
		if sl := h.SignedLinks; sl != nil {
			links, err := middleware.SignedLinks(middleware.SignedLinksConfig{Paths: sl.Paths}, signing.linksFor(i), s.log)
			if err != nil {
				return nil, fmt.Errorf("hosts[%d].signed_links: %w", i, err)
			}
			r.next = links(r.next)
		}
		if hl := h.Hotlink; hl != nil {
			m, err := match.CompileHotlink(match.HotlinkConfig{Paths: hl.Paths, Allow: hl.Allow})
			if err != nil {
				return nil, fmt.Errorf("hosts[%d].hotlink: %w", i, err)
			}
			hot, err := middleware.Hotlink(middleware.HotlinkConfig{
				Status: hl.Action.Status, Redirect: hl.Action.Redirect, Jail: hl.Jail,
			}, m, rt.jails, s.log)
			if err != nil {
				return nil, fmt.Errorf("hosts[%d].hotlink: %w", i, err)
			}
			r.next = hot(r.next)
		}
		counters[name] = s.metrics.hostCounters(name)
		for _, m := range h.Match {
			if m.Wildcard() {
				hosts.wildcard[m.Name()] = r
			} else {
				hosts.exact[m.Name()] = r
			}
		}
	}

	clientIP, err := middleware.ClientIP(middleware.ClientIPConfig{TrustedProxies: prefixes(cfg.TrustedProxies)})
	if err != nil {
		return nil, fmt.Errorf("trusted_proxies: %w", err)
	}
	accessLog, err := middleware.AccessLog(middleware.AccessLogConfig{
		Format: cfg.Log.Access,
		Out:    s.sink,
		OnDone: onDone(counters, s.metrics.hostCounters(unmatchedHost), s.notifier, s.metrics.dash, s.bans),
	})
	if err != nil {
		return nil, fmt.Errorf("log.access: %w", err)
	}

	var h http.Handler = hosts
	if p := cfg.Probes; p != nil {
		m, err := match.CompileProbes(match.ProbeConfig{Presets: p.Presets, Paths: p.Paths, Exclude: p.Exclude})
		if err != nil {
			return nil, fmt.Errorf("probes: %w", err)
		}
		probes, err := middleware.ProbeBlock(middleware.ProbeBlockConfig{Status: p.Status, Jail: p.Jail}, m, rt.jails, s.log)
		if err != nil {
			return nil, fmt.Errorf("probes: %w", err)
		}
		h = probes(h)
	}

	guard, err := middleware.BanGuard(s.bans, s.log)
	if err != nil {
		return nil, err
	}
	// A malformed request is a probe: it goes to the probes jail.
	hc := middleware.HygieneConfig{StrictSNI: cfg.Listen.StrictSNI, UserHeaders: userHeaders, Jail: probeJail(cfg)}
	if slices.ContainsFunc(cfg.Hosts, func(h config.Host) bool { return h.AllowEncodedSlash || h.AllowStreamSyntax }) {
		// Asked only for a path with %2F or ":$": the host it routes to
		// decides.
		hc.Loosen = func(host string) match.CanonicalOptions {
			if r := hosts.lookup(host); r != nil {
				return r.canonical
			}
			return match.CanonicalOptions{}
		}
	}
	if slices.ContainsFunc(cfg.Hosts, func(h config.Host) bool { return len(h.Headers.PassClient) > 0 }) {
		// Asked only when a client identity header is present.
		hc.PassClient = func(host, name string) bool {
			r := hosts.lookup(host)
			return r != nil && r.passClient[name]
		}
	}
	hygiene, err := middleware.Hygiene(hc, rt.jails, s.log)
	if err != nil {
		return nil, err
	}
	// Flood jails: a token bucket per client for each jail with a rate,
	// kept across a reload that leaves the jail's limits alone.
	limited := hygiene(h)
	rt.buckets = map[string]*middleware.RateBuckets{}
	for _, name := range slices.Sorted(maps.Keys(cfg.Jails)) {
		j := cfg.Jails[name]
		if j.Rate == 0 {
			continue
		}
		rc := middleware.RateLimitConfig{Rate: j.Rate, Burst: j.Burst, Jail: name,
			Allow: prefixes(cfg.Allow), IPv6Prefix: cfg.IPv6Prefix, Capacity: cfg.Limits.TrackedClients}
		var kept *middleware.RateBuckets
		if prev != nil {
			kept = prev.buckets[name]
		}
		b, err := middleware.NewRateBuckets(rc, kept)
		if err != nil {
			return nil, fmt.Errorf("jails[%q]: %w", name, err)
		}
		rt.buckets[name] = b
		rl, err := middleware.RateLimit(rc, b, rt.jails, s.log)
		if err != nil {
			return nil, fmt.Errorf("jails[%q]: %w", name, err)
		}
		limited = rl(limited)
	}

	// The order of the chain is fixed here and nowhere else:
	// scope → access log (sees every answer) → client IP → ban guard
	// (banned clients cost nothing more) → rate limit (flood jails) →
	// hygiene (the canonical view of host, framing, headers and path;
	// malformed requests end here) → probes (every host, and requests for
	// unknown hosts too) → host router (421 for unknown hosts, 308 to https
	// for names with a certificate) → per host: upgrade policy, body limit
	// → hotlink → signed links → basic auth → request buffering
	// (buffer_requests) → upstream (response header policy applied on the
	// way back).
	rt.router = hosts
	rt.creds = creds
	rt.handler = middleware.WithScope(accessLog(clientIP(guard(limited))))
	return rt, nil
}
