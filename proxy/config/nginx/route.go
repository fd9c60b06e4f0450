package nginx

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"

	"gatehouse/middleware"
	"gatehouse/proxy/config/nginx/conf"
	"gatehouse/rules/match"
)

// locBuild is one top-level location of a server, collected while the
// server is walked and turned into a route once the host's own settings
// are known (buildHost): a route carries what differs from the host.
type locBuild struct {
	l       *conf.Directive
	mod, p  string
	pattern string // the route path
	sc      scope  // the location's scope
	proxy   *proxyUse
	ret     *conf.Directive // return
	handler bool            // answers by itself (proxy_pass, return, fastcgi_pass …)
}

// routeOut is one hosts[].routes[] entry.
type routeOut struct {
	src         *conf.Directive // the location
	paths       []string
	notes       []string
	upstreams   []item
	headerTime  item // response_header_timeout and read_timeout
	maxFails    *item
	failTimeout item
	authOff     *conf.Directive
	auth        *authOut
	access      []item
	limit       []item
	limitOff    *conf.Directive
	respond     *respondOut
	set         []kvItem // headers.set; value "": the header is not sent
	remove      []item   // headers.remove
	maxBody     *item    // value "0": no limit
	websocket   *bool
	// refuses is true when the route refuses every request as nginx
	// configs refuse scanners (deny all, return 403, 404 or 444): with
	// fail2ban's botsearch jail, those requests are offences.
	refuses bool
}

type respondOut struct {
	status   int
	body     string
	location string
	src      *conf.Directive
}

// rateKey identifies one limits.rates entry: an nginx zone with the
// parameters of the limit_req that uses it and the status it answers.
type rateKey struct {
	zone   string
	burst  int
	delay  string // "" (nginx queues the burst), "nodelay" or a number
	status int
}

// rateOut is one limits.rates entry.
type rateOut struct {
	name string
	key  rateKey
	rate string
	zone *conf.Directive // limit_req_zone
	src  *conf.Directive // the first limit_req using it
}

// dialUse is the proxy_connect_timeout in force at one proxy_pass.
type dialUse struct {
	d     *conf.Directive // nil: nginx's default, 60s
	value string
	at    *conf.Directive // the proxy_pass
}

// routePattern turns a location's modifier and path into a route path
// with nginx's reach: a plain prefix matches raw bytes ("/x*"), one
// ending in "/" is a directory (gatehouse's "/x/" also covers "/x",
// which nginx redirects to "/x/" when it proxies there), "=" is exact,
// "^~" stops the regex search, "~" and "~*" are regexes as written or
// any case.
func routePattern(mod, p string) (string, error) {
	var pat string
	switch mod {
	case "=":
		pat = "=" + p
	case "", "^~":
		pat = p
		if p != "/" && !strings.HasSuffix(p, "/") {
			pat += "*"
		}
		if mod == "^~" {
			pat = "^~" + pat
		}
	case "~", "~*":
		re, err := routeRegex(p)
		if err != nil {
			return "", err
		}
		if mod == "~*" || match.CheckRouteRegex(re) != nil {
			// Routes ignore case: a case-sensitive nginx regex with
			// upper-case letters is written to match in any case.
			re = "(?i)" + re
		}
		pat = "re:" + re
	default:
		return "", fmt.Errorf("location modifier %q", mod)
	}
	if _, err := match.CompileRoutes([][]string{{pat}}); err != nil {
		return "", fmt.Errorf("route path %q: %v", pat, unwrapAll(err))
	}
	return pat, nil
}

// trailingLookahead finds a negative lookahead of a literal at the end
// of an expression, as in nginx's "location ~ /\.(?!well-known)".
var trailingLookahead = regexp.MustCompile(`\(\?!((?:[A-Za-z0-9_-]|\\[./-])+)\)$`)

