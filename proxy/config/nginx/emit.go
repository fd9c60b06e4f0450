package nginx

import (
	"bytes"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gatehouse/proxy/config"
	"gatehouse/proxy/config/fail2ban"
	"gatehouse/proxy/config/internal/yamlout"
	"gatehouse/proxy/config/nginx/conf"
	"gatehouse/signer"

	"go.yaml.in/yaml/v3"
)

// output is the gatehouse config being built, each piece with the nginx
// (or fail2ban) directive it came from.
type output struct {
	httpListens  []item
	httpsListens []item
	certs        []certOut
	redirects    []*conf.Directive // return 301 https://… seen
	catchAll     []*conf.Directive // server_name _ / ""
	refusers     []*conf.Directive // catch-all servers that refuse every request
	trusted      []item
	trustedNote  string
	allow        []item
	hosts        []*hostOut
	rates        []*rateOut
	jails        []*jailOut
	firewall     *firewallOut
	log          *logOut
	watches      []fail2ban.ImportedWatch
}

type item struct {
	value string
	src   *conf.Directive
}

type kvItem struct {
	key, value string
	src        *conf.Directive
}

type certOut struct {
	cert, key string
	src       *conf.Directive
}

type hostOut struct {
	src         *conf.Directive
	names       []item
	upstreams   []item
	tls         bool
	maxBody     string
	maxBodySrc  *conf.Directive
	maxBodyNote string
	// bodyTimeout is body_read_timeout ("" leaves the default, nginx's
	// client_body_timeout default too).
	bodyTimeout    string
	bodyTimeoutSrc *conf.Directive
	// buffer is buffer_requests; bufferSrc the proxy_request_buffering
	// it came from, nil for nginx's default.
	buffer    bool
	bufferSrc *conf.Directive
	websocket *bool
	auth      *authOut
	hotlink   *hotlinkOut
	signed    *signedOut
	set       []kvItem
	remove    []item
	// access, limit, headerTime (proxy_read_timeout), maxFails and
	// failTimeout are the server's; routes carry what differs.
	access      []item
	limit       []item
	headerTime  item
	maxFails    item
	failTimeout item
	routes      []*routeOut
}

type authOut struct {
	realm, file string
	src         []*conf.Directive
}

type hotlinkAction struct {
	status   int
	redirect string
	note     string
}

type hotlinkOut struct {
	paths  []string
	allow  []string
	action hotlinkAction
	src    []*conf.Directive
}

type signedOut struct {
	paths []string
	src   *conf.Directive
}

type jailOut struct {
	name     string
	src      *conf.Directive // the fail2ban section
	maxretry int
	findtime time.Duration
	bantime  time.Duration
	factor   float64 // 0: no increment
	maxtime  time.Duration
	rate     float64
	burst    int
	notes    []string
}

type firewallOut struct {
	backend string
	ports   []int
	src     *conf.Directive
}

type logOut struct {
	access string
	file   string
	src    *conf.Directive
}

// hasKey reports whether the config struct T has a field with YAML key
// key. The importer writes a section only when gatehouse's config knows
// it, and a comment otherwise, so its output always passes gatehouse
// check (tls and hosts[].signed_links arrive with their own features).
func hasKey[T any](key string) bool {
	rt := reflect.TypeFor[T]()
	for i := range rt.NumField() {
		if name, _, _ := strings.Cut(rt.Field(i).Tag.Get("yaml"), ","); name == key {
			return true
		}
	}
	return false
}

// from formats a source reference.
func from(d *conf.Directive) string {
	if d == nil {
		return ""
	}
	return d.Pos()
}

// Node builders.

func scalar(v string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
}

func number(v string) *yaml.Node {
	tag := "!!int"
	if strings.ContainsAny(v, ".e") {
		tag = "!!float"
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v}
}

func boolean(v bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}
}

func seq(flow bool, items ...*yaml.Node) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Content: items}
	if flow {
		n.Style = yaml.FlowStyle
	}
	return n
}

