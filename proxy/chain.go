package proxy

import (
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"slices"

	"gatehouse/middleware"
	"gatehouse/proxy/config"
	"gatehouse/proxy/upstream"
	"gatehouse/rules/match"
)

// The request chain: the order every request takes through the gateway.
// Order is the security contract, and it is code, not configuration:
// chain and siteChain below are the one place it is written, read top
// (outermost) to bottom, and newChain and newSiteChain build the handlers
// from these lists and nothing else. TestChainOrder pins them.
//
//	chain (every request)
//	→ host router: 421 for unknown hosts, 308 to https for names with a
//	  certificate (router.go)
//	→ the host: upgrade policy, body limit, body read timeout (route.go)
//	→ siteChain (the host's own middleware)
//	→ reverse proxy to the host's upstream pool; the response header
//	  policy applies on the way back (route.go, package proxy/upstream)
var chain = [...]stage{
	// The request scope (client IP, canonical path, host, user) that
	// every stage below reads and fills.
	{"scope", "", buildScope},
	// Sees every answer, the refusals of every stage below included.
	{"access_log", "log.access", buildAccessLog},
	// The client's address: the TCP peer, or X-Forwarded-For through
	// trusted_proxies only.
	{"client_ip", "trusted_proxies", buildClientIP},
	// A banned client is refused before anything else costs time.
	{"ban_guard", "", buildBanGuard},
	// Clients a blocklist feed lists: one lookup over every feed.
	{"feeds", "intel.feeds", buildFeeds},
	// Flood jails: a token bucket per client for each jail with a rate.
	{"rate_limit", "jails", buildRateLimit},
	// The canonical view of host, framing, headers and path; malformed
	// requests end here (and count in the probes jail).
	{"hygiene", "listen.strict_sni", buildHygiene},
	// Probes, on every host and on unknown hosts too.
	{"probes", "probes", buildProbes},
}

// siteChain is a host's own middleware, outermost first: it runs after
// the router has picked the host and before the reverse proxy. A site is
// the settings one host gives; the config keys are relative to it
// (hosts[i].basic_auth).
var siteChain = [...]siteStage{
	// A host with client_certs: 421 unless the request came over a TLS
	// connection for this host, 403 for a certificate no longer valid;
	// the verified certificate goes upstream. First: nothing of the host
	// answers a client that has not shown its certificate.
	{"client_cert", "client_certs", buildClientCert},
	// A route's fixed answer (nginx's return, which runs before
	// nginx's limits and access checks): nothing below runs, and
	// nothing is proxied.
	{"respond", "respond", buildRespond},
	// Media requests with a foreign Referer.
	{"hotlink", "hotlink", buildHotlink},
	// Named rate limits (limits.rates; nginx's limit_req, which runs
	// before nginx's access checks): a request over its limit never
	// costs a password check.
	{"limit", "limit", buildLimit},
	// Allow and deny by client address (nginx's allow and deny), before
	// a password is ever checked.
	{"access", "access", buildAccess},
	// Allow and deny by the client's country and ASN (GeoIP), beside
	// access and for the same reason; it also sets the X-Client-Country
	// and X-Client-ASN headers when intel.geoip.headers asks.
	{"geo", "geo", buildGeo},
	// Links signed by the gateway (or the admin API) for these paths.
	{"signed_links", "signed_links", buildSignedLinks},
	// htpasswd users, on the host or on its paths.
	{"basic_auth", "basic_auth", buildBasicAuth},
	// The request body read whole before the upstream sees it, once
	// every early answer above is past.
	{"buffer_requests", "buffer_requests", buildBufferRequests},
	// Request body and answer stream at once, for requests really
	// forwarded (fullDuplex).
	{"full_duplex", "", buildFullDuplex},
}

// wrapper is one middleware: it wraps the rest of the chain.
type wrapper = func(http.Handler) http.Handler

// stage is one entry of chain: the middleware's name, the config key it
// takes (which names it in errors; "" for none) and its constructor,
// which returns a nil wrapper when the config does not ask for it.
type stage struct {
	name, config string
	build        func(b *chainBuilder) (wrapper, error)
}

// siteStage is one entry of siteChain, built for one site.
type siteStage struct {
	name, config string
	build        func(b *chainBuilder, st *site) (wrapper, error)
}