// routeRegex checks that an nginx (PCRE) regular expression means the
// same in Go's RE2 syntax. A negative lookahead of a literal at the end
// of the expression, which RE2 lacks, is written out without one:
// "X(?!ab)" matches where X is followed by the end, by a character other
// than "a", or by "a" and then the end or a character other than "b";
// a match needs nothing after that, so the two agree on every path.
func routeRegex(expr string) (string, error) {
	if m := trailingLookahead.FindStringSubmatchIndex(expr); m != nil {
		lit := strings.NewReplacer(`\.`, ".", `\/`, "/", `\-`, "-").Replace(expr[m[2]:m[3]])
		var b strings.Builder
		b.WriteString(expr[:m[0]])
		for i := range len(lit) {
			c := string(lit[i])
			if i == len(lit)-1 {
				fmt.Fprintf(&b, `(?:$|[^%s])`, classEscape(c))
				break
			}
			fmt.Fprintf(&b, `(?:$|[^%s]|%s`, classEscape(c), regexp.QuoteMeta(c))
		}
		b.WriteString(strings.Repeat(")", len(lit)-1))
		expr = b.String()
	}
	if _, err := syntax.Parse(expr, syntax.Perl); err != nil {
		return "", fmt.Errorf("regular expression %q uses PCRE syntax Go's RE2 lacks (lookaround, backreferences, possessive quantifiers): %v", expr, err)
	}
	return expr, nil
}

