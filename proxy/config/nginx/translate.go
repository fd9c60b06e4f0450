package nginx

import (
	"fmt"
	"io/fs"
	"net/netip"
	"path"
	"strings"

	"gatehouse/proxy/config"
	"gatehouse/proxy/config/fail2ban"
	"gatehouse/proxy/config/nginx/conf"
)

// Config is a loaded nginx configuration: the main file, the directory
// relative paths are read from, and the directives with includes expanded.
type Config struct {
	// File is the main config file (absolute).
	File string
	// Prefix is nginx's conf prefix, the directory of File: relative
	// include, auth_basic_user_file and ssl_certificate paths start here.
	Prefix string
	// Directives is the file's content, includes expanded.
	Directives []*conf.Directive
	// FS is the file system the config was read from; Translate reads
	// htpasswd files through it to check them.
	FS fs.FS
}

// LoadConfig is Load returning a Config.
func LoadConfig(fsys fs.FS, name string) (*Config, error) {
	ds, err := conf.Load(fsys, name)
	if err != nil {
		return nil, err
	}
	name = path.Clean(name)
	return &Config{File: name, Prefix: path.Dir(name), Directives: ds, FS: fsys}, nil
}

// Options tune Translate.
type Options struct {
	// Fail2ban, when not nil, is the jail.local whose enabled jails
	// become gatehouse jails and whose ignoreip becomes allow.
	Fail2ban *fail2ban.JailFile
	// Fail2banWatch, when not nil, is fail2ban's configuration directory
	// mapped by fail2ban.Import with HTTPJail as its Skip: the jails that
	// read logs other than nginx's (sshd, postfix, recidive …), carried
	// as watch entries.
	Fail2banWatch *fail2ban.Imported
}

// Finding is a directive that was not carried over, or only partly.
type Finding struct {
	File      string
	Line      int
	Directive string // the directive as written (its head), or "[jail]"
	Why       string

	order int // position in reading order, for sorting
}

// String formats the finding as "file:line: directive: why".
func (f Finding) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", f.File, f.Line, f.Directive, f.Why)
}

// Result is what Translate produces.
type Result struct {
	// YAML is the gatehouse config, with a comment on every translated
	// block naming its nginx source file:line.
	YAML []byte
	// Untranslated lists what was left out, sorted by file and line.
	// Empty means everything was carried over.
	Untranslated []Finding
}

// Translate turns an nginx config (and optionally a fail2ban jail file)
// into a gatehouse config. Everything it cannot express is listed in
// Result.Untranslated. Input nginx -t would refuse is an *InvalidError
// naming every such directive's file and line, and no Result.
func Translate(c *Config, opts Options) (*Result, error) {
	if err := validate(c.Directives); err != nil {
		return nil, err
	}
	t := &translator{
		c:             c,
		opts:          opts,
		handled:       map[*conf.Directive]bool{},
		found:         map[*conf.Directive]bool{},
		order:         map[*conf.Directive]int{},
		upstreams:     map[string]*conf.Directive{},
		zones:         map[string]*reqZone{},
		rateNames:     map[rateKey]*rateOut{},
		usedUpstreams: map[*conf.Directive]bool{},
		hostNames:     map[string]*hostOut{},
	}
	t.number(c.Directives)
	t.top(c.Directives)
	if opts.Fail2ban != nil {
		t.fail2ban(opts.Fail2ban)
	}
	if opts.Fail2banWatch != nil {
		t.watchJails(opts.Fail2banWatch)
	}
	t.finish()
	t.leftovers(c.Directives)
	out := t.emit() // may add findings, and sorts them
	return &Result{YAML: out, Untranslated: t.findings}, nil
}

type translator struct {
	c        *Config
	opts     Options
	handled  map[*conf.Directive]bool
	found    map[*conf.Directive]bool // directives with a finding
	order    map[*conf.Directive]int  // reading order
	findings []Finding

	upstreams     map[string]*conf.Directive // upstream blocks by name
	usedUpstreams map[*conf.Directive]bool
	zones         map[string]*reqZone // limit_req_zone by zone name
	rateNames     map[rateKey]*rateOut

	out       output
	hostNames map[string]*hostOut // host pattern → the host that has it
	// statics are locations that serve files; reported at the end unless
	// one of their directives already is.
	statics []*conf.Directive
	// dials are the proxy_connect_timeout values in force where requests
	// are proxied (nil: nginx's default), for limits.upstream_dial_timeout.
	dials []dialUse
	// mail is notify.email from fail2ban's mail actions; noMail the
	// enabled jails without one.
	mail   *mailOut
	noMail []string
}

