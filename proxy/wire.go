package proxy

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"gatehouse/middleware"
	"gatehouse/proxy/admin"
	"gatehouse/proxy/cert"
	"gatehouse/proxy/config"
	"gatehouse/proxy/upstream"
	"gatehouse/rules"
	"gatehouse/rules/match"
)

// generation is everything built from one config: the request chain and the
// upstream transport. Reload builds a complete new generation and swaps one
// pointer; requests in flight finish on the generation they started on.
type generation struct {
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
	signing *admin.Signing
	// admin is what the admin listener reads of this generation: its
	// tokens, jails and signers.
	admin admin.Current
	// buckets are the flood jails' token buckets, by jail name.
	buckets map[string]*middleware.RateBuckets
	// logPaths are the access log files the chain writes to (accessLog).
	logPaths []string
	// pools are the hosts' upstream pools, for gatehouse_upstream_up.
	pools []hostPool
}

// certConfig maps the tls section to the certificate source's config,
// without the fleet's Redis, which New opens (certRedis).
func certConfig(cfg *config.File, log *slog.Logger) cert.Config {
	cc := cert.Config{Managed: cfg.ManagedNames(), Log: log}
	for _, c := range cfg.TLS.Certificates {
		cc.Static = append(cc.Static, c.Loaded)
	}
	if a := cfg.TLS.ACME; a != nil {
		cc.ACME = &cert.ACMEConfig{CA: a.CA, Email: a.Email, Roots: a.Roots, RootsFile: a.CARoot}
		cc.Dir = filepath.Join(cfg.StateDir, "certs")
		if cfg.Fleet != nil {
			cc.RedisPrefix = cfg.Fleet.Prefix
		}
	}
	return cc
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
// X-Forwarded-For cannot be read is attributed to the proxy.
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
// generation uses (refreshed, so a reload picks up an edited file), or a new
// one. Stores are collected into next for the generation being built.
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

// build compiles cfg into a generation. It has no side effects on the
// running server: a failure leaves everything as it was. prev, when not
// nil, is the generation being replaced; its transport is reused when
// unchanged. The request chain's order is in chain.go.
func (s *Server) build(cfg *config.File, prev *generation) (*generation, error) {
	g := &generation{cfg: cfg, creds: map[credsKey]*middleware.Credentials{}}
	if prev != nil && reflect.DeepEqual(jailsConfig(prev.cfg), jailsConfig(cfg)) {
		g.jails = prev.jails
	} else {
		jc := jailsConfig(cfg)
		jc.Shared, jc.Sharer = s.sharedJails(cfg) // fleet.go
		j, err := rules.NewJails(jc, s.bans, s.log.With("component", "jails"))
		if err != nil {
			return nil, fmt.Errorf("jails: %w", err)
		}
		s.restoreHistory(j)
		g.jails = j // reload hands prev's counts over (Jails.HandOver)
	}
	if prev != nil && transportKeyOf(prev.cfg.Limits) == transportKeyOf(cfg.Limits) {
		g.transport = prev.transport
	} else {
		g.transport = newTransport(transportKeyOf(cfg.Limits))
	}
	signing, err := NewSigning(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	g.signing = signing

	b := &chainBuilder{s: s, cfg: cfg, prev: prev, g: g, counters: make(map[string]*hostCounters, len(cfg.Hosts))}
	g.router = newRouter()
	g.router.certs = s.certs
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)
	buffers := newBufferPool()
	for i := range cfg.Hosts {
		if err := b.addHost(i, errLog, buffers); err != nil {
			return nil, err
		}
	}
	if g.handler, err = b.newChain(g.router); err != nil {
		return nil, err
	}
	g.admin = adminCurrent(g)
	return g, nil
}

// addHost builds hosts[i]: its route, with the host's siteChain in front
// of the reverse proxy to its upstream pool, under each of its names in
// the router.
func (b *chainBuilder) addHost(i int, errLog *log.Logger, buffers *bufferPool) error {
	s, cfg, h := b.s, b.cfg, &b.cfg.Hosts[i]
	name := h.Match[0].String()
	hsts := h.HSTS
	if hsts == "off" {
		hsts = ""
	}
	headers, err := middleware.NewHeaderPolicy(middleware.HeadersConfig{Set: h.Headers.Set, Remove: h.Headers.Remove, HSTS: hsts})
	if err != nil {
		return fmt.Errorf("hosts[%d].headers: %w", i, err)
	}
	pc := upstream.Config{
		FailTimeout: cfg.Limits.UpstreamFailTimeout.D(),
		Transport:   b.g.transport,
		Latency:     s.metrics.latency.WithLabelValues(name),
	}
	for _, u := range h.Upstreams {
		pc.URLs = append(pc.URLs, u.URL())
	}
	p := upstream.NewPool(pc)
	b.g.pools = append(b.g.pools, hostPool{host: name, pool: p})
	r := &route{
		userHeaders: []string{"X-Forwarded-User"},
		name:        name,
		websocket:   h.WebSocket == nil || *h.WebSocket,
		maxBody:     int64(h.MaxBody),
		headers:     headers,
		log:         s.log,
		bodyTimeout: h.BodyReadTimeout.D(),
		jails:       b.g.jails,
	}
	r.canonical = match.CanonicalOptions{AllowEncodedSlash: h.AllowEncodedSlash, AllowStreamSyntax: h.AllowStreamSyntax}
	for _, name := range h.Headers.PassClient {
		if r.passClient == nil {
			r.passClient = map[string]bool{}
		}
		r.passClient[strings.ToLower(name)] = true
	}
	if ba := h.BasicAuth; ba != nil {
		r.authHeader = http.CanonicalHeaderKey(ba.UserHeader)
		if r.authHeader != "X-Forwarded-User" {
			r.userHeaders = append(r.userHeaders, r.authHeader)
			b.userHeaders = append(b.userHeaders, r.authHeader)
		}
	}
	r.proxy = &httputil.ReverseProxy{
		Rewrite:        r.rewrite,
		Transport:      p,
		ModifyResponse: r.modifyResponse,
		ErrorHandler:   r.proxyError,
		BufferPool:     buffers,
		ErrorLog:       errLog,
	}
	st := &site{
		field:          fmt.Sprintf("hosts[%d]", i),
		route:          r,
		basicAuth:      h.BasicAuth,
		hotlink:        h.Hotlink,
		signedLinks:    h.SignedLinks,
		linksIndex:     i,
		bufferRequests: h.BufferRequests,
	}
	if r.next, err = b.newSiteChain(st, r.proxy); err != nil {
		return err
	}
	b.counters[name] = s.metrics.hostCounters(name)
	for _, m := range h.Match {
		if m.Wildcard() {
			b.g.router.wildcard[m.Name()] = r
		} else {
			b.g.router.exact[m.Name()] = r
		}
	}
	return nil
}

// accessLog returns the access log's config for cfg, OnDone aside: the
// global format and sink, each host's own (hosts[].log), and the router's
// lookup that sends a request refused before routing to its host's log;
// and the paths the runtime writes to, for reopen.
func (s *Server) accessLog(cfg *config.File, hosts *router) (middleware.AccessLogConfig, []string) {
	alc := middleware.AccessLogConfig{Format: cfg.Log.Access, Out: s.sinks.Get(cfg.Log.AccessFile)}
	paths := []string{cfg.Log.AccessFile}
	for _, h := range cfg.Hosts {
		hl := h.Log
		if hl == nil {
			continue
		}
		if alc.Hosts == nil {
			alc.Hosts = map[string]middleware.AccessLogTarget{}
			alc.HostOf = func(host string) string {
				if r := hosts.lookup(host); r != nil {
					return r.name
				}
				return ""
			}
		}
		t := middleware.AccessLogTarget{Format: hl.Access}
		if hl.Access != middleware.FormatOff {
			t.Out = s.sinks.Get(hl.AccessFile)
			paths = append(paths, hl.AccessFile) // Reopen opens each file once
		}
		alc.Hosts[h.Match[0].String()] = t
	}
	return alc, paths
}
