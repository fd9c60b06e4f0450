package proxy

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"gatehouse/middleware"
	"gatehouse/proxy/admin"
	"gatehouse/proxy/cert"
	"gatehouse/proxy/config"
	"gatehouse/proxy/upstream"
	"gatehouse/rules"
	"gatehouse/rules/intel/geo"
	"gatehouse/rules/match"
)

// generation is everything built from one config: the request chain and the
// upstream transport. Reload builds a complete new generation and swaps one
// pointer; requests in flight finish on the generation they started on.
type generation struct {
	cfg *config.File
	// trusted are the named trusted_proxies sets of cfg, in order, and
	// clientIP the chain's resolver, which intelLists updates when a
	// set changes.
	trusted  []*intelList
	clientIP *middleware.ClientIPResolver
	// trustedRanges are the named sets' ranges when this generation
	// was built: the jails' (and, at start, the ban list's, connection
	// limit's and kernel's) never-banned addresses.
	trustedRanges []netip.Prefix
	handler       http.Handler
	router        *router
	transport     *http.Transport
	// client is the fast path's upstream client (forward.go), with the
	// transport's settings.
	client *upstream.Client
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
	// limiters are the named rate limits (limits.rates) in use, by name.
	limiters map[string]*middleware.Limiter
	// buckets are the flood jails' token buckets, by jail name.
	buckets map[string]*middleware.RateBuckets
	// logPaths are the access log files the chain writes to (accessLog).
	logPaths []string
	// feeds are the blocklist feeds this generation installs when it
	// becomes current (feeds.go).
	feeds []*feed
	// pools are the hosts' upstream pools, for gatehouse_upstream_up.
	pools []hostPool
	// transports are the upstream transports of hosts and routes with a
	// response_header_timeout of their own, by their settings.
	transports map[transportKey]*http.Transport
	// clients are the fast path's clients for those settings.
	clients map[transportKey]*upstream.Client
	// geo holds the GeoIP databases (intel.geoip); nil without. Kept
	// across a reload that names the same files.
	geo *geo.DB
}

// closeIdle closes the idle upstream connections of every transport of
// g, at shutdown.
func (g *generation) closeIdle() {
	g.transport.CloseIdleConnections()
	g.client.CloseIdleConnections()
	for _, t := range g.transports {
		t.CloseIdleConnections()
	}
	for _, c := range g.clients {
		c.CloseIdleConnections()
	}
}

// closeIdleRemoved closes the idle connections that the fast path's
// clients g took over from prev keep to upstreams g no longer names.
func (g *generation) closeIdleRemoved(prev *generation) {
	addrs := map[string]bool{}
	for _, hp := range g.pools {
		for _, a := range hp.pool.Addrs() {
			addrs[a] = true
		}
	}
	keep := func(addr string) bool { return addrs[addr] }
	if g.client == prev.client {
		g.client.CloseIdleExcept(keep)
	}
	for k, c := range g.clients {
		if prev.clients[k] == c {
			c.CloseIdleExcept(keep)
		}
	}
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
// kernel set may ever cover: allow, and trusted_proxies (its prefixes and
// the ranges of its named sets, named), since a banned load
// balancer or CDN edge cuts off every client behind it, and a request
// whose X-Forwarded-For cannot be read is attributed to the proxy.
func neverBanned(cfg *config.File, named []netip.Prefix) []netip.Prefix {
	out := append(prefixes(cfg.Allow), cfg.TrustedPrefixes()...)
	return append(out, named...)
}

// probeJail is the jail probes and malformed requests are reported to.
func probeJail(cfg *config.File) string {
	if cfg.Probes != nil && cfg.Probes.Jail != "" {
		return cfg.Probes.Jail
	}
	return middleware.DefaultProbeJail
}

// hostAddrs returns the addresses of this host's interfaces, as /32 and
// /128 prefixes: no escalated ban may cover them, or the gateway would
// drop its own traffic (its admin listener, local tools), as fail2ban's
// ignoreself keeps it from banning them. An error lists none.
func hostAddrs() []netip.Prefix {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				ip = ip.Unmap()
				out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
			}
		}
	}
	return out
}