func classEscape(c string) string {
	if strings.ContainsAny(c, `\-]^[`) {
		return `\` + c
	}
	return c
}

// accessRules turns an allow/deny list into access rules, first match
// winning as in nginx, ending in a rule for every client: nginx lets in
// whoever no rule names. Rules after one for every client are never
// reached and are left out.
func accessRules(ds []*conf.Directive) []item {
	var out []item
	for _, d := range ds {
		if len(d.Args) != 1 || strings.HasPrefix(d.Args[0], "unix:") {
			continue // unix: names local socket clients, which gatehouse has none of
		}
		if d.Args[0] == "all" {
			return append(out, item{value: d.Name + " all", src: d})
		}
		p, err := parseCIDR(d.Args[0])
		if err != nil {
			continue // refused by validate
		}
		out = append(out, item{value: d.Name + " " + p.String(), src: d})
	}
	if len(out) > 0 {
		out = append(out, item{value: "allow all"})
	}
	return out
}

// refusesEveryone reports whether access rules let no client in.
func refusesEveryone(rules []item) bool {
	for _, r := range rules {
		if strings.HasPrefix(r.value, "allow ") {
			return false
		}
		if r.value == "deny all" {
			return true
		}
	}
	return false
}

func itemValuesEqual(a, b []item) bool {
	return slices.EqualFunc(a, b, func(x, y item) bool { return x.value == y.value })
}

// limits returns the limits.rates names for the limit_req directives in
// force in sc, registering the rates. A limit_req that cannot be carried
// is listed and left out.
func (t *translator) limits(sc scope) []item {
	if len(sc.limitReq) == 0 {
		return nil
	}
	if d := sc.limitDry; d != nil && len(d.Args) == 1 && d.Args[0] == "on" {
		for _, lr := range sc.limitReq {
			t.find(lr, "limit_req_dry_run on (%s): nginx only logged what it would refuse; gatehouse has no dry run, so the limit is left out", d.Pos())
		}
		return nil
	}
	status := 503 // nginx's limit_req_status default
	if d := sc.limitStatus; d != nil && len(d.Args) == 1 {
		status = atoi(d.Args[0])
	}
	var names []item
	for _, d := range sc.limitReq {
		k := rateKey{status: status}
		for _, a := range d.Args {
			switch {
			case strings.HasPrefix(a, "zone="):
				k.zone = strings.TrimPrefix(a, "zone=")
			case strings.HasPrefix(a, "burst="):
				k.burst = atoi(strings.TrimPrefix(a, "burst="))
			case a == "nodelay":
				k.delay = "nodelay"
			case strings.HasPrefix(a, "delay="):
				if v := strings.TrimPrefix(a, "delay="); v != "0" {
					k.delay = v
				}
			}
		}
		z := t.zones[k.zone]
		if z == nil {
			continue // refused by validate
		}
		if z.bad != "" {
			t.find(d, "limit_req_zone %s (%s): %s", k.zone, z.d.Pos(), z.bad)
			continue
		}
		r := t.rateNames[k]
		if r == nil {
			r = &rateOut{name: k.zone, key: k, rate: z.rate, zone: z.d, src: d}
			n := 1
			for t.rateNamed(r.name) != nil {
				n++
				r.name = k.zone + "-" + strconv.Itoa(n)
			}
			t.done(d)
			for _, o := range t.out.rates {
				if o.key.zone == k.zone {
					t.find(d, "zone %s is used with other burst, delay or limit_req_status values at %s; nginx counted both in one zone, gatehouse counts limit %s apart from limit %s", k.zone, o.src.Pos(), r.name, o.name)
					break
				}
			}
			t.rateNames[k] = r
			t.out.rates = append(t.out.rates, r)
		}
		t.done(d)
		names = appendItem(names, r.name, d)
	}
	return names
}

func (t *translator) rateNamed(name string) *rateOut {
	for _, r := range t.out.rates {
		if r.name == name {
			return r
		}
	}
	return nil
}

// respond turns a location's return into a fixed answer, or lists it.
func (t *translator) respond(d *conf.Directive) *respondOut {
	args := d.Args
	r := &respondOut{src: d}
	if len(args) == 1 && !isDigits(args[0]) {
		// return URL: a 302.
		args = []string{"302", args[0]}
	}
	r.status = atoi(args[0])
	if (r.status < 200 || r.status > 599) && r.status != 444 {
		t.find(d, "gatehouse answers a route with a status from 200 to 599 or 444")
		return nil
	}
	redirect := slices.Contains([]int{301, 302, 303, 307, 308}, r.status)
	if len(args) == 2 {
		switch {
		case !redirect && strings.Contains(args[1], "$"):
			t.find(d, "variables: gatehouse answers with fixed text")
			return nil
		case !redirect:
			r.body = args[1]
		default:
			if err := middleware.CheckLocation(args[1]); err != nil {
				t.find(d, "%v", err)
				return nil
			}
			r.location = args[1]
		}
	}
	if redirect && r.location == "" {
		t.find(d, "a redirect without a target")
		return nil
	}
	t.done(d)
	return r
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// buildRoute turns a location into a route carrying what its nginx scope
// gives it beyond the host's settings.
func (t *translator) buildRoute(b *hostBuild, lb *locBuild) *routeOut {
	h := b.host
	r := &routeOut{src: lb.l, paths: []string{lb.pattern}}
	if lb.ret != nil {
		if r.respond = t.respond(lb.ret); r.respond != nil {
			// nginx's return answers in the rewrite phase, before
			// limit_req, allow/deny and auth_basic; so does a route's
			// respond.
			r.refuses = slices.Contains([]int{403, 404, 444}, r.respond.status)
			t.markLocation(lb.l)
			return r
		}
	}
	if lb.proxy != nil {
		p := lb.proxy
		if !sameURLs(p.urls, h.upstreams) {
			r.upstreams = p.urls
		}
		if p.maxFails.value != h.maxFails.value {
			mf := p.maxFails
			if mf.value == "" {
				mf.value = "1" // nginx's default
			}
			r.maxFails = &mf
		}
		if p.failTimeout.value != h.failTimeout.value {
			r.failTimeout = p.failTimeout
			if r.failTimeout.value == "" {
				r.failTimeout.value = "10s" // nginx's default
			}
		}
		up := hasUpgrade(lb.sc)
		if hostUp := h.websocket == nil; hostUp != up {
			r.websocket = &up
		}
	}
	// auth_basic
	if lb.sc.authBasic != b.sc.authBasic || lb.sc.authFile != b.sc.authFile {
		switch {
		case authOn(lb.sc):
			a := t.auth(lb.sc, lb.l)
			if a != nil && (h.auth == nil || h.auth.realm != a.realm || h.auth.file != a.file) {
				r.auth = a
			}
		case h.auth != nil:
			r.authOff = lb.sc.authBasic
			if r.authOff == nil {
				r.authOff = lb.l
			}
			t.done(lb.sc.authBasic)
		default:
			if lb.sc.authBasic != nil {
				t.done(lb.sc.authBasic)
			}
		}
	}
	// allow and deny
	t.done(lb.sc.access...)
	rules := accessRules(lb.sc.access)
	if !itemValuesEqual(rules, h.access) {
		r.access = rules
		if len(rules) == 0 {
			r.access = []item{{value: "allow all"}}
		}
	}
	r.refuses = refusesEveryone(rules)
	// limit_req
	names := t.limits(lb.sc)
	if !itemValuesEqual(names, h.limit) {
		r.limit = names
		if len(names) == 0 {
			r.limitOff = lb.l
		}
	}
	// client_max_body_size
	if size, src := t.bodySize(lb.sc); size != h.maxBody {
		v := item{value: size, src: src}
		switch {
		case size == "" && h.buffer:
			t.find(src, "no body limit here, but the host buffers request bodies (buffer_requests, as nginx's proxy_request_buffering), which gatehouse bounds by max_body: the route keeps the host's %s", h.maxBody)
		case size == "":
			v.value = "0"
			r.maxBody = &v
		default:
			r.maxBody = &v
		}
	}
	// proxy_read_timeout
	if v := t.readTimeout(lb.sc); v.value != h.headerTime.value {
		r.headerTime = v
	}
	// add_header and proxy_hide_header: a location's own lists replace
	// the server's.
	if !slices.Equal(lb.sc.addHeader, b.hostAdd) || !slices.Equal(lb.sc.hideHeader, b.hostHide) {
		t.routeHeaders(b, lb, r)
	}
	return r
}

// addHeaders appends the fixed headers of add_header directives to set,
// and lists those with variables.
func (t *translator) addHeaders(set []kvItem, ds []*conf.Directive) []kvItem {
	for _, d := range ds {
		if len(d.Args) < 2 || len(d.Args) > 3 || (len(d.Args) == 3 && d.Args[2] != "always") {
			continue
		}
		if strings.Contains(d.Args[1], "$") {
			t.find(d, "header values with variables: gatehouse sets fixed values")
			continue
		}
		t.done(d)
		set = append(set, kvItem{key: d.Args[0], value: d.Args[1], src: d})
	}
	return set
}

// routeHeaders gives r the response headers of its location: those it
// adds, "" for those the host adds and the location does not, and those
// it hides.
func (t *translator) routeHeaders(b *hostBuild, lb *locBuild, r *routeOut) {
	h := b.host
	named := func(name string) bool {
		return slices.ContainsFunc(r.set, func(kv kvItem) bool { return strings.EqualFold(kv.key, name) })
	}
	if !slices.Equal(lb.sc.addHeader, b.hostAdd) {
		r.set = t.addHeaders(r.set, lb.sc.addHeader)
		for _, kv := range h.set {
			if !named(kv.key) {
				r.set = append(r.set, kvItem{key: kv.key, src: lb.l}) // "": not sent here
			}
		}
	}
	if slices.Equal(lb.sc.hideHeader, b.hostHide) {
		return
	}
	for _, d := range lb.sc.hideHeader {
		if len(d.Args) != 1 {
			continue
		}
		t.done(d)
		if !named(d.Args[0]) && !slices.ContainsFunc(h.remove, func(it item) bool { return strings.EqualFold(it.value, d.Args[0]) }) {
			r.remove = appendItem(r.remove, d.Args[0], d)
		}
	}
	for _, it := range h.remove {
		hidden := slices.ContainsFunc(lb.sc.hideHeader, func(d *conf.Directive) bool {
			return len(d.Args) == 1 && strings.EqualFold(d.Args[0], it.value)
		})
		if !hidden {
			_, p := locationArgs(lb.l)
			t.find(lb.l, "nginx passed the upstream's %s header here (location %s has its own proxy_hide_header list); gatehouse removes it on every route of the host", it.value, p)
		}
	}
}

// markLocation marks what a location answered by return holds: nginx
// never got to it.
func (t *translator) markLocation(l *conf.Directive) {
	for _, d := range l.Block {
		switch d.Name {
		case "limit_req", "allow", "deny", "auth_basic", "auth_basic_user_file", "client_max_body_size",
			"proxy_read_timeout", "proxy_connect_timeout", "limit_req_status", "satisfy":
			t.done(d)
		}
	}
}

func hasUpgrade(sc scope) bool {
	return slices.ContainsFunc(sc.proxyHeader, func(d *conf.Directive) bool {
		return len(d.Args) == 2 && strings.EqualFold(d.Args[0], "upgrade")
	})
}

// bodySize returns the client_max_body_size in force as a gatehouse size
// ("" for no limit) and the directive it came from (nil: nginx's default
// 1MB).
func (t *translator) bodySize(sc scope) (string, *conf.Directive) {
	d := sc.bodySize
	if d == nil {
		return "1MB", nil
	}
	size, err := nginxSize(d.Args)
	if err != nil {
		t.find(d, "%v", err)
		return "1MB", nil
	}
	t.done(d)
	return size, d
}

// readTimeout returns the proxy_read_timeout in force ("" when nginx's
// default, which gatehouse's upstream_response_header_timeout matches).
func (t *translator) readTimeout(sc scope) item {
	d := sc.readTimeout
	if d == nil {
		return item{}
	}
	v, err := nginxSeconds(d.Args)
	if err != nil {
		t.find(d, "%v", err)
		return item{}
	}
	t.done(d)
	return item{value: v, src: d}
}

// dialTimeout carries proxy_connect_timeout over to
// limits.upstream_dial_timeout when every proxy_pass has the same one.
func (t *translator) dialTimeout() item {
	var first *dialUse
	same := true
	for i := range t.dials {
		u := &t.dials[i]
		if first == nil {
			first = u
		} else if u.value != first.value {
			same = false
		}
	}
	if first == nil {
		return item{}
	}
	if !same {
		for _, u := range t.dials {
			if u.d != nil {
				t.find(u.d, "gatehouse has one upstream connect timeout (limits.upstream_dial_timeout) and nginx's differs between proxy_pass directives (%s here)", u.value)
			}
		}
		return item{}
	}
	for _, u := range t.dials {
		t.done(u.d)
	}
	if first.d == nil {
		return item{} // nginx's default everywhere: gatehouse keeps its own
	}
	return item{value: first.value, src: first.d}
}

// auth returns the basic auth in force in sc, or nil when it cannot be
// carried (listed).
func (t *translator) auth(sc scope, src *conf.Directive) *authOut {
	realm := sc.authBasic.Args[0]
	file := sc.authFile
	if len(file.Args) != 1 || strings.Contains(file.Args[0], "$") || strings.Contains(realm, "$") {
		t.find(file, "basic auth with variables: gatehouse needs a fixed realm and file")
		return nil
	}
	if sc.satisfy != nil && len(sc.satisfy.Args) == 1 && sc.satisfy.Args[0] == "any" && len(sc.access) > 0 {
		t.find(sc.satisfy, "satisfy any: gatehouse asks for a login and applies access rules both, whatever the client's address")
	} else if sc.satisfy != nil {
		t.done(sc.satisfy)
	}
	htfile := t.abs(file.Args[0])
	t.checkHtpasswd(file, htfile)
	t.done(sc.authBasic, file)
	return &authOut{realm: realm, file: htfile, src: []*conf.Directive{src}}
}

// upstreamParams reads max_fails= and fail_timeout= of an upstream
// server line, "" where nginx's default applies.
func upstreamParams(d *conf.Directive) (maxFails, failTimeout string, err error) {
	for _, a := range d.Args[1:] {
		switch {
		case strings.HasPrefix(a, "max_fails="):
			maxFails = strings.TrimPrefix(a, "max_fails=")
			if maxFails == "1" {
				maxFails = ""
			}
		case strings.HasPrefix(a, "fail_timeout="):
			v, e := nginxSeconds([]string{strings.TrimPrefix(a, "fail_timeout=")})
			if e != nil {
				return "", "", e
			}
			if v != "10s" {
				failTimeout = v
			}
		}
	}
	return maxFails, failTimeout, nil
}
