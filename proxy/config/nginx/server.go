package nginx

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"gatehouse/proxy/config"
	"gatehouse/proxy/config/nginx/conf"
	"gatehouse/rules/match"
)

// hostBuild collects what one server block contributes.
type hostBuild struct {
	server  *conf.Directive
	sc      scope // the server's scope
	names   []item
	label   string // "server app.example.com" for messages
	ssl     bool
	proxies []*proxyUse
	locs    []*locBuild // top-level locations, in order
	host    *hostOut
	// hostAdd and hostHide are the add_header and proxy_hide_header
	// lists the host's headers came from.
	hostAdd, hostHide []*conf.Directive
}

type proxyUse struct {
	loc  *conf.Directive // nil at server level (inside an if)
	sc   scope           // the scope of the proxy_pass
	d    *conf.Directive
	urls []item
	// maxFails and failTimeout are the upstream servers' max_fails and
	// fail_timeout ("" for nginx's defaults, 1 and 10s, gatehouse's too).
	maxFails, failTimeout item
}

func (t *translator) server(s *conf.Directive, parent scope) {
	sc := parent.inherit(s.Block)
	b := &hostBuild{server: s, sc: sc, host: &hostOut{src: s}}
	t.globalDirectives(s.Block)
	listened := false
	for _, d := range s.Block {
		switch d.Name {
		case "server_name":
			t.done(d)
			t.serverNames(d, b)
		case "listen":
			listened = true
			t.listen(d, b)
		case "ssl":
			t.done(d)
			if len(d.Args) == 1 && d.Args[0] == "on" {
				b.ssl = true
			}
		}
	}
	if !listened {
		t.out.httpListens = appendItem(t.out.httpListens, ":80", s)
	}
	b.label = "this server"
	if len(b.names) > 0 {
		b.label = "server " + b.names[0].value
	}

	// A catch-all server that only refuses is what gatehouse does for
	// unknown hosts anyway (421).
	if len(b.names) == 0 && refusesAll(s) {
		t.doneTree(s)
		t.out.refusers = append(t.out.refusers, s)
		return
	}
	// An unconditional redirect to https makes the server a TLS
	// redirect, whatever else it holds (nginx never gets there).
	for _, d := range s.Block {
		if isHTTPSRedirect(d, b) {
			t.doneTree(s)
			t.out.redirects = append(t.out.redirects, d)
			return
		}
	}
	for _, d := range s.Block {
		switch {
		case d.Name == "location" && d.IsBlock:
			t.location(d, sc, b)
		case d.Name == "if" && d.IsBlock:
			t.ifBlock(d, sc, nil, b)
		case inheritedNames[d.Name], ignoredHTTP[d.Name]:
			t.doneTree(d)
		}
	}
	t.serverAuth(b)
	if b.ssl {
		t.certificate(sc, s)
	}
	t.buildHost(b)
}

// serverNames adds a server_name's names to b.
func (t *translator) serverNames(d *conf.Directive, b *hostBuild) {
	for _, n := range d.Args {
		switch {
		case n == "" || n == "_":
			t.out.catchAll = append(t.out.catchAll, d)
		case strings.HasPrefix(n, "~"):
			t.find(d, "regular-expression name %q: gatehouse matches exact names and *.wildcards", n)
		case strings.HasPrefix(n, "$"):
			t.find(d, "variable name %q: list the names", n)
		case strings.HasSuffix(n, ".*"):
			t.find(d, "%q: gatehouse has no trailing wildcards; list the names", n)
		case strings.HasPrefix(n, "."):
			// nginx: ".example.com" is example.com and *.example.com.
			t.addName(d, b, n[1:])
			t.addName(d, b, "*"+n)
		default:
			t.addName(d, b, n)
		}
	}
}

func (t *translator) addName(d *conf.Directive, b *hostBuild, n string) {
	p, err := config.ParseHostPattern(n)
	if err != nil {
		t.find(d, "%v", err)
		return
	}
	b.names = appendItem(b.names, p.String(), d)
}

