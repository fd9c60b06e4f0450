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

func boolean(v bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(v)}
}

// itemSeq lists items, each with its source directive as a line comment.
func itemSeq(items []item) *yaml.Node {
	n := yamlout.Seq(false)
	for _, it := range items {
		v := yamlout.Scalar(it.value)
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
	root := yamlout.NewMapping()
	schemaTLS := hasKey[config.File]("tls")

	// listen
	lm := yamlout.NewMapping()
	if len(o.httpListens) > 0 {
		l := yamlout.Scalar(o.httpListens[0].value)
		l.LineComment = "listen, " + from(o.httpListens[0].src)
		lm.Add("http", l)
		for _, other := range o.httpListens[1:] {
			t.find(other.src, "gatehouse has one plain-HTTP listener, %s", o.httpListens[0].value)
		}
	}
	tlsOn := len(o.certs) > 0
	if len(o.httpsListens) > 0 && schemaTLS && tlsOn {
		l := yamlout.Scalar(o.httpsListens[0].value)
		l.LineComment = "listen … ssl, " + from(o.httpsListens[0].src)
		lm.Add("https", l)
	}
	for _, other := range slices.Clone(o.httpsListens)[min(1, len(o.httpsListens)):] {
		t.find(other.src, "gatehouse has one HTTPS listener, %s", o.httpsListens[0].value)
	}
	if len(lm.N.Content) > 0 {
		root.Add("listen", lm.N)
	}
	var footer []string
	if tlsOn {
		tm := yamlout.NewMapping()
		certs := yamlout.Seq(false)
		for _, c := range o.certs {
			cm := yamlout.NewMapping()
			cm.Add("cert", yamlout.Scalar(c.cert))
			cm.Add("key", yamlout.Scalar(c.key))
			cm.N.HeadComment = "ssl_certificate, " + from(c.src)
			if strings.HasPrefix(c.cert, "/etc/letsencrypt/") {
				cm.N.HeadComment += "\ncertbot's files: tls.acme can obtain and renew them itself"
			}
			certs.Content = append(certs.Content, cm.N)
		}
		tm.Add("certificates", certs)
		comment := []string{"TLS on: plain HTTP is redirected to https"}
		for _, r := range o.redirects {
			comment = append(comment, "("+r.String()+", "+from(r)+")")
		}
		if schemaTLS {
			root.Add("tls", tm.N, comment...)
		} else {
			footer = append(footer, "TLS, to enable once gatehouse's config has the tls section:", "")
			footer = append(footer, commentOut("tls", tm.N)...)
		}
	} else {
		for _, r := range o.redirects {
			t.find(r, "a redirect to https, but no server here has a certificate; add tls.acme or tls.certificates")
		}
	}
	if len(o.trusted) > 0 {
		root.Add("trusted_proxies", itemSeq(o.trusted), o.trustedNote)
	}
	if len(o.allow) > 0 {
		root.Add("allow", itemSeq(o.allow), "never counted by a jail nor banned (fail2ban ignoreip)")
	}
	if lm := t.emitLimits(); lm != nil {
		root.Add("limits", lm)
	}
	if len(o.jails) > 0 {
		root.Add("state_dir", yamlout.Scalar("/var/lib/gatehouse"), "bans and ban history survive restarts here")
	}

	hosts := yamlout.Seq(false)
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
	root.Add("hosts", hosts, hostComment)

	if js := t.emitJails(); js != nil {
		root.Add("jails", js)
	}
	if len(o.watches) > 0 {
		ws := yamlout.Seq(false)
		for _, w := range o.watches {
			ws.Content = append(ws.Content, w.Node())
		}
		root.Add("watch", ws, "fail2ban's other jails: the logs they read, judged by the same filters")
	}
	if f := o.firewall; f != nil {
		fm := yamlout.NewMapping()
		fm.Add("backend", yamlout.Scalar(f.backend))
		if len(f.ports) > 0 {
			ps := yamlout.Seq(true)
			for _, p := range f.ports {
				ps.Content = append(ps.Content, yamlout.Number(strconv.Itoa(p)))
			}
			fm.Add("ports", ps)
		}
		root.Add("firewall", fm.N, "banaction, "+from(f.src)+" (needs CAP_NET_ADMIN)")
	}
	if m := t.mail; m != nil {
		em := yamlout.NewMapping()
		smtp := yamlout.Scalar("localhost:25")
		smtp.LineComment = "fail2ban used the local sendmail: set the SMTP server (STARTTLS is required)"
		em.Add("smtp", smtp)
		sender := yamlout.Scalar(m.from)
		if m.fromSrc != nil {
			sender.LineComment = "sender, " + from(m.fromSrc)
		}
		em.Add("from", sender)
		to := yamlout.Strs(true, m.to)
		if m.toSrc != nil {
			to.LineComment = "destemail, " + from(m.toSrc)
		}
		em.Add("to", to)
		nm := yamlout.NewMapping()
		nm.Add("email", em.N)
		root.Add("notify", nm.N, "action, "+from(m.src)+" (jails "+strings.Join(m.jails, ", ")+"): a mail per ban, or a digest")
	}
	if l := o.log; l != nil {
		lg := yamlout.NewMapping()
		lg.Add("access", yamlout.Scalar(l.access))
		if l.file != "" {
			lg.Add("access_file", yamlout.Scalar(l.file))
		}
		root.Add("log", lg.N, "access_log, "+from(l.src))
	}

	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root.N}}
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
	m := yamlout.NewMapping()
	m.Add(key, value)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(m.N); err != nil {
		panic(fmt.Sprintf("nginx: encode YAML: %v", err))
	}
	return strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
}