func strs(flow bool, vs []string) *yaml.Node {
	n := seq(flow)
	for _, v := range vs {
		n.Content = append(n.Content, scalar(v))
	}
	return n
}

// mapping is a YAML mapping built key by key.
type mapping struct{ n *yaml.Node }

func newMapping() mapping { return mapping{&yaml.Node{Kind: yaml.MappingNode}} }

// add appends key: value with an optional comment above the key.
func (m mapping) add(key string, value *yaml.Node, comment ...string) {
	k := scalar(key)
	k.Tag = ""
	k.HeadComment = strings.Join(slices.DeleteFunc(comment, func(s string) bool { return s == "" }), "\n")
	m.n.Content = append(m.n.Content, k, value)
}

// itemSeq lists items, each with its source directive as a line comment.
func itemSeq(items []item) *yaml.Node {
	n := seq(false)
	for _, it := range items {
		v := scalar(it.value)
		switch {
		case it.src != nil:
			v.LineComment = it.src.Name + ", " + from(it.src)
		case it.value == "allow all":
			v.LineComment = "nginx lets in whoever no rule names"
		}
		n.Content = append(n.Content, v)
	}
	return n
}

func (t *translator) emit() []byte {
	o := &t.out
	root := newMapping()
	schemaTLS := hasKey[config.File]("tls")

	// listen
	lm := newMapping()
	if len(o.httpListens) > 0 {
		l := scalar(o.httpListens[0].value)
		l.LineComment = "listen, " + from(o.httpListens[0].src)
		lm.add("http", l)
		for _, other := range o.httpListens[1:] {
			t.find(other.src, "gatehouse has one plain-HTTP listener, %s", o.httpListens[0].value)
		}
	}
	tlsOn := len(o.certs) > 0
	if len(o.httpsListens) > 0 && schemaTLS && tlsOn {
		l := scalar(o.httpsListens[0].value)
		l.LineComment = "listen … ssl, " + from(o.httpsListens[0].src)
		lm.add("https", l)
	}
	for _, other := range slices.Clone(o.httpsListens)[min(1, len(o.httpsListens)):] {
		t.find(other.src, "gatehouse has one HTTPS listener, %s", o.httpsListens[0].value)
	}
	if len(lm.n.Content) > 0 {
		root.add("listen", lm.n)
	}
	var footer []string
	if tlsOn {
		tm := newMapping()
		certs := seq(false)
		for _, c := range o.certs {
			cm := newMapping()
			cm.add("cert", scalar(c.cert))
			cm.add("key", scalar(c.key))
			cm.n.HeadComment = "ssl_certificate, " + from(c.src)
			if strings.HasPrefix(c.cert, "/etc/letsencrypt/") {
				cm.n.HeadComment += "\ncertbot's files: tls.acme can obtain and renew them itself"
			}
			certs.Content = append(certs.Content, cm.n)
		}
		tm.add("certificates", certs)
		comment := []string{"TLS on: plain HTTP is redirected to https"}
		for _, r := range o.redirects {
			comment = append(comment, "("+r.String()+", "+from(r)+")")
		}
		if schemaTLS {
			root.add("tls", tm.n, comment...)
		} else {
			footer = append(footer, "TLS, to enable once gatehouse's config has the tls section:", "")
			footer = append(footer, commentOut("tls", tm.n)...)
		}
	} else {
		for _, r := range o.redirects {
			t.find(r, "a redirect to https, but no server here has a certificate; add tls.acme or tls.certificates")
		}
	}
	if len(o.trusted) > 0 {
		root.add("trusted_proxies", itemSeq(o.trusted), o.trustedNote)
	}
	if len(o.allow) > 0 {
		root.add("allow", itemSeq(o.allow), "never counted by a jail nor banned (fail2ban ignoreip)")
	}
	if lm := t.emitLimits(); lm != nil {
		root.add("limits", lm)
	}
	if len(o.jails) > 0 {
		root.add("state_dir", scalar("/var/lib/gatehouse"), "bans and ban history survive restarts here")
	}

	hosts := seq(false)
	for _, h := range o.hosts {
		hosts.Content = append(hosts.Content, t.emitHost(h, &footer))
	}
	hostComment := ""
	if len(o.hosts) == 0 {
		hostComment = "no server block proxied anything; gatehouse needs at least one host"
	}
	for _, r := range o.refusers {
		hostComment = strings.TrimSpace(hostComment + "\nunknown hosts get 421 (as the catch-all server at " + from(r) + " refused them)")
	}
	root.add("hosts", hosts, hostComment)

	if js := t.emitJails(); js != nil {
		root.add("jails", js)
	}
	if len(o.watches) > 0 {
		ws := seq(false)
		for _, w := range o.watches {
			ws.Content = append(ws.Content, w.Node())
		}
		root.add("watch", ws, "fail2ban's other jails: the logs they read, judged by the same filters")
	}
	if f := o.firewall; f != nil {
		fm := newMapping()
		fm.add("backend", scalar(f.backend))
		if len(f.ports) > 0 {
			ps := seq(true)
			for _, p := range f.ports {
				ps.Content = append(ps.Content, number(strconv.Itoa(p)))
			}
			fm.add("ports", ps)
		}
		root.add("firewall", fm.n, "banaction, "+from(f.src)+" (needs CAP_NET_ADMIN)")
	}
	if m := t.mail; m != nil {
		em := newMapping()
		smtp := scalar("localhost:25")
		smtp.LineComment = "fail2ban used the local sendmail: set the SMTP server (STARTTLS is required)"
		em.add("smtp", smtp)
		sender := scalar(m.from)
		if m.fromSrc != nil {
			sender.LineComment = "sender, " + from(m.fromSrc)
		}
		em.add("from", sender)
		to := strs(true, m.to)
		if m.toSrc != nil {
			to.LineComment = "destemail, " + from(m.toSrc)
		}
		em.add("to", to)
		nm := newMapping()
		nm.add("email", em.n)
		root.add("notify", nm.n, "action, "+from(m.src)+" (jails "+strings.Join(m.jails, ", ")+"): a mail per ban, or a digest")
	}
	if l := o.log; l != nil {
		lg := newMapping()
		lg.add("access", scalar(l.access))
		if l.file != "" {
			lg.add("access_file", scalar(l.file))
		}
		root.add("log", lg.n, "access_log, "+from(l.src))
	}

	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root.n}}
	head := []string{"gatehouse config imported from " + t.c.File + " by gatehouse import nginx"}
	switch {
	case t.opts.Fail2banWatch != nil && t.opts.Fail2banWatch.Dir != "":
		head[0] += " (with " + t.opts.Fail2banWatch.Dir + ")"
	case t.opts.Fail2ban != nil:
		head[0] += " (with " + t.opts.Fail2ban.File + ")"
	}
	head = append(head, "Each block names the nginx directive and file:line it came from.")
	doc.HeadComment = strings.Join(head, "\n")

	if len(t.findings) > 0 {
		// emit itself may add findings; sort them with the rest.
		t.findings = sortFindings(dedupe(t.findings))
		footer = append(footer, "", "Not carried over:", "")
		for _, f := range t.findings {
			footer = append(footer, "  "+f.String())
		}
	}
	doc.FootComment = strings.TrimSpace(strings.Join(footer, "\n"))

	out, err := yamlout.Encode(doc)
	if err != nil {
		// The tree holds strings and numbers only.
		panic(fmt.Sprintf("nginx: encode YAML: %v", err))
	}
	return out
}