// listen records a listen directive's address.
func (t *translator) listen(d *conf.Directive, b *hostBuild) {
	if len(d.Args) == 0 {
		return
	}
	addr, err := listenAddr(d.Args[0])
	if err != nil {
		t.find(d, "%v", err)
		return
	}
	ssl := false
	for _, a := range d.Args[1:] {
		switch {
		case a == "ssl":
			ssl = true
		case a == "proxy_protocol":
			t.find(d, "gatehouse does not read the PROXY protocol; list the proxy in trusted_proxies and let it send X-Forwarded-For")
			return
		case a == "quic":
			t.find(d, "gatehouse serves HTTP/1.1 and HTTP/2, not HTTP/3")
			return
		}
	}
	t.done(d)
	if ssl {
		b.ssl = true
		t.out.httpsListens = appendItem(t.out.httpsListens, addr, d)
	} else {
		t.out.httpListens = appendItem(t.out.httpListens, addr, d)
	}
}

// listenAddr turns nginx's listen address into host:port. "[::]:80" and
// "*:80" become ":80", which gatehouse binds for both address families.
func listenAddr(a string) (string, error) {
	if strings.HasPrefix(a, "unix:") {
		return "", fmt.Errorf("gatehouse listens on TCP only")
	}
	if _, err := strconv.Atoi(a); err == nil {
		return ":" + a, nil
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		// An address without a port: nginx uses 80.
		host, port = strings.Trim(a, "[]"), "80"
	}
	if _, err := strconv.Atoi(port); err != nil {
		return "", fmt.Errorf("%q is not a listen address", a)
	}
	if host == "*" || host == "::" || host == "0.0.0.0" {
		host = ""
	}
	return net.JoinHostPort(host, port), nil
}

// isHTTPSRedirect recognises "return 301 https://$host$request_uri" and
// its spellings (rewrite … permanent, $server_name, the server's own
// name, an if on $scheme) at server level: with TLS on gatehouse
// redirects plain HTTP to https by itself.
func isHTTPSRedirect(d *conf.Directive, b *hostBuild) bool {
	switch d.Name {
	case "return":
		if len(d.Args) != 2 || !slices.Contains([]string{"301", "302", "307", "308"}, d.Args[0]) {
			return false
		}
		return selfHTTPS(d.Args[1], "$request_uri", b)
	case "rewrite":
		if len(d.Args) != 3 || (d.Args[2] != "permanent" && d.Args[2] != "redirect") {
			return false
		}
		switch d.Args[0] {
		case "^", "^/", "^/?(.*)$", "^(.*)$", "^/(.*)$", "^.*$", "(.*)":
		default:
			return false
		}
		return selfHTTPS(d.Args[1], "$request_uri?", b) || selfHTTPS(d.Args[1], "$request_uri", b) ||
			selfHTTPS(d.Args[1], "$1", b) || selfHTTPS(d.Args[1], "/$1", b)
	case "location":
		// location / { return 301 https://…; } alone.
		if len(d.Args) != 1 || d.Args[0] != "/" || len(d.Block) != 1 {
			return false
		}
		return isHTTPSRedirect(d.Block[0], b)
	}
	return false
}

func selfHTTPS(url, tail string, b *hostBuild) bool {
	rest, ok := strings.CutPrefix(url, "https://")
	if !ok {
		return false
	}
	host, ok := strings.CutSuffix(rest, tail)
	if !ok {
		return false
	}
	host = strings.TrimSuffix(host, ":443")
	switch host {
	case "$host", "$server_name", "$http_host":
		return true
	}
	return len(b.names) == 1 && b.names[0].value == strings.ToLower(host)
}

// isSchemeRedirect recognises if ($scheme != "https") { return 301
// https://$host$request_uri; } and the "= http" spelling.
func isSchemeRedirect(d *conf.Directive, b *hostBuild) bool {
	cond := ifCondition(d.Args)
	ok := len(cond) == 3 && cond[0] == "$scheme" &&
		((cond[1] == "!=" && cond[2] == "https") || (cond[1] == "=" && cond[2] == "http"))
	return ok && len(d.Block) == 1 && isHTTPSRedirect(d.Block[0], b)
}

// ifCondition splits an if's arguments into the condition's words, with
// the parentheses removed as nginx does (ngx_http_rewrite_if).
func ifCondition(args []string) []string {
	if len(args) == 0 {
		return nil
	}
	c := slices.Clone(args)
	if c[0] == "(" {
		c = c[1:]
	} else {
		c[0] = strings.TrimPrefix(c[0], "(")
	}
	if n := len(c); n > 0 {
		if c[n-1] == ")" {
			c = c[:n-1]
		} else {
			c[n-1] = strings.TrimSuffix(c[n-1], ")")
		}
	}
	return c
}

