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
	probes       *probesOut
	flood        *floodOut
	jails        []*jailOut
	firewall     *firewallOut
	log          *logOut
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
}

type authOut struct {
	realm, file string
	paths       []string // nil: the whole host
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

type probesOut struct {
	paths []item
	where []string // server labels the rules came from
}

type floodOut struct {
	rate    float64
	burst   int
	nodelay bool
	src     *conf.Directive // limit_req
	zone    *conf.Directive // limit_req_zone
	where   string
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
		if it.src != nil {
			v.LineComment = it.src.Name + ", " + from(it.src)
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
		root.add("allow", itemSeq(o.allow), "never banned nor rate limited (nginx allow, fail2ban ignoreip)")
	}
	if len(o.jails) > 0 || o.flood != nil {
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

	if o.probes != nil {
		pm := newMapping()
		pm.add("paths", itemSeq(o.probes.paths))
		status := 403
		if len(t.probeStatus) == 1 && t.probeStatus[404] {
			status = 404
		}
		pm.add("status", number(strconv.Itoa(status)))
		where := slices.Compact(slices.Sorted(slices.Values(o.probes.where)))
		root.add("probes", pm.n,
			"locations that refused every request ("+strings.Join(where, ", ")+"); gatehouse applies them to every host,",
			"ignores case and counts each hit against the client (probes jail)",
			"more built-in lists: presets [common, secrets, vcs, shells] are safe on any site")
	}
	if js := t.emitJails(); js != nil {
		root.add("jails", js)
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
	if l := o.log; l != nil {
		lg := newMapping()
		lg.add("access", scalar(l.access))
		if l.file != "" {
			lg.add("access_file", scalar(l.file))
		}
		root.add("log", lg.n, "access_log, "+from(l.src))
	}

	if len(t.bans) > 0 {
		footer = append(footer, "", "nginx deny lists, carried over as manual bans (gatehouse keeps no deny list in",
			"its config): run these once the gateway is up; bans are kept in state_dir", "")
		for _, b := range t.bans {
			footer = append(footer, "  "+b.Command()+"   # "+b.Scope)
		}
	}

	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{root.n}}
	head := []string{"gatehouse config imported from " + t.c.File + " by gatehouse import nginx"}
	if t.opts.Fail2ban != nil {
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

	sanitize(doc)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		// The tree is built from sanitized strings and numbers only.
		panic(fmt.Sprintf("nginx: encode YAML: %v", err))
	}
	return buf.Bytes()
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
		am := newMapping()
		am.add("realm", scalar(a.realm))
		am.add("htpasswd", scalar(a.file))
		if a.paths != nil {
			am.add("paths", strs(true, a.paths))
		}
		var srcs []string
		for _, s := range a.src {
			srcs = append(srcs, from(s))
		}
		m.add("basic_auth", am.n, "auth_basic, "+strings.Join(srcs, ", "))
	}
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
		hm := newMapping()
		if len(h.set) > 0 {
			sm := newMapping()
			for _, kv := range h.set {
				v := scalar(kv.value)
				v.LineComment = "add_header, " + from(kv.src)
				sm.add(kv.key, v)
			}
			hm.add("set", sm.n)
		}
		if len(h.remove) > 0 {
			hm.add("remove", itemSeq(h.remove))
		}
		m.add("headers", hm.n)
	}
	m.n.HeadComment = "server " + strings.Join(itemValues(h.names), " ") + ", " + from(h.src)
	return m.n
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
	if f := o.flood; f != nil {
		j := findJail(jails, "flood")
		if j == nil {
			j = &jailOut{name: "flood"}
			j.notes = append(j.notes, "gatehouse also bans clients that keep going over the limit (maxretry within findtime; defaults 5 in 10m, banned 10m)")
			jails = append(jails, j)
		}
		j.rate, j.burst = f.rate, f.burst
		note := "limit_req, " + from(f.src) + " (zone " + from(f.zone) + "), for " + f.where + "; gatehouse applies it to every host and answers 429"
		if !f.nodelay {
			note += "; nginx delayed requests within the burst, gatehouse passes them at once"
		}
		j.notes = append([]string{note}, j.notes...)
	}
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

// sanitize makes every comment and value of the tree valid YAML text:
// nginx words may hold any byte, YAML comments only printable UTF-8.
func sanitize(n *yaml.Node) {
	n.HeadComment = cleanComment(n.HeadComment)
	n.LineComment = cleanComment(n.LineComment)
	n.FootComment = cleanComment(n.FootComment)
	n.Value = strings.ToValidUTF8(n.Value, "\uFFFD")
	for _, c := range n.Content {
		sanitize(c)
	}
}

// cleanComment keeps the line structure of a comment and writes other
// control characters (and invalid UTF-8) as escapes.
func cleanComment(s string) string {
	if s == "" {
		return s
	}
	lines := strings.Split(strings.ToValidUTF8(s, "\uFFFD"), "\n")
	for i, l := range lines {
		var b strings.Builder
		for _, r := range l {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 || r == 0xfeff {
				fmt.Fprintf(&b, "\\x%02x", r)
				continue
			}
			b.WriteRune(r)
		}
		lines[i] = b.String()
	}
	return strings.Join(lines, "\n")
}