// site is what siteChain is built from: the middleware settings of one
// host. Every field is optional.
type site struct {
	// field names the site in errors: "hosts[2]".
	field string
	// route is the host the site's chain serves.
	route     *route
	basicAuth *config.BasicAuth
	// hostAuths are every basic_auth block of the host: its own and its
	// routes'.
	hostAuths      []*config.BasicAuth
	hotlink        *config.Hotlink
	signedLinks    *config.SignedLinks
	linksIndex     int // hosts[linksIndex]: the signed-link keys (Signing.LinksFor)
	bufferRequests bool
	access         []config.AccessRule
	geo            *config.Geo
	// jail receives the offences of access, geo and respond.
	jail    string
	limit   config.Names
	respond *config.Respond
	// respondJail receives respond's offences: the route's own jail.
	respondJail string
	// clientCerts is the host's client_certs, for all its routes.
	clientCerts *config.ClientCerts
}

// chainBuilder holds what the stages are built from: the config, the
// generation being built (its jails, router and signing) and what the
// hosts told the server-wide stages.
type chainBuilder struct {
	s    *Server
	cfg  *config.File
	prev *generation // being replaced; nil for the first
	g    *generation // being built
	// userHeaders are the hosts' basic_auth.user_header names, for
	// hygiene.
	userHeaders []string
	// counters are the hosts' request counters, for the access log.
	counters map[string]*hostCounters
	// pools are the upstream pools built so far, by their settings.
	pools map[poolKey]*upstream.Pool
}

// newChain builds chain around inner (the host router). Every stage is
// built first, in order, so the first error is the first stage's; then
// the wrappers are applied from the last to the first.
func (b *chainBuilder) newChain(inner http.Handler) (http.Handler, error) {
	var ws [len(chain)]wrapper
	for i, st := range chain {
		w, err := st.build(b)
		if err != nil {
			if st.config == "" {
				return nil, err
			}
			return nil, fmt.Errorf("%s: %w", st.config, err)
		}
		ws[i] = w
	}
	return apply(ws[:], inner), nil
}

// newSiteChain builds siteChain for st around inner (the reverse proxy).
func (b *chainBuilder) newSiteChain(st *site, inner http.Handler) (http.Handler, error) {
	var ws [len(siteChain)]wrapper
	for i, ss := range siteChain {
		w, err := ss.build(b, st)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", st.field, ss.config, err)
		}
		ws[i] = w
	}
	return apply(ws[:], inner), nil
}

// apply wraps inner in ws, ws[0] outermost; nil entries add nothing.
func apply(ws []wrapper, inner http.Handler) http.Handler {
	h := inner
	for _, w := range slices.Backward(ws) {
		if w != nil {
			h = w(h)
		}
	}
	return h
}

func buildScope(*chainBuilder) (wrapper, error) { return middleware.WithScope, nil }

func buildAccessLog(b *chainBuilder) (wrapper, error) {
	s := b.s
	alc, logPaths := s.accessLog(b.cfg, b.g.router)
	b.g.logPaths = logPaths
	alc.Geo = b.g.geo
	alc.OnDone = onDone(b.counters, s.metrics.hostCounters(unmatchedHost), s.notifier, s.metrics.dash, s.bans)
	return middleware.AccessLog(alc)
}

func buildClientIP(b *chainBuilder) (wrapper, error) {
	res, err := middleware.NewClientIPResolver(clientIPConfig(b.cfg, b.g.trusted))
	if err != nil {
		return nil, err
	}
	b.g.clientIP = res
	return middleware.ClientIPFrom(res), nil
}

func buildBanGuard(b *chainBuilder) (wrapper, error) {
	return middleware.BanGuard(b.s.bans, b.s.log)
}

func buildFeeds(b *chainBuilder) (wrapper, error) {
	if len(b.cfg.Intel.Feeds) == 0 {
		return nil, nil
	}
	// allow and loopback here; trusted_proxies through the resolver,
	// whose named sets follow their refreshes.
	exempt := append(prefixes(b.cfg.Allow), loopback...)
	res := b.g.clientIP
	return middleware.FeedGuard(middleware.FeedGuardConfig{
		Table: &b.s.feeds.table,
		Exempt: func(a netip.Addr) bool {
			for _, p := range exempt {
				if p.Contains(a) {
					return true
				}
			}
			return res.Trusted(a)
		},
		Log: b.s.log,
	})
}