// commentOut renders key: value as comment lines.
func commentOut(key string, value *yaml.Node) []string {
	m := newMapping()
	m.add(key, value)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(m.n); err != nil {
		panic(fmt.Sprintf("nginx: encode YAML: %v", err))
	}
	return strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
}

func (t *translator) emitHost(h *hostOut, footer *[]string) *yaml.Node {
	m := newMapping()
	names := seq(true)
	for _, n := range h.names {
		names.Content = append(names.Content, scalar(n.value))
	}
	m.add("match", names)
	m.add("upstreams", itemSeq(h.upstreams))
	if h.websocket != nil {
		w := boolean(*h.websocket)
		w.LineComment = "nginx passed no Upgrade header (no proxy_set_header Upgrade)"
		m.add("websocket", w)
	}
	if h.maxBody != "" {
		v := scalar(h.maxBody)
		v.LineComment = h.maxBodyNote
		if h.maxBodySrc != nil {
			v.LineComment = "client_max_body_size, " + from(h.maxBodySrc)
		}
		m.add("max_body", v)
	}
	if h.bodyTimeout != "" {
		v := scalar(h.bodyTimeout)
		v.LineComment = "client_body_timeout, " + from(h.bodyTimeoutSrc)
		m.add("body_read_timeout", v)
	}
	if h.buffer {
		v := boolean(true)
		v.LineComment = "nginx's default proxy_request_buffering on: a slow client holds no upstream connection"
		if h.bufferSrc != nil {
			v.LineComment = "proxy_request_buffering, " + from(h.bufferSrc)
		}
		m.add("buffer_requests", v)
	}
	if a := h.auth; a != nil {
		m.add("basic_auth", authNode(a), "auth_basic, "+from(a.src[0]))
	}
	if len(h.access) > 0 {
		m.add("access", itemSeq(h.access), "allow and deny, first match wins")
	}
	if len(h.limit) > 0 {
		m.add("limit", limitNode(h.limit))
	}
	emitUpstreamSettings(m, h.headerTime, h.maxFails, h.failTimeout)
	if hl := h.hotlink; hl != nil {
		hm := newMapping()
		hm.add("paths", strs(true, hl.paths))
		hm.add("allow", strs(true, hl.allow))
		am := newMapping()
		if hl.action.redirect != "" {
			am.add("redirect", scalar(hl.action.redirect))
		} else {
			am.add("status", number(strconv.Itoa(hl.action.status)))
		}
		am.n.Style = yaml.FlowStyle
		hm.add("action", am.n)
		var srcs []string
		for _, s := range hl.src {
			srcs = append(srcs, s.Name+" "+from(s))
		}
		m.add("hotlink", hm.n, strings.Join(srcs, ", "), hl.action.note)
	}
	if sl := h.signed; sl != nil {
		sm := newMapping()
		sm.add("paths", strs(true, sl.paths))
		sm.add("key", scalar("env:GATEHOUSE_LINK_KEY"))
		comment := "secure_link, " + from(sl.src) + ": nginx's MD5 links cannot be carried over; sign new links with gatehouse sign link"
		if hasKey[config.Host]("signed_links") {
			m.add("signed_links", sm.n, comment)
		} else {
			*footer = append(*footer, "", "signed links for "+h.names[0].value+" ("+comment+"),",
				"to add to that host once gatehouse's config has hosts[].signed_links:", "")
			*footer = append(*footer, commentOut("signed_links", sm.n)...)
		}
	}
	if len(h.set) > 0 || len(h.remove) > 0 {
		m.add("headers", headersNode(h.set, h.remove))
	}
	if len(h.routes) > 0 {
		rs := seq(false)
		for _, r := range h.routes {
			rs.Content = append(rs.Content, t.emitRoute(r))
		}
		m.add("routes", rs, "nginx's locations: the route a path selects is chosen as nginx chose the location")
	}
	m.n.HeadComment = "server " + strings.Join(itemValues(h.names), " ") + ", " + from(h.src)
	return m.n
}