type reqZone struct {
	d    *conf.Directive
	rate string // "10r/s" or "30r/m"
	bad  string // why it cannot be translated, "" if it can
}

// find records a finding for d, which counts as handled: it is not
// reported again as a leftover.
func (t *translator) find(d *conf.Directive, format string, args ...any) {
	order, ok := t.order[d]
	if !ok { // a fail2ban key: after the nginx config
		order = len(t.order) + d.Line
	}
	t.findings = append(t.findings, Finding{File: d.File, Line: d.Line, Directive: d.String(), Why: fmt.Sprintf(format, args...), order: order})
	t.handled[d] = true
	t.found[d] = true
}

// done marks directives as carried over (or deliberately dropped).
func (t *translator) done(ds ...*conf.Directive) {
	for _, d := range ds {
		t.handled[d] = true
	}
}

// doneTree marks d and everything inside it.
func (t *translator) doneTree(d *conf.Directive) {
	t.handled[d] = true
	for _, c := range d.Block {
		t.doneTree(c)
	}
}

// top walks the main context.
func (t *translator) top(ds []*conf.Directive) {
	for _, d := range ds {
		switch {
		case d.Name == "http" && d.IsBlock:
			t.done(d)
			t.http(d)
		case d.Name == "events" && d.IsBlock:
			t.doneTree(d)
		case ignoredMain[d.Name]:
			t.doneTree(d)
		}
	}
}

// scope holds the directives that nginx inherits from http to server to
// location, each replaced as a whole by a lower level that has its own.
type scope struct {
	authBasic   *conf.Directive
	authFile    *conf.Directive
	referers    *conf.Directive
	limitReq    []*conf.Directive
	addHeader   []*conf.Directive
	hideHeader  []*conf.Directive
	proxyHeader []*conf.Directive
	bodySize    *conf.Directive
	bodyTimeout *conf.Directive // client_body_timeout
	buffering   *conf.Directive // proxy_request_buffering
	cert, key   *conf.Directive
	access      []*conf.Directive // allow and deny, in order
	satisfy     *conf.Directive
	readTimeout *conf.Directive // proxy_read_timeout
	dial        *conf.Directive // proxy_connect_timeout
	limitStatus *conf.Directive // limit_req_status
	limitDry    *conf.Directive // limit_req_dry_run
}

// inherit returns the scope of a block inside s with the directives of ds
// applied.
func (s scope) inherit(ds []*conf.Directive) scope {
	var add, hide, ph, lr, acc []*conf.Directive
	for _, d := range ds {
		switch d.Name {
		case "auth_basic":
			s.authBasic = d
		case "auth_basic_user_file":
			s.authFile = d
		case "valid_referers":
			s.referers = d
		case "limit_req":
			lr = append(lr, d)
		case "add_header":
			add = append(add, d)
		case "proxy_hide_header":
			hide = append(hide, d)
		case "proxy_set_header":
			ph = append(ph, d)
		case "client_max_body_size":
			s.bodySize = d
		case "client_body_timeout":
			s.bodyTimeout = d
		case "proxy_request_buffering":
			s.buffering = d
		case "ssl_certificate":
			s.cert = d
		case "ssl_certificate_key":
			s.key = d
		case "allow", "deny":
			acc = append(acc, d)
		case "satisfy":
			s.satisfy = d
		case "proxy_read_timeout":
			s.readTimeout = d
		case "proxy_connect_timeout":
			s.dial = d
		case "limit_req_status":
			s.limitStatus = d
		case "limit_req_dry_run":
			s.limitDry = d
		}
	}
	if add != nil {
		s.addHeader = add
	}
	if hide != nil {
		s.hideHeader = hide
	}
	if ph != nil {
		s.proxyHeader = ph
	}
	if lr != nil {
		s.limitReq = lr
	}
	if acc != nil {
		s.access = acc
	}
	return s
}