// buildRateLimit chains one limiter per flood jail (a jail with a rate),
// in jail name order. The buckets are kept across a reload that leaves a
// jail's limits alone.
func buildRateLimit(b *chainBuilder) (wrapper, error) {
	cfg := b.cfg
	b.g.buckets = map[string]*middleware.RateBuckets{}
	var limits []wrapper
	for _, name := range slices.Sorted(maps.Keys(cfg.Jails)) {
		j := cfg.Jails[name]
		if j.Rate == 0 {
			continue
		}
		rc := middleware.RateLimitConfig{Rate: j.Rate, Burst: j.Burst, Jail: name,
			Allow: prefixes(cfg.Allow), IPv6Prefix: cfg.IPv6Prefix, Capacity: cfg.Limits.TrackedClients}
		var kept *middleware.RateBuckets
		if b.prev != nil {
			kept = b.prev.buckets[name]
		}
		buckets, err := middleware.NewRateBuckets(rc, kept)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", name, err)
		}
		b.g.buckets[name] = buckets
		rl, err := middleware.RateLimit(rc, buckets, b.g.jails, b.s.log)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", name, err)
		}
		limits = append(limits, rl)
	}
	if len(limits) == 0 {
		return nil, nil
	}
	// The last jail's limiter is the outermost, as it always was.
	slices.Reverse(limits)
	return func(next http.Handler) http.Handler { return apply(limits, next) }, nil
}

func buildHygiene(b *chainBuilder) (wrapper, error) {
	cfg, hosts := b.cfg, b.g.router
	// A malformed request is a probe: it goes to the probes jail.
	hc := middleware.HygieneConfig{StrictSNI: cfg.Listen.StrictSNI, UserHeaders: b.userHeaders, Jail: probeJail(cfg)}
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
	return middleware.Hygiene(hc, b.g.jails, b.s.log)
}

func buildProbes(b *chainBuilder) (wrapper, error) {
	p := b.cfg.Probes
	pc := middleware.ProbeBlockConfig{Status: http.StatusForbidden, Jail: middleware.DefaultProbeJail}
	var m *match.ProbeMatcher
	if p != nil {
		var err error
		if m, err = match.CompileProbes(match.ProbeConfig{Presets: p.Presets, Paths: p.Paths, Exclude: p.Exclude}); err != nil {
			return nil, err
		}
		pc.Status, pc.Jail = p.Status, p.Jail
	}
	// Hosts with probes of their own (hosts[].probes), by route.
	var own map[*route]middleware.ProbeRules
	for i, h := range b.cfg.Hosts {
		hp := h.Probes
		if hp == nil {
			continue
		}
		if own == nil {
			own = map[*route]middleware.ProbeRules{}
		}
		pr := middleware.ProbeRules{}
		if !hp.Off {
			hm, err := match.CompileProbes(match.ProbeConfig{Presets: hp.Presets, Paths: hp.Paths, Exclude: hp.Exclude})
			if err != nil {
				return nil, fmt.Errorf("hosts[%d].probes: %w", i, err)
			}
			pr = middleware.ProbeRules{Matcher: hm, Status: hp.Status, Jail: hp.Jail}
		}
		own[b.g.router.byPattern(h.Match[0])] = pr
	}
	if m == nil && own == nil {
		return nil, nil
	}
	if own != nil {
		hosts := b.g.router
		pc.ForHost = func(host string) (middleware.ProbeRules, bool) {
			pr, ok := own[hosts.lookup(host)]
			return pr, ok
		}
	}
	return middleware.ProbeBlock(pc, m, b.g.jails, b.s.log)
}

func buildHotlink(b *chainBuilder, st *site) (wrapper, error) {
	hl := st.hotlink
	if hl == nil {
		return nil, nil
	}
	m, err := match.CompileHotlink(match.HotlinkConfig{Paths: hl.Paths, Allow: hl.Allow})
	if err != nil {
		return nil, err
	}
	return middleware.Hotlink(middleware.HotlinkConfig{
		Status: hl.Action.Status, Redirect: hl.Action.Redirect, Jail: hl.Jail,
	}, m, b.g.jails, b.s.log)
}

func buildSignedLinks(b *chainBuilder, st *site) (wrapper, error) {
	sl := st.signedLinks
	if sl == nil {
		return nil, nil
	}
	return middleware.SignedLinks(middleware.SignedLinksConfig{Paths: sl.Paths}, b.g.signing.LinksFor(st.linksIndex), b.s.log)
}