func (t *translator) emitHost(h *hostOut, footer *[]string) *yaml.Node {
	m := yamlout.NewMapping()
	names := yamlout.Seq(true)
	for _, n := range h.names {
		names.Content = append(names.Content, yamlout.Scalar(n.value))
	}
	m.Add("match", names)
	m.Add("upstreams", itemSeq(h.upstreams))
	if h.websocket != nil {
		w := boolean(*h.websocket)
		w.LineComment = "nginx passed no Upgrade header (no proxy_set_header Upgrade)"
		m.Add("websocket", w)
	}
	if h.maxBody != "" {
		v := yamlout.Scalar(h.maxBody)
		v.LineComment = h.maxBodyNote
		if h.maxBodySrc != nil {
			v.LineComment = "client_max_body_size, " + from(h.maxBodySrc)
		}
		m.Add("max_body", v)
	}
	if h.bodyTimeout != "" {
		v := yamlout.Scalar(h.bodyTimeout)
		v.LineComment = "client_body_timeout, " + from(h.bodyTimeoutSrc)
		m.Add("body_read_timeout", v)
	}
	if h.buffer {
		v := boolean(true)
		v.LineComment = "nginx's default proxy_request_buffering on: a slow client holds no upstream connection"
		if h.bufferSrc != nil {
			v.LineComment = "proxy_request_buffering, " + from(h.bufferSrc)
		}
		m.Add("buffer_requests", v)
	}
	if a := h.auth; a != nil {
		m.Add("basic_auth", authNode(a), "auth_basic, "+from(a.src[0]))
	}
	if len(h.access) > 0 {
		m.Add("access", itemSeq(h.access), "allow and deny, first match wins")
	}
	if len(h.limit) > 0 {
		m.Add("limit", limitNode(h.limit))
	}
	emitUpstreamSettings(m, h.headerTime, h.maxFails, h.failTimeout)
	if hl := h.hotlink; hl != nil {
		hm := yamlout.NewMapping()
		hm.Add("paths", yamlout.Strs(true, hl.paths))
		hm.Add("allow", yamlout.Strs(true, hl.allow))
		am := yamlout.NewMapping()
		if hl.action.redirect != "" {
			am.Add("redirect", yamlout.Scalar(hl.action.redirect))
		} else {
			am.Add("status", yamlout.Number(strconv.Itoa(hl.action.status)))
		}
		am.N.Style = yaml.FlowStyle
		hm.Add("action", am.N)
		var srcs []string
		for _, s := range hl.src {
			srcs = append(srcs, s.Name+" "+from(s))
		}
		m.Add("hotlink", hm.N, strings.Join(srcs, ", "), hl.action.note)
	}
	if sl := h.signed; sl != nil {
		sm := yamlout.NewMapping()
		sm.Add("paths", yamlout.Strs(true, sl.paths))
		sm.Add("key", yamlout.Scalar("env:GATEHOUSE_LINK_KEY"))
		comment := "secure_link, " + from(sl.src) + ": nginx's MD5 links cannot be carried over; sign new links with gatehouse sign link"
		if hasKey[config.Host]("signed_links") {
			m.Add("signed_links", sm.N, comment)
		} else {
			*footer = append(*footer, "", "signed links for "+h.names[0].value+" ("+comment+"),",
				"to add to that host once gatehouse's config has hosts[].signed_links:", "")
			*footer = append(*footer, commentOut("signed_links", sm.N)...)
		}
	}
	if len(h.set) > 0 || len(h.remove) > 0 {
		m.Add("headers", headersNode(h.set, h.remove))
	}
	if len(h.routes) > 0 {
		rs := yamlout.Seq(false)
		for _, r := range h.routes {
			rs.Content = append(rs.Content, t.emitRoute(r))
		}
		m.Add("routes", rs, "nginx's locations: the route a path selects is chosen as nginx chose the location")
	}
	m.N.HeadComment = "server " + strings.Join(itemValues(h.names), " ") + ", " + from(h.src)
	return m.N
}