// ifBlock handles an if at server (loc nil) or location level: the
// hotlink test, the secure_link test and the https redirect.
func (t *translator) ifBlock(d *conf.Directive, sc scope, loc *conf.Directive, b *hostBuild) {
	cond := ifCondition(d.Args)
	switch {
	case len(cond) == 1 && cond[0] == "$invalid_referer":
		t.hotlink(d, sc, loc, b)
	case len(cond) >= 1 && cond[0] == "$secure_link":
		t.doneTree(d) // part of secure_link, reported there
	case isSchemeRedirect(d, b):
		t.doneTree(d)
		t.out.redirects = append(t.out.redirects, d.Block[0])
	}
}

// location walks one top-level location block; nested ones are listed.
func (t *translator) location(l *conf.Directive, parent scope, b *hostBuild) {
	t.done(l)
	sc := parent.inherit(l.Block)
	mod, p := locationArgs(l)
	if mod == "@" {
		t.find(l, "named locations are targets of try_files/error_page, which gatehouse does not have")
		t.doneTree(l)
		return
	}
	pat, err := routePattern(mod, p)
	if err != nil {
		t.find(l, "%v", err)
		t.doneTree(l)
		return
	}
	lb := &locBuild{l: l, mod: mod, p: p, pattern: pat, sc: sc}
	for _, d := range l.Block {
		switch {
		case d.Name == "location" && d.IsBlock:
			_, np := locationArgs(d)
			t.find(d, "nested location: gatehouse's routes do not nest; requests for %s get the rules of location %s", np, p)
			t.doneTree(d)
		case d.Name == "proxy_pass":
			lb.handler = true
			lb.proxy = t.proxyPass(d, l, sc, b)
		case d.Name == "return":
			lb.handler = true
			if lb.ret == nil {
				lb.ret = d
			} else {
				t.done(d) // nginx answers with the first return
			}
		case d.Name == "if" && d.IsBlock:
			t.ifBlock(d, sc, l, b)
		case d.Name == "secure_link" || d.Name == "secure_link_md5" || d.Name == "secure_link_secret":
			t.secureLink(d, l, mod, p, b)
		case d.Name == "valid_referers":
			t.done(d) // used through if ($invalid_referer), no effect without
		case d.Name == "access_log":
			t.find(d, "gatehouse logs per host (hosts[].log), not per location")
		case d.Name == "limit_req", d.Name == "client_max_body_size", d.Name == "allow", d.Name == "deny",
			d.Name == "auth_basic", d.Name == "auth_basic_user_file", d.Name == "proxy_read_timeout":
			// carried by the route through the scope
		case inheritedNames[d.Name], ignoredHTTP[d.Name]:
			if perHost[d.Name] {
				continue // checked against the host in buildHost
			}
			t.doneTree(d)
		case contentHandlers[d.Name]:
			lb.handler = true
		}
	}
	b.locs = append(b.locs, lb)
	if !lb.handler && !refusesEveryone(accessRules(sc.access)) {
		t.statics = append(t.statics, l)
	}
}

// contentHandlers are directives that answer requests in a location (so
// it serves no static files), translated or not.
var contentHandlers = map[string]bool{
	"return": true, "fastcgi_pass": true, "uwsgi_pass": true, "scgi_pass": true, "grpc_pass": true,
	"memcached_pass": true, "content_by_lua": true, "content_by_lua_block": true, "content_by_lua_file": true,
	"stub_status": true, "try_files": true, "root": true, "alias": true, "rewrite": true,
}

// locationArgs returns a location's modifier ("", "=", "~", "~*", "^~",
// "@") and its path or expression.
func locationArgs(l *conf.Directive) (mod, p string) {
	switch len(l.Args) {
	case 1:
		a := l.Args[0]
		switch {
		case strings.HasPrefix(a, "@"):
			return "@", a
		case strings.HasPrefix(a, "~*"):
			return "~*", a[2:]
		case strings.HasPrefix(a, "^~"):
			return "^~", a[2:]
		case strings.HasPrefix(a, "~"):
			return "~", a[1:]
		case strings.HasPrefix(a, "="):
			return "=", a[1:]
		}
		return "", a
	case 2:
		return l.Args[0], l.Args[1]
	}
	return "", ""
}