func authNode(a *authOut) *yaml.Node {
	am := newMapping()
	am.add("realm", scalar(a.realm))
	am.add("htpasswd", scalar(a.file))
	return am.n
}

// limitNode writes limit names, each with its limit_req.
func limitNode(names []item) *yaml.Node {
	if len(names) == 1 {
		v := scalar(names[0].value)
		v.LineComment = "limit_req, " + from(names[0].src)
		return v
	}
	return itemSeq(names)
}

// emitUpstreamSettings writes proxy_read_timeout and the upstream
// servers' max_fails and fail_timeout.
func emitUpstreamSettings(m mapping, headerTime, maxFails, failTimeout item) {
	if headerTime.value != "" {
		for _, key := range []string{"response_header_timeout", "read_timeout"} {
			v := scalar(headerTime.value)
			v.LineComment = "proxy_read_timeout, " + from(headerTime.src)
			m.add(key, v)
		}
	}
	if maxFails.value != "" {
		v := number(maxFails.value)
		v.LineComment = "nginx's default max_fails"
		if maxFails.src != nil {
			v.LineComment = "max_fails, " + from(maxFails.src)
		}
		m.add("max_fails", v)
	}
	if failTimeout.value != "" {
		v := scalar(failTimeout.value)
		v.LineComment = "nginx's default fail_timeout"
		if failTimeout.src != nil {
			v.LineComment = "fail_timeout, " + from(failTimeout.src)
		}
		m.add("fail_timeout", v)
	}
}