func (t *translator) http(h *conf.Directive) {
	// Upstreams and zones first: servers refer to them wherever they are.
	for _, d := range h.Block {
		switch d.Name {
		case "upstream":
			if len(d.Args) == 1 && d.IsBlock {
				t.upstreams[d.Args[0]] = d
				t.done(d)
			}
		case "limit_req_zone":
			t.limitReqZone(d)
		case "map":
			if isUpgradeMap(d) {
				t.doneTree(d)
			}
		}
	}
	sc := scope{}.inherit(h.Block)
	t.globalDirectives(h.Block)
	for _, d := range h.Block {
		switch {
		case d.Name == "server" && d.IsBlock:
			t.done(d)
			t.server(d, sc)
		case ignoredHTTP[d.Name], inheritedNames[d.Name]:
			t.doneTree(d)
		}
	}
}

// inheritedNames are directives consumed through scope where they apply;
// at the http level they only provide defaults.
var inheritedNames = map[string]bool{
	"auth_basic": true, "auth_basic_user_file": true, "valid_referers": true, "limit_req": true,
	"add_header": true, "proxy_hide_header": true, "proxy_set_header": true, "client_max_body_size": true,
	"client_body_timeout": true, "proxy_request_buffering": true,
	"ssl_certificate": true, "ssl_certificate_key": true, "allow": true, "deny": true,
	"proxy_read_timeout": true, "proxy_connect_timeout": true, "limit_req_status": true,
	"limit_req_dry_run": true, "satisfy": true,
}

// globalDirectives handles directives whose gatehouse equivalent is
// global, at whatever level they appear: real IP, access log.
func (t *translator) globalDirectives(ds []*conf.Directive) {
	var header *conf.Directive
	var recursive bool
	var froms []*conf.Directive
	for _, d := range ds {
		switch d.Name {
		case "set_real_ip_from":
			froms = append(froms, d)
		case "real_ip_header":
			header = d
			if len(d.Args) == 1 && strings.EqualFold(d.Args[0], "X-Forwarded-For") {
				t.done(d)
			} else {
				t.find(d, "gatehouse reads the client address only from X-Forwarded-For sent by trusted_proxies")
			}
		case "real_ip_recursive":
			t.done(d)
			recursive = len(d.Args) == 1 && d.Args[0] == "on"
		case "access_log":
			t.accessLog(d)
		case "log_format":
			t.done(d) // reported through the access_log that uses it
		}
	}
	for _, d := range froms {
		t.done(d)
		if len(d.Args) != 1 || strings.HasPrefix(d.Args[0], "unix:") {
			continue
		}
		p, err := parseCIDR(d.Args[0])
		if err != nil {
			t.find(d, "%v", err)
			continue
		}
		t.out.trusted = appendItem(t.out.trusted, p.String(), d)
		if header == nil {
			t.find(d, "without real_ip_header nginx took the client address from X-Real-IP; gatehouse reads X-Forwarded-For from these proxies")
			header = d // once
		}
	}
	if len(froms) > 0 && !recursive {
		t.out.trustedNote = "nginx (real_ip_recursive off) took the last X-Forwarded-For address; gatehouse skips trusted proxies in the chain too (real_ip_recursive on)"
	}
}

// accessLog carries access_log PATH [combined] over to log.access_file.
func (t *translator) accessLog(d *conf.Directive) {
	if len(d.Args) == 1 && d.Args[0] == "off" {
		t.done(d)
		if t.out.log == nil {
			t.out.log = &logOut{access: "off", src: d}
		}
		return
	}
	if len(d.Args) == 0 {
		return
	}
	if strings.HasPrefix(d.Args[0], "syslog:") || strings.Contains(d.Args[0], "$") {
		t.find(d, "gatehouse writes its access log to one file or standard output")
		return
	}
	if len(d.Args) > 1 && d.Args[1] != "combined" {
		t.find(d, "log_format %s: gatehouse writes nginx's combined format (log.access: combined) or JSON", d.Args[1])
		return
	}
	for _, a := range d.Args[min(2, len(d.Args)):] {
		if !strings.HasPrefix(a, "buffer=") && !strings.HasPrefix(a, "flush=") && !strings.HasPrefix(a, "gzip") {
			t.find(d, "access_log parameter %q has no gatehouse equivalent", a)
			return
		}
	}
	file := t.abs(d.Args[0])
	switch l := t.out.log; {
	case l == nil || l.access == "off":
		t.done(d)
		t.out.log = &logOut{access: "combined", file: file, src: d}
	case l.file == file:
		t.done(d)
	default:
		t.find(d, "gatehouse writes one access log, to %s", l.file)
	}
}