func authNode(a *authOut) *yaml.Node {
	am := yamlout.NewMapping()
	am.Add("realm", yamlout.Scalar(a.realm))
	am.Add("htpasswd", yamlout.Scalar(a.file))
	return am.N
}

// limitNode writes limit names, each with its limit_req.
func limitNode(names []item) *yaml.Node {
	if len(names) == 1 {
		v := yamlout.Scalar(names[0].value)
		v.LineComment = "limit_req, " + from(names[0].src)
		return v
	}
	return itemSeq(names)
}

// emitUpstreamSettings writes proxy_read_timeout and the upstream
// servers' max_fails and fail_timeout.
func emitUpstreamSettings(m yamlout.Mapping, headerTime, maxFails, failTimeout item) {
	if headerTime.value != "" {
		for _, key := range []string{"response_header_timeout", "read_timeout"} {
			v := yamlout.Scalar(headerTime.value)
			v.LineComment = "proxy_read_timeout, " + from(headerTime.src)
			m.Add(key, v)
		}
	}
	if maxFails.value != "" {
		v := yamlout.Number(maxFails.value)
		v.LineComment = "nginx's default max_fails"
		if maxFails.src != nil {
			v.LineComment = "max_fails, " + from(maxFails.src)
		}
		m.Add("max_fails", v)
	}
	if failTimeout.value != "" {
		v := yamlout.Scalar(failTimeout.value)
		v.LineComment = "nginx's default fail_timeout"
		if failTimeout.src != nil {
			v.LineComment = "fail_timeout, " + from(failTimeout.src)
		}
		m.Add("fail_timeout", v)
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
	hm := yamlout.NewMapping()
	if len(set) > 0 {
		sm := yamlout.NewMapping()
		for _, kv := range set {
			v := yamlout.Scalar(kv.value)
			if kv.value == "" {
				v.LineComment = "not sent: the location's add_header list replaces the server's"
			} else {
				v.LineComment = "add_header, " + from(kv.src)
			}
			sm.Add(kv.key, v)
		}
		hm.Add("set", sm.N)
	}
	if len(remove) > 0 {
		hm.Add("remove", itemSeq(remove))
	}
	return hm.N
}

func (t *translator) emitRoute(r *routeOut) *yaml.Node {
	m := yamlout.NewMapping()
	paths := yamlout.Strs(true, r.paths)
	m.Add("paths", paths)
	if r.respond != nil {
		rm := yamlout.NewMapping()
		rm.Add("status", yamlout.Number(strconv.Itoa(r.respond.status)))
		if r.respond.body != "" {
			rm.Add("body", yamlout.Scalar(r.respond.body))
		}
		if r.respond.location != "" {
			rm.Add("location", yamlout.Scalar(r.respond.location))
		}
		rm.N.Style = yaml.FlowStyle
		rm.N.LineComment = "return, " + from(r.respond.src)
		m.Add("respond", rm.N)
	}
	if r.upstreams != nil {
		m.Add("upstreams", itemSeq(r.upstreams))
	}
	mf := item{}
	if r.maxFails != nil {
		mf = *r.maxFails
	}
	emitUpstreamSettings(m, r.headerTime, mf, r.failTimeout)
	if r.authOff != nil {
		v := yamlout.Scalar("off")
		v.LineComment = r.authOff.Name + ", " + from(r.authOff)
		m.Add("basic_auth", v)
	} else if r.auth != nil {
		m.Add("basic_auth", authNode(r.auth), "auth_basic, "+from(r.auth.src[0]))
	}
	if r.access != nil {
		m.Add("access", itemSeq(r.access))
	}
	if r.limitOff != nil {
		m.Add("limit", yamlout.Scalar("off"))
	} else if r.limit != nil {
		m.Add("limit", limitNode(r.limit))
	}
	if r.maxBody != nil {
		v := yamlout.Scalar(r.maxBody.value)
		if r.maxBody.src != nil {
			v.LineComment = "client_max_body_size, " + from(r.maxBody.src)
		} else {
			v.LineComment = "nginx's default client_max_body_size"
		}
		m.Add("max_body", v)
	}
	if len(r.set) > 0 || len(r.remove) > 0 {
		m.Add("headers", headersNode(r.set, r.remove))
	}
	if r.websocket != nil {
		v := boolean(*r.websocket)
		if !*r.websocket {
			v.LineComment = "nginx passed no Upgrade header here"
		}
		m.Add("websocket", v)
	}
	if r.refuses && findJail(t.out.jails, "probes") != nil {
		v := yamlout.Scalar("probes")
		v.LineComment = "a location refusing every request; fail2ban's botsearch jail counted such requests"
		m.Add("jail", v)
	}
	mod, p := locationArgs(r.src)
	m.N.HeadComment = strings.Join(append([]string{"location " + strings.TrimSpace(mod+" "+p) + ", " + from(r.src)}, r.notes...), "\n")
	return m.N
}

// emitLimits writes limits.rates and limits.upstream_dial_timeout.
func (t *translator) emitLimits() *yaml.Node {
	lm := yamlout.NewMapping()
	if dial := t.dialTimeout(); dial.value != "" {
		v := yamlout.Scalar(dial.value)
		v.LineComment = "proxy_connect_timeout, " + from(dial.src)
		lm.Add("upstream_dial_timeout", v)
	}
	if len(t.out.rates) > 0 {
		jail := findJail(t.out.jails, "limit")
		rm := yamlout.NewMapping()
		for _, r := range t.out.rates {
			m := yamlout.NewMapping()
			m.Add("rate", yamlout.Scalar(r.rate))
			if r.key.burst > 0 {
				m.Add("burst", yamlout.Number(strconv.Itoa(r.key.burst)))
			}
			if r.key.delay != "" {
				if r.key.delay == "nodelay" {
					m.Add("delay", yamlout.Scalar("nodelay"))
				} else {
					m.Add("delay", yamlout.Number(r.key.delay))
				}
			}
			m.Add("status", yamlout.Number(strconv.Itoa(r.key.status)))
			if jail != nil {
				m.Add("jail", yamlout.Scalar(jail.name))
			}
			m.N.Style = yaml.FlowStyle
			rm.Add(r.name, m.N, "limit_req_zone, "+from(r.zone)+"; limit_req, "+from(r.src))
		}
		lm.Add("rates", rm.N, "nginx's limit_req zones, used by name where nginx used them")
	}
	if len(lm.N.Content) == 0 {
		return nil
	}
	return lm.N
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
	jm := yamlout.NewMapping()
	for _, j := range jails {
		m := yamlout.NewMapping()
		if j.rate > 0 {
			m.Add("rate", yamlout.Number(strconv.FormatFloat(j.rate, 'f', -1, 64)))
			m.Add("burst", yamlout.Number(strconv.Itoa(j.burst)))
		}
		if j.maxretry > 0 {
			m.Add("maxretry", yamlout.Number(strconv.Itoa(j.maxretry)))
		}
		if j.findtime > 0 {
			m.Add("findtime", yamlout.Scalar(signer.FormatDuration(j.findtime)))
		}
		if j.bantime > 0 {
			m.Add("bantime", yamlout.Scalar(signer.FormatDuration(j.bantime)))
		}
		if j.factor > 0 {
			im := yamlout.NewMapping()
			im.Add("factor", yamlout.Number(strconv.FormatFloat(j.factor, 'f', -1, 64)))
			if j.maxtime > 0 {
				im.Add("max", yamlout.Scalar(signer.FormatDuration(j.maxtime)))
			}
			im.N.Style = yaml.FlowStyle
			m.Add("increment", im.N)
		}
		var comment []string
		if j.src != nil {
			comment = append(comment, j.src.Name+", "+from(j.src))
		}
		comment = append(comment, j.notes...)
		jm.Add(j.name, m.N, comment...)
	}
	return jm.N
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