// proxyPass records where a location proxies to; nil when it cannot be
// carried (listed).
func (t *translator) proxyPass(d, loc *conf.Directive, sc scope, b *hostBuild) *proxyUse {
	if len(d.Args) != 1 {
		return nil
	}
	target := d.Args[0]
	if strings.Contains(target, "$") {
		t.find(d, "proxy_pass with variables: gatehouse proxies to fixed upstream URLs")
		return nil
	}
	scheme, rest, ok := strings.Cut(target, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		t.find(d, "gatehouse proxies to http:// and https:// upstreams only")
		return nil
	}
	hostport, uri := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		hostport, uri = rest[:i], rest[i:]
	}
	if strings.HasPrefix(hostport, "unix:") {
		t.find(d, "gatehouse proxies to TCP upstreams, not Unix sockets")
		return nil
	}
	// A URI in proxy_pass replaces the part of the path the location
	// matched. gatehouse passes paths unchanged, behind a base path: the
	// same thing for location /, and nothing at all when the URI is the
	// location's own prefix.
	rewrite := false
	if mod, p := locationArgs(loc); uri != "" && loc != nil && uri != p {
		if (mod == "" || mod == "^~") && p == "/" {
			uri = strings.TrimSuffix(uri, "/")
		} else {
			rewrite, uri = true, ""
		}
	} else {
		uri = ""
	}
	use := &proxyUse{loc: loc, sc: sc, d: d}
	if up := t.upstreams[hostport]; up != nil {
		t.usedUpstreams[up] = true
		use.urls, use.maxFails, use.failTimeout = t.upstreamServers(up, scheme, uri)
	} else {
		use.urls = []item{{value: scheme + "://" + hostport + uri, src: d}}
		if _, err := config.ParseUpstream(use.urls[0].value); err != nil {
			t.find(d, "%v", err)
			return nil
		}
	}
	for _, h := range sc.proxyHeader {
		t.proxyHeader(h, b)
	}
	if len(use.urls) == 0 {
		t.find(d, "the upstream has no usable server")
		return nil
	}
	if rewrite {
		_, p := locationArgs(loc)
		t.find(d, "the URI in proxy_pass rewrites %s… to %s…; gatehouse passes the path unchanged to %s", p, d.Args[0][len(scheme)+3+len(hostport):], use.urls[0].value)
	} else {
		t.done(d)
	}
	dial := dialUse{at: d, value: "60s"}
	if sc.dial != nil {
		if v, err := nginxSeconds(sc.dial.Args); err != nil {
			t.find(sc.dial, "%v", err)
		} else {
			dial.d, dial.value = sc.dial, v
		}
	}
	t.dials = append(t.dials, dial)
	b.proxies = append(b.proxies, use)
	return use
}

// proxyHeader handles a proxy_set_header in force where requests are
// proxied: gatehouse sets the forwarding headers itself.
func (t *translator) proxyHeader(d *conf.Directive, b *hostBuild) {
	if len(d.Args) != 2 {
		return
	}
	name, value := strings.ToLower(d.Args[0]), d.Args[1]
	switch name {
	case "host":
		if value == "$host" || value == "$http_host" {
			t.done(d)
			return
		}
		t.find(d, "gatehouse passes the client's Host header to the upstream unchanged")
	case "x-real-ip", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-forwarded-server":
		t.done(d) // gatehouse sets these, spoof-proof
	case "upgrade", "connection":
		t.done(d)
	default:
		t.find(d, "gatehouse sends the client's request headers and its own forwarding headers; set %s in the app", d.Args[0])
	}
}