// abs resolves a path nginx reads relative to its conf prefix.
func (t *translator) abs(p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	return path.Join(t.c.Prefix, p)
}

func (t *translator) limitReqZone(d *conf.Directive) {
	z := &reqZone{d: d, rate: "1r/s"} // nginx's default rate
	var name string
	for _, a := range d.Args[min(1, len(d.Args)):] {
		switch {
		case strings.HasPrefix(a, "zone="):
			name, _, _ = strings.Cut(strings.TrimPrefix(a, "zone="), ":")
		case strings.HasPrefix(a, "rate="):
			z.rate = strings.TrimPrefix(a, "rate=")
			if isDigits(z.rate) {
				z.rate += "r/s" // nginx reads a bare number as requests per second
			}
			if _, err := config.ParseRate(z.rate); err != nil {
				z.bad = err.Error()
			}
		case a == "sync":
			z.bad = "sync: gatehouse shares a limit across nodes with limits.rates.NAME.shared and fleet"
		}
	}
	if len(d.Args) == 0 || (d.Args[0] != "$binary_remote_addr" && d.Args[0] != "$remote_addr") {
		z.bad = "gatehouse counts a named limit per client address (key client), per client and host, or per request header; not by " + strings.Join(d.Args[:min(1, len(d.Args))], "")
	}
	t.zones[name] = z
	t.done(d) // reported through the limit_req that uses it
}

// parseCIDR reads an nginx (or fail2ban) address or CIDR; host bits are
// masked, as nginx does ("127.0.0.1/8" is 127.0.0.0/8).
func parseCIDR(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR prefix", s)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an address or CIDR prefix", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// appendItem appends value (once) with the directive it came from.
func appendItem(items []item, value string, d *conf.Directive) []item {
	for _, it := range items {
		if it.value == value {
			return items
		}
	}
	return append(items, item{value: value, src: d})
}

// isUpgradeMap recognises the WebSocket idiom
// "map $http_upgrade $connection_upgrade { default upgrade; ” close; }",
// whose job gatehouse does itself.
func isUpgradeMap(d *conf.Directive) bool {
	return d.IsBlock && len(d.Args) == 2 && d.Args[0] == "$http_upgrade" && d.Args[1] == "$connection_upgrade"
}

// leftovers reports every directive nobody handled. An unhandled block is
// reported once, without its content, except for the structural blocks
// whose content was walked.
func (t *translator) leftovers(ds []*conf.Directive) {
	for _, d := range ds {
		if !t.handled[d] {
			t.find(d, "%s", why(d))
			continue
		}
		if d.IsBlock {
			t.leftovers(d.Block)
		}
	}
}

// dedupe drops repeated findings (an inherited directive is seen from
// every block it applies to), keeping the first.
func dedupe(fs []Finding) []Finding {
	seen := map[Finding]bool{}
	out := fs[:0]
	for _, f := range fs {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// finish reports static locations that no directive of theirs explains,
// and drops upstream blocks nothing proxies to (they have no effect).
func (t *translator) finish() {
	for _, up := range t.upstreams {
		if !t.usedUpstreams[up] {
			t.doneTree(up)
		}
	}
	for _, loc := range t.statics {
		explained := false
		for _, c := range loc.Block {
			if !t.handled[c] || t.found[c] {
				explained = true
			}
		}
		if !explained {
			t.find(loc, "no proxy_pass here: nginx served files from its root; gatehouse sends these requests to the host's upstreams")
		}
		t.done(loc)
	}
}

// number records the reading order of every directive: findings are
// listed in the order nginx reads the config, includes in place.
func (t *translator) number(ds []*conf.Directive) {
	for _, d := range ds {
		t.order[d] = len(t.order)
		t.number(d.Block)
	}
}