// empty reports whether a route carries nothing but its paths.
func (r *routeOut) empty() bool {
	return r.upstreams == nil && r.headerTime.value == "" && r.maxFails == nil && r.failTimeout.value == "" &&
		r.authOff == nil && r.auth == nil && r.access == nil && r.limit == nil && r.limitOff == nil &&
		r.respond == nil && r.maxBody == nil && r.websocket == nil && r.set == nil && r.remove == nil
}

// headersNode writes headers.set and headers.remove.
func headersNode(set []kvItem, remove []item) *yaml.Node {
	hm := newMapping()
	if len(set) > 0 {
		sm := newMapping()
		for _, kv := range set {
			v := scalar(kv.value)
			if kv.value == "" {
				v.LineComment = "not sent: the location's add_header list replaces the server's"
			} else {
				v.LineComment = "add_header, " + from(kv.src)
			}
			sm.add(kv.key, v)
		}
		hm.add("set", sm.n)
	}
	if len(remove) > 0 {
		hm.add("remove", itemSeq(remove))
	}
	return hm.n
}

func (t *translator) emitRoute(r *routeOut) *yaml.Node {
	m := newMapping()
	paths := strs(true, r.paths)
	m.add("paths", paths)
	if r.respond != nil {
		rm := newMapping()
		rm.add("status", number(strconv.Itoa(r.respond.status)))
		if r.respond.body != "" {
			rm.add("body", scalar(r.respond.body))
		}
		if r.respond.location != "" {
			rm.add("location", scalar(r.respond.location))
		}
		rm.n.Style = yaml.FlowStyle
		rm.n.LineComment = "return, " + from(r.respond.src)
		m.add("respond", rm.n)
	}
	if r.upstreams != nil {
		m.add("upstreams", itemSeq(r.upstreams))
	}
	mf := item{}
	if r.maxFails != nil {
		mf = *r.maxFails
	}
	emitUpstreamSettings(m, r.headerTime, mf, r.failTimeout)
	if r.authOff != nil {
		v := scalar("off")
		v.LineComment = r.authOff.Name + ", " + from(r.authOff)
		m.add("basic_auth", v)
	} else if r.auth != nil {
		m.add("basic_auth", authNode(r.auth), "auth_basic, "+from(r.auth.src[0]))
	}
	if r.access != nil {
		m.add("access", itemSeq(r.access))
	}
	if r.limitOff != nil {
		m.add("limit", scalar("off"))
	} else if r.limit != nil {
		m.add("limit", limitNode(r.limit))
	}
	if r.maxBody != nil {
		v := scalar(r.maxBody.value)
		if r.maxBody.src != nil {
			v.LineComment = "client_max_body_size, " + from(r.maxBody.src)
		} else {
			v.LineComment = "nginx's default client_max_body_size"
		}
		m.add("max_body", v)
	}
	if len(r.set) > 0 || len(r.remove) > 0 {
		m.add("headers", headersNode(r.set, r.remove))
	}
	if r.websocket != nil {
		v := boolean(*r.websocket)
		if !*r.websocket {
			v.LineComment = "nginx passed no Upgrade header here"
		}
		m.add("websocket", v)
	}
	if r.refuses && findJail(t.out.jails, "probes") != nil {
		v := scalar("probes")
		v.LineComment = "a location refusing every request; fail2ban's botsearch jail counted such requests"
		m.add("jail", v)
	}
	mod, p := locationArgs(r.src)
	m.n.HeadComment = strings.Join(append([]string{"location " + strings.TrimSpace(mod+" "+p) + ", " + from(r.src)}, r.notes...), "\n")
	return m.n
}