func buildBasicAuth(b *chainBuilder, st *site) (wrapper, error) {
	ba := st.basicAuth
	// The host's other logins (the host's own block, its routes'): a
	// browser sends a login made on one path of the host to every path
	// of it, so none reaches an upstream it was not made for, nor counts
	// as a guess at this one.
	var others []*middleware.Credentials
	for _, o := range st.hostAuths {
		if o == ba || o.PassAuthorization {
			continue
		}
		c, err := b.s.credentials(o, b.g.creds)
		if err != nil {
			return nil, fmt.Errorf("htpasswd: %w", err)
		}
		if !slices.Contains(others, c) {
			others = append(others, c)
		}
	}
	if ba == nil {
		if others == nil {
			return nil, nil
		}
		return middleware.StripLogins(others), nil
	}
	creds, err := b.s.credentials(ba, b.g.creds)
	if err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	others = slices.DeleteFunc(others, func(c *middleware.Credentials) bool { return c == creds })
	return middleware.BasicAuth(middleware.BasicAuthConfig{
		Realm:             ba.Realm,
		Paths:             ba.Paths,
		UserHeader:        ba.UserHeader,
		PassAuthorization: ba.PassAuthorization,
		Others:            others,
	}, creds, b.g.jails, b.s.log)
}

func buildBufferRequests(_ *chainBuilder, st *site) (wrapper, error) {
	if !st.bufferRequests {
		return nil, nil
	}
	return st.route.bufferBody, nil
}

func buildFullDuplex(*chainBuilder, *site) (wrapper, error) { return fullDuplex, nil }

func buildRespond(b *chainBuilder, st *site) (wrapper, error) {
	rs := st.respond
	if rs == nil {
		return nil, nil
	}
	rt := st.route
	h, err := middleware.Respond(middleware.RespondConfig{
		Status: rs.Status, Body: rs.Body, Location: rs.Location, Jail: st.respondJail,
		Headers: func(w http.ResponseWriter, r *http.Request) {
			if r.TLS != nil {
				rt.headers.ApplyTLS(w.Header())
			} else {
				rt.headers.Apply(w.Header())
			}
		},
	}, b.g.jails, b.s.log)
	if err != nil {
		return nil, err
	}
	// The answer replaces the rest of the chain.
	return func(http.Handler) http.Handler { return h }, nil
}

// buildLimit applies the site's named limits, in the order named. A
// limit is one Limiter per generation whichever hosts and routes use it,
// kept across a reload that leaves its settings alone.
func buildLimit(b *chainBuilder, st *site) (wrapper, error) {
	if len(st.limit) == 0 || st.limit.Off() {
		return nil, nil
	}
	ls := make([]*middleware.Limiter, 0, len(st.limit))
	for _, name := range st.limit {
		l, err := b.limiter(name)
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	return middleware.Limit(ls, b.g.jails, b.s.log)
}

// limiter returns the generation's limiter of limits.rates[name].
func (b *chainBuilder) limiter(name string) (*middleware.Limiter, error) {
	if l := b.g.limiters[name]; l != nil {
		return l, nil
	}
	r, ok := b.cfg.Limits.Rates[name]
	if !ok {
		return nil, fmt.Errorf("rate limit %q is not defined under limits.rates", name)
	}
	window, quota := r.Rate.Window()
	lc := middleware.LimitConfig{
		Name: name, Rate: r.Rate.PerSecond, Window: window, Quota: quota,
		Burst: r.Burst, Delay: r.Delay.N, NoDelay: r.Delay.NoDelay,
		Key: r.Key, Status: r.Status, Jail: r.Jail,
		Allow: prefixes(b.cfg.Allow), IPv6Prefix: b.cfg.IPv6Prefix, Capacity: b.cfg.Limits.TrackedClients,
	}
	if r.Shared {
		lc.Shared = b.s.sharedLimit(name)
	}
	var kept *middleware.Limiter
	if b.prev != nil {
		kept = b.prev.limiters[name]
	}
	l, err := middleware.NewLimiter(lc, kept)
	if err != nil {
		return nil, fmt.Errorf("limits.rates.%s: %w", name, err)
	}
	if b.g.limiters == nil {
		b.g.limiters = map[string]*middleware.Limiter{}
	}
	b.g.limiters[name] = l
	return l, nil
}

func buildAccess(b *chainBuilder, st *site) (wrapper, error) {
	if len(st.access) == 0 {
		return nil, nil
	}
	rules := make([]middleware.AccessRule, len(st.access))
	for i, a := range st.access {
		rules[i] = middleware.AccessRule{Allow: a.Allow, Prefix: a.Prefix, All: a.All}
	}
	return middleware.Access(middleware.AccessConfig{Rules: rules, Jail: st.jail}, b.g.jails, b.s.log), nil
}