// upstreamServers lists the servers of an upstream block as URLs, with
// their max_fails and fail_timeout when every server has the same.
func (t *translator) upstreamServers(up *conf.Directive, scheme, uri string) (urls []item, maxFails, failTimeout item) {
	type params struct{ mf, ft string }
	var first *params
	var servers []*conf.Directive
	differ := false
	for _, d := range up.Block {
		switch d.Name {
		case "server":
			if len(d.Args) == 0 {
				continue
			}
			addr := d.Args[0]
			if strings.HasPrefix(addr, "unix:") {
				t.find(d, "gatehouse proxies to TCP upstreams, not Unix sockets")
				continue
			}
			if _, _, err := net.SplitHostPort(addr); err != nil {
				addr = net.JoinHostPort(strings.Trim(addr, "[]"), "80")
			}
			skip := false
			for _, a := range d.Args[1:] {
				switch {
				case a == "down":
					skip = true
				case a == "backup":
					t.find(d, "gatehouse has no backup servers; it fails over between the listed upstreams")
					skip = true
				case strings.HasPrefix(a, "weight=") && a != "weight=1":
					t.find(d, "gatehouse spreads requests evenly; the weight is dropped")
				case a == "resolve" || strings.HasPrefix(a, "service="):
					t.find(d, "gatehouse resolves upstream names when it connects; %s is dropped", a)
				case strings.HasPrefix(a, "slow_start=") || strings.HasPrefix(a, "max_conns="):
					t.find(d, "gatehouse has no %s; it is dropped", a[:strings.IndexByte(a, '=')])
				}
			}
			t.done(d)
			if skip {
				continue
			}
			mf, ft, err := upstreamParams(d)
			if err != nil {
				t.find(d, "%v", err)
			}
			p := params{mf, ft}
			if first == nil {
				first = &p
			} else if p != *first {
				differ = true
			}
			servers = append(servers, d)
			urls = append(urls, item{value: scheme + "://" + addr + uri, src: d})
		case "keepalive", "keepalive_timeout", "keepalive_requests", "keepalive_time", "zone", "least_conn", "random":
			t.done(d) // gatehouse keeps idle connections and balances by itself
		case "ip_hash", "hash", "sticky":
			if !t.handled[d] {
				t.find(d, "gatehouse balances round robin; clients are not pinned to one upstream")
				t.done(d)
			}
		}
	}
	for _, u := range urls {
		if _, err := config.ParseUpstream(u.value); err != nil {
			t.find(u.src, "%v", err)
			return nil, item{}, item{}
		}
	}
	switch {
	case differ:
		for _, d := range servers {
			if !t.found[d] && slices.ContainsFunc(d.Args[1:], func(a string) bool {
				return strings.HasPrefix(a, "max_fails=") || strings.HasPrefix(a, "fail_timeout=")
			}) {
				t.find(d, "gatehouse marks every upstream of a host or route down after the same max_fails within the same fail_timeout; this server's differ from %s's", servers[0].Pos())
			}
		}
	case first != nil:
		if first.mf != "" {
			maxFails = item{value: first.mf, src: servers[0]}
		}
		if first.ft != "" {
			failTimeout = item{value: first.ft, src: servers[0]}
		}
	}
	return urls, maxFails, failTimeout
}

// certificate records the TLS certificate of an ssl server.
func (t *translator) certificate(sc scope, s *conf.Directive) {
	if sc.cert == nil || sc.key == nil {
		t.find(s, "a TLS server without ssl_certificate and ssl_certificate_key; gatehouse gets certificates through tls.acme")
		return
	}
	for _, d := range []*conf.Directive{sc.cert, sc.key} {
		if len(d.Args) != 1 || strings.Contains(d.Args[0], "$") || strings.HasPrefix(d.Args[0], "data:") || strings.HasPrefix(d.Args[0], "engine:") {
			t.find(d, "gatehouse reads certificates and keys from files with fixed names")
			return
		}
	}
	t.done(sc.cert, sc.key)
	c := certOut{cert: t.abs(sc.cert.Args[0]), key: t.abs(sc.key.Args[0]), src: sc.cert}
	if !slices.ContainsFunc(t.out.certs, func(o certOut) bool { return o.cert == c.cert && o.key == c.key }) {
		t.out.certs = append(t.out.certs, c)
	}
}