// jailsConfig maps the config's jail settings to the rules package's.
func jailsConfig(cfg *config.File, named []netip.Prefix) rules.JailsConfig {
	// An escalated network must reach the kernel whole, so none may hold
	// what the firewall never drops.
	jc := rules.JailsConfig{Jails: map[string]rules.JailConfig{}, Allow: neverBanned(cfg, named), IPv6Prefix: cfg.IPv6Prefix,
		Capacity: cfg.Limits.TrackedClients, NoEscalate: append(hostAddrs(), loopback...)}
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

// newClient is newTransport's twin for the fast path: the same dial and
// response header timeouts, idle connection count and idle timeout.
func newClient(k transportKey) *upstream.Client {
	return upstream.NewClient(upstream.ClientConfig{
		DialTimeout:           k.dial,
		ResponseHeaderTimeout: k.responseHeader,
		MaxIdlePerHost:        k.idle,
		IdleTimeout:           90 * time.Second,
	})
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
	lists, err := s.intel.prepare(cfg)
	if err != nil {
		return nil, err
	}
	// The ranges as of this build: a refresh changes the lists' sets in
	// place, and the next build must see the jails' allow list differ.
	g.trusted, g.trustedRanges = lists, rangesOf(lists)
	if prev != nil && reflect.DeepEqual(jailsConfig(prev.cfg, prev.trustedRanges), jailsConfig(cfg, g.trustedRanges)) {
		g.jails = prev.jails
	} else {
		jc := jailsConfig(cfg, g.trustedRanges)
		jc.Shared, jc.Sharer = s.sharedJails(cfg) // fleet.go
		j, err := rules.NewJails(jc, s.bans, s.log.With("component", "jails"))
		if err != nil {
			return nil, fmt.Errorf("jails: %w", err)
		}
		s.restoreHistory(j)
		g.jails = j // reload hands prev's counts over (Jails.HandOver)
	}
	if prev != nil && transportKeyOf(prev.cfg.Limits) == transportKeyOf(cfg.Limits) {
		g.transport, g.client = prev.transport, prev.client
	} else {
		g.transport, g.client = newTransport(transportKeyOf(cfg.Limits)), newClient(transportKeyOf(cfg.Limits))
	}
	signing, err := NewSigning(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	g.signing = signing
	if g.geo, err = s.openGeo(cfg, prev); err != nil {
		return nil, fmt.Errorf("intel.geoip: %w", err)
	}

	if g.feeds, err = s.feeds.prepare(cfg); err != nil {
		return nil, err
	}

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
// of the reverse proxy to its upstream pool, and one route per
// hosts[i].routes entry with the policy the entry gives on top of the
// host's; then registers the host under each of its names.
func (b *chainBuilder) addHost(i int, errLog *log.Logger, buffers *bufferPool) error {
	s, h := b.s, &b.cfg.Hosts[i]
	name := h.Match[0].String()
	host := hostPolicy(i, h)
	r := &route{
		userHeaders: []string{"X-Forwarded-User"},
		name:        name,
		log:         s.log,
		bodyTimeout: h.BodyReadTimeout.D(),
		jails:       b.g.jails,
		canonical:   match.CanonicalOptions{AllowEncodedSlash: h.AllowEncodedSlash, AllowStreamSyntax: h.AllowStreamSyntax},
	}
	for _, name := range h.Headers.PassClient {
		if r.passClient == nil {
			r.passClient = map[string]bool{}
		}
		r.passClient[strings.ToLower(name)] = true
	}
	policies := []*policy{host}
	for j := range h.Routes {
		policies = append(policies, routePolicy(host, j, &h.Routes[j]))
	}
	// Every user header of the host and its routes is removed from
	// every request to the host.
	for _, pol := range policies {
		if ba := pol.basicAuth; ba != nil {
			if hdr := http.CanonicalHeaderKey(ba.UserHeader); !slices.Contains(r.userHeaders, hdr) {
				r.userHeaders = append(r.userHeaders, hdr)
				b.userHeaders = append(b.userHeaders, hdr)
			}
		}
	}
	if err := b.applyPolicy(r, i, host, errLog, buffers); err != nil {
		return err
	}
	if len(h.Routes) > 0 {
		paths := make([][]string, len(h.Routes))
		for j, rt := range h.Routes {
			paths[j] = rt.Paths
		}
		tab, err := match.CompileRoutes(paths)
		if err != nil {
			return fmt.Errorf("hosts[%d]: %w", i, err)
		}
		r.paths = tab
		for _, pol := range policies[1:] {
			sub := &route{userHeaders: r.userHeaders, name: r.name, log: r.log, bodyTimeout: r.bodyTimeout,
				jails: r.jails, canonical: r.canonical, passClient: r.passClient}
			if err := b.applyPolicy(sub, i, pol, errLog, buffers); err != nil {
				return err
			}
			r.routes = append(r.routes, sub)
		}
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

// policy is what a host or one of its routes sets: the host's own
// settings, or a route's merged over them (routePolicy).
type policy struct {
	field          string // "hosts[2]" or "hosts[2].routes[1]"
	upstreams      []config.Upstream
	responseHeader time.Duration
	readTimeout    time.Duration
	failTimeout    time.Duration
	maxFails       int
	websocket      bool
	maxBody        int64
	headers        middleware.HeadersConfig
	basicAuth      *config.BasicAuth
	access         []config.AccessRule
	geo            *config.Geo
	jail           string
	respondJail    string // a route's own jail only
	limit          config.Names
	respond        *config.Respond
}

// hostPolicy is hosts[i]'s own policy.
func hostPolicy(i int, h *config.Host) *policy {
	hsts := h.HSTS
	if hsts == "off" {
		hsts = ""
	}
	return &policy{
		field:          fmt.Sprintf("hosts[%d]", i),
		upstreams:      h.Upstreams,
		responseHeader: h.ResponseHeaderTimeout.D(),
		readTimeout:    h.ReadTimeout.D(),
		failTimeout:    h.FailTimeout.D(),
		maxFails:       *h.MaxFails,
		websocket:      h.WebSocket == nil || *h.WebSocket,
		maxBody:        int64(h.MaxBody),
		headers:        middleware.HeadersConfig{Set: h.Headers.Set, Remove: h.Headers.Remove, HSTS: hsts},
		basicAuth:      h.BasicAuth,
		access:         h.Access,
		geo:            h.Geo,
		jail:           h.Jail,
		limit:          h.Limit,
	}
}

// routePolicy is hosts[].routes[j]'s policy: what the route sets, the
// host's for the rest.
func routePolicy(host *policy, j int, rt *config.Route) *policy {
	p := *host
	p.field = fmt.Sprintf("%s.routes[%d]", host.field, j)
	if len(rt.Upstreams) > 0 {
		p.upstreams = rt.Upstreams
	}
	if rt.ResponseHeaderTimeout != 0 {
		p.responseHeader = rt.ResponseHeaderTimeout.D()
	}
	if rt.ReadTimeout != 0 {
		p.readTimeout = rt.ReadTimeout.D()
	}
	if rt.FailTimeout != 0 {
		p.failTimeout = rt.FailTimeout.D()
	}
	if rt.MaxFails != nil {
		p.maxFails = *rt.MaxFails
	}
	if rt.WebSocket != nil {
		p.websocket = *rt.WebSocket
	}
	if rt.MaxBody != nil {
		p.maxBody = int64(*rt.MaxBody)
	}
	if rh := rt.Headers; rh != nil {
		p.headers = mergeHeaders(host.headers, rh.Set, rh.Remove)
	}
	switch ba := rt.BasicAuth; {
	case ba == nil:
	case ba.Off:
		p.basicAuth = nil
	default:
		p.basicAuth = ba
	}
	if rt.Access != nil {
		p.access = rt.Access
	}
	if rt.Geo != nil {
		p.geo = rt.Geo // "off" exempts the route (buildGeo)
	}
	if rt.Jail != "" {
		p.jail = rt.Jail
		// A fixed answer (a redirect, robots.txt) is an offence only
		// when the route itself says so.
		p.respondJail = rt.Jail
	}
	if rt.Limit != nil {
		p.limit = rt.Limit
	}
	p.respond = rt.Respond
	return &p
}

// mergeHeaders lays a route's header edits over the host's: a name the
// route sets replaces the host's value or removal, a name it removes
// drops the host's value.
func mergeHeaders(host middleware.HeadersConfig, set map[string]string, remove []string) middleware.HeadersConfig {
	out := middleware.HeadersConfig{HSTS: host.HSTS, Set: map[string]string{}}
	named := func(list []string, name string) bool {
		return slices.ContainsFunc(list, func(n string) bool { return strings.EqualFold(n, name) })
	}
	for k, v := range host.Set {
		if !named(remove, k) && !named(slices.Collect(maps.Keys(set)), k) {
			out.Set[k] = v
		}
	}
	maps.Copy(out.Set, set)
	for _, k := range host.Remove {
		if !named(slices.Collect(maps.Keys(set)), k) {
			out.Remove = append(out.Remove, k)
		}
	}
	out.Remove = append(out.Remove, remove...)
	return out
}

// applyPolicy builds r's handlers for pol: the header policy, the
// upstream pool, the reverse proxy and the siteChain in front of it (or
// the fixed answer of a respond route).
func (b *chainBuilder) applyPolicy(r *route, i int, pol *policy, errLog *log.Logger, buffers *bufferPool) error {
	h := &b.cfg.Hosts[i]
	headers, err := middleware.NewHeaderPolicy(pol.headers)
	if err != nil {
		return fmt.Errorf("%s.headers: %w", pol.field, err)
	}
	r.headers, r.websocket, r.maxBody = headers, pol.websocket, pol.maxBody
	if ba := pol.basicAuth; ba != nil {
		r.authHeader = http.CanonicalHeaderKey(ba.UserHeader)
	}
	st := &site{
		field:          pol.field,
		route:          r,
		basicAuth:      pol.basicAuth,
		hostAuths:      b.hostAuths(i),
		hotlink:        h.Hotlink,
		signedLinks:    h.SignedLinks,
		linksIndex:     i,
		bufferRequests: h.BufferRequests,
		access:         pol.access,
		geo:            pol.geo,
		jail:           pol.jail,
		limit:          pol.limit,
		respond:        pol.respond,
		respondJail:    pol.respondJail,
		clientCerts:    h.ClientCerts,
	}
	var inner http.Handler
	if pol.respond == nil {
		pool := b.pool(r.name, pol)
		var transport http.RoundTripper = pool
		if pol.readTimeout == 0 && pool.Plain() {
			r.fast, r.buffers = pool, buffers
		}
		if pol.readTimeout > 0 {
			transport = upstream.ReadTimeout(transport, pol.readTimeout)
		}
		r.proxy = &httputil.ReverseProxy{
			Rewrite:        r.rewrite,
			Transport:      transport,
			ModifyResponse: r.modifyResponse,
			ErrorHandler:   r.proxyError,
			BufferPool:     buffers,
			ErrorLog:       errLog,
		}
		if pol.readTimeout > 0 {
			// What arrived before a stall reaches the client before the
			// answer is cut off, as nginx sends it.
			r.proxy.FlushInterval = readTimeoutFlush
		}
		inner = http.HandlerFunc(r.forward)
	}
	r.next, err = b.newSiteChain(st, inner)
	return err
}

// hostAuths lists every basic_auth block of hosts[i]: its own and its
// routes', "off" aside.
func (b *chainBuilder) hostAuths(i int) []*config.BasicAuth {
	h := &b.cfg.Hosts[i]
	var out []*config.BasicAuth
	if h.BasicAuth != nil {
		out = append(out, h.BasicAuth)
	}
	for j := range h.Routes {
		if ba := h.Routes[j].BasicAuth; ba != nil && !ba.Off {
			out = append(out, ba)
		}
	}
	return out
}

// readTimeoutFlush is how often an answer under a read_timeout is
// flushed to the client.
const readTimeoutFlush = 100 * time.Millisecond

// pool returns the upstream pool for pol's upstream settings: one per
// distinct setting in a generation, so the routes that keep the host's
// upstreams share its pool and its passive health.
func (b *chainBuilder) pool(host string, pol *policy) *upstream.Pool {
	key := poolKey{host: host, responseHeader: pol.responseHeader, failTimeout: pol.failTimeout, maxFails: pol.maxFails}
	for _, u := range pol.upstreams {
		key.urls += u.String() + " "
	}
	if p := b.pools[key]; p != nil {
		return p
	}
	pc := upstream.Config{
		FailTimeout: pol.failTimeout,
		MaxFails:    pol.maxFails,
		Transport:   b.transport(pol.responseHeader),
		Client:      b.client(pol.responseHeader),
		Latency:     b.s.metrics.latency.WithLabelValues(host),
	}
	for _, u := range pol.upstreams {
		pc.URLs = append(pc.URLs, u.URL())
	}
	p := upstream.NewPool(pc)
	if b.pools == nil {
		b.pools = map[poolKey]*upstream.Pool{}
	}
	b.pools[key] = p
	b.g.pools = append(b.g.pools, hostPool{host: host, pool: p})
	return p
}

// poolKey is what makes two upstream pools the same.
type poolKey struct {
	host, urls                  string
	responseHeader, failTimeout time.Duration
	maxFails                    int
}

// transport returns the generation's upstream transport for a response
// header timeout: the limits' one, or one per other timeout a host or
// route sets (kept across a reload like the main one).
func (b *chainBuilder) transport(responseHeader time.Duration) *http.Transport {
	var prev map[transportKey]*http.Transport
	if b.prev != nil {
		prev = b.prev.transports
	}
	return perTimeout(b.cfg.Limits, responseHeader, b.g.transport, &b.g.transports, prev, newTransport)
}

// client is transport's twin for the fast path's client.
func (b *chainBuilder) client(responseHeader time.Duration) *upstream.Client {
	var prev map[transportKey]*upstream.Client
	if b.prev != nil {
		prev = b.prev.clients
	}
	return perTimeout(b.cfg.Limits, responseHeader, b.g.client, &b.g.clients, prev, newClient)
}

// perTimeout returns main for the limits' own response header timeout;
// for another, the value cur holds for it, else the previous
// generation's (kept across a reload), else a new one made by mk, which
// cur then holds.
func perTimeout[T comparable](limits config.Limits, responseHeader time.Duration, main T, cur *map[transportKey]T, prev map[transportKey]T, mk func(transportKey) T) T {
	k := transportKeyOf(limits)
	if responseHeader == k.responseHeader {
		return main
	}
	k.responseHeader = responseHeader
	var zero T
	if v := (*cur)[k]; v != zero {
		return v
	}
	v := prev[k]
	if v == zero {
		v = mk(k)
	}
	if *cur == nil {
		*cur = map[transportKey]T{}
	}
	(*cur)[k] = v
	return v
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