// emitLimits writes limits.rates and limits.upstream_dial_timeout.
func (t *translator) emitLimits() *yaml.Node {
	lm := newMapping()
	if dial := t.dialTimeout(); dial.value != "" {
		v := scalar(dial.value)
		v.LineComment = "proxy_connect_timeout, " + from(dial.src)
		lm.add("upstream_dial_timeout", v)
	}
	if len(t.out.rates) > 0 {
		jail := findJail(t.out.jails, "limit")
		rm := newMapping()
		for _, r := range t.out.rates {
			m := newMapping()
			m.add("rate", scalar(r.rate))
			if r.key.burst > 0 {
				m.add("burst", number(strconv.Itoa(r.key.burst)))
			}
			if r.key.delay != "" {
				if r.key.delay == "nodelay" {
					m.add("delay", scalar("nodelay"))
				} else {
					m.add("delay", number(r.key.delay))
				}
			}
			m.add("status", number(strconv.Itoa(r.key.status)))
			if jail != nil {
				m.add("jail", scalar(jail.name))
			}
			m.n.Style = yaml.FlowStyle
			rm.add(r.name, m.n, "limit_req_zone, "+from(r.zone)+"; limit_req, "+from(r.src))
		}
		lm.add("rates", rm.n, "nginx's limit_req zones, used by name where nginx used them")
	}
	if len(lm.n.Content) == 0 {
		return nil
	}
	return lm.n
}

func itemValues(items []item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.value)
	}
	return out
}

func (t *translator) emitJails() *yaml.Node {
	o := &t.out
	jails := slices.Clone(o.jails)
	if len(jails) == 0 {
		return nil
	}
	jm := newMapping()
	for _, j := range jails {
		m := newMapping()
		if j.rate > 0 {
			m.add("rate", number(strconv.FormatFloat(j.rate, 'f', -1, 64)))
			m.add("burst", number(strconv.Itoa(j.burst)))
		}
		if j.maxretry > 0 {
			m.add("maxretry", number(strconv.Itoa(j.maxretry)))
		}
		if j.findtime > 0 {
			m.add("findtime", scalar(signer.FormatDuration(j.findtime)))
		}
		if j.bantime > 0 {
			m.add("bantime", scalar(signer.FormatDuration(j.bantime)))
		}
		if j.factor > 0 {
			im := newMapping()
			im.add("factor", number(strconv.FormatFloat(j.factor, 'f', -1, 64)))
			if j.maxtime > 0 {
				im.add("max", scalar(signer.FormatDuration(j.maxtime)))
			}
			im.n.Style = yaml.FlowStyle
			m.add("increment", im.n)
		}
		var comment []string
		if j.src != nil {
			comment = append(comment, j.src.Name+", "+from(j.src))
		}
		comment = append(comment, j.notes...)
		jm.add(j.name, m.n, comment...)
	}
	return jm.n
}

func findJail(js []*jailOut, name string) *jailOut {
	for _, j := range js {
		if j.name == name {
			return j
		}
	}
	return nil
}

func sortFindings(fs []Finding) []Finding {
	slices.SortStableFunc(fs, func(a, b Finding) int { return a.order - b.order })
	return fs
}