// buildHost turns what a server collected into a host with its routes,
// or reports why it cannot be one.
func (t *translator) buildHost(b *hostBuild) {
	if len(b.proxies) == 0 {
		if len(b.names) > 0 || !slices.Contains(t.out.catchAll, b.server) {
			t.find(b.server, "%s proxies nothing: gatehouse serves no files itself, so it has no host to route here", b.label)
		}
		return
	}
	if len(b.names) == 0 {
		t.find(b.server, "a server without names catches every unknown host; gatehouse answers those 421 and routes only the names it lists")
		return
	}
	h := b.host
	h.tls = b.ssl
	// The upstreams: those of location / when there is one; other
	// locations that proxy elsewhere get routes with their own.
	main := b.proxies[0]
	for _, p := range b.proxies {
		if mod, lp := locationArgs(p.loc); p.loc != nil && lp == "/" && (mod == "" || mod == "^~") {
			main = p
			break
		}
	}
	// Without a location / nginx served the paths no location matched
	// from files; gatehouse proxies them. (A location / that does not
	// proxy is a route, or listed as serving files.)
	if !slices.ContainsFunc(b.locs, func(lb *locBuild) bool { return lb.p == "/" && (lb.mod == "" || lb.mod == "^~") }) {
		mod, p := locationArgs(main.loc)
		t.find(main.d, "nginx proxied only the locations it lists here; gatehouse sends the paths no route answers to the upstreams of location %s", strings.TrimSpace(mod+" "+p))
	}
	h.upstreams = main.urls
	h.maxFails, h.failTimeout = main.maxFails, main.failTimeout
	if !hasUpgrade(main.sc) {
		f := false
		h.websocket = &f
	}
	h.access = accessRules(b.sc.access)
	h.limit = t.limits(b.sc)
	h.headerTime = t.readTimeout(b.sc)
	t.hostLimits(b)
	t.hostHeaders(b)
	var paths [][]string
	for _, lb := range b.locs {
		r := t.buildRoute(b, lb)
		if _, err := match.CompileRoutes(append(paths, r.paths)); err != nil {
			t.find(lb.l, "%v", unwrapAll(err))
			continue
		}
		paths = append(paths, r.paths)
		h.routes = append(h.routes, r)
	}
	// location / with nothing of its own is the host itself, and so are
	// locations with nothing of their own when no location has anything.
	h.routes = slices.DeleteFunc(h.routes, func(r *routeOut) bool { return r.paths[0] == "/" && r.empty() })
	if !slices.ContainsFunc(h.routes, func(r *routeOut) bool { return !r.empty() }) {
		h.routes = nil
	}

	// Names: the first server to claim a name keeps it, as in nginx.
	var names []item
	for _, n := range b.names {
		if other := t.hostNames[n.value]; other != nil {
			if !sameURLs(other.upstreams, h.upstreams) {
				t.find(n.src, "%s is also served by %s with other upstreams; gatehouse routes a name to one host", n.value, other.src.Pos())
			}
			continue
		}
		t.hostNames[n.value] = h
		names = append(names, n)
	}
	if len(names) == 0 {
		return // merged into the hosts that already have the names
	}
	h.names = names
	t.out.hosts = append(t.out.hosts, h)
}

func sameURLs(a, b []item) bool {
	return slices.EqualFunc(a, b, func(x, y item) bool { return x.value == y.value })
}

// perHost are the location directives checked against the host's one
// setting in buildHost and hostLimits.
var perHost = map[string]bool{
	"add_header": true, "proxy_hide_header": true,
	"client_body_timeout": true, "proxy_request_buffering": true,
}

// hostHeaders carries add_header and proxy_hide_header over, from the
// server (or location / when the server has none).
func (t *translator) hostHeaders(b *hostBuild) {
	h := b.host
	add, hide := b.sc.addHeader, b.sc.hideHeader
	var root *conf.Directive
	walkLocations(b.server, func(l *conf.Directive) {
		if mod, p := locationArgs(l); p == "/" && mod == "" {
			root = l
		}
	})
	own := func(l *conf.Directive, name string) []*conf.Directive {
		var ds []*conf.Directive
		for _, d := range l.Block {
			if d.Name == name {
				ds = append(ds, d)
			}
		}
		return ds
	}
	if root != nil {
		if ds := own(root, "add_header"); ds != nil && add == nil {
			add = ds
		}
		if ds := own(root, "proxy_hide_header"); ds != nil && hide == nil {
			hide = ds
		}
	}
	h.set = t.addHeaders(h.set, add)
	for _, d := range hide {
		if len(d.Args) != 1 {
			continue
		}
		t.done(d)
		if !slices.ContainsFunc(h.set, func(kv kvItem) bool { return strings.EqualFold(kv.key, d.Args[0]) }) {
			h.remove = appendItem(h.remove, d.Args[0], d)
		}
	}
	b.hostAdd, b.hostHide = add, hide
}

// walkLocations calls fn for every location inside d, depth first.
func walkLocations(d *conf.Directive, fn func(l *conf.Directive)) {
	for _, c := range d.Block {
		if c.Name == "location" && c.IsBlock {
			fn(c)
			walkLocations(c, fn)
		}
	}
}

// refusesAll reports whether a server answers every request with a 4xx
// (return 444, return 404, deny all) and does nothing else.
func refusesAll(s *conf.Directive) bool {
	refused := false
	for _, d := range s.Block {
		switch {
		case d.Name == "return" && len(d.Args) >= 1 && strings.HasPrefix(d.Args[0], "4") && len(d.Args[0]) == 3:
			refused = true
		case d.Name == "deny" && len(d.Args) == 1 && d.Args[0] == "all":
			refused = true
		case d.Name == "location" || d.Name == "if" || contentHandlers[d.Name]:
			return false
		}
	}
	return refused
}
