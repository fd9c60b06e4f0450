package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gatehouse/middleware"
	"gatehouse/middleware/htpasswd"
	"gatehouse/rules"
	"gatehouse/rules/match"
	"gatehouse/signer"
)

// MaxUpstreams is the most upstreams one host may list; the proxy's
// per-request bookkeeping of tried upstreams is one 64-bit word.
const MaxUpstreams = 64

// Allowed values of the enumerated keys, in the order messages list them.
var (
	tokenScopes = []string{"bans:read", "bans:write", "sign:s3", "sign:cloudfront", "sign:link", "ui"}
	logAccess   = []string{"json", "combined", "combined_host", "off"}
	logLevels   = []string{"debug", "info", "warn", "error"}
)

// validator checks a decoded, defaulted File and collects every problem
// with the line its field was written on. It has no side effects; it only
// stats the directories of the access log files.
type validator struct {
	file  string
	lines map[string]int // from the decoder
	errs  Errors
}

func (v *validator) add(field, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Line: v.line(field), Field: field, Msg: fmt.Sprintf(format, args...)})
}

// line returns the line of field, or of its nearest parent that was
// written in the file (a missing key is reported where its parent is).
func (v *validator) line(field string) int {
	for {
		if l, ok := v.lines[field]; ok {
			return l
		}
		if field == "" {
			return 0
		}
		field = parent(field)
	}
}

// parent strips the last element of a field path: "a.b[2]" → "a.b",
// `a.set["X-Y"]` → "a.set", "a.b" → "a", "a" → "".
func parent(field string) string {
	if strings.HasSuffix(field, `"]`) {
		if i := strings.LastIndex(field, `["`); i >= 0 {
			return field[:i]
		}
	}
	if i := strings.LastIndexAny(field, ".["); i >= 0 {
		return field[:i]
	}
	return ""
}

func (v *validator) check(f *File) {
	v.listeners(f)
	v.limits(&f.Limits)
	for i, p := range f.TrustedProxies {
		if !p.IsValid() {
			v.add("trusted_proxies["+strconv.Itoa(i)+"]", "empty entry; write an IP address or CIDR prefix")
		}
	}
	v.hosts(f.Hosts)
	if f.Probes != nil {
		v.probes(f.Probes)
	}
	v.jails(f)
	v.state(f)
	v.fleet(f)
	v.tls(f)
	v.tokens(f.Admin.Tokens)
	v.adminNames(f.Admin.Names)
	v.signer(f.Signer)
	v.log(f)
}

func (v *validator) listeners(f *File) {
	httpOK := v.hostPort("listen.http", f.Listen.HTTP)
	if f.Admin.Listen == "off" {
		return
	}
	if v.hostPort("admin.listen", f.Admin.Listen) && httpOK && overlap(f.Listen.HTTP, f.Admin.Listen) {
		v.add("admin.listen", "%q overlaps listen.http %q; give the admin API its own port", f.Admin.Listen, f.Listen.HTTP)
	}
}

// hostPort checks a listen address and reports whether it is valid.
func (v *validator) hostPort(field, addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(field, "%q is not host:port, such as \":80\" or \"127.0.0.1:9901\"", addr)
		return false
	}
	if !match.ValidPort(port) {
		v.add(field, "port %q is not a number between 0 and 65535", port)
		return false
	}
	if host != "" {
		if _, err := netip.ParseAddr(host); err != nil && checkDNSName(strings.ToLower(host)) != nil {
			v.add(field, "host %q is not an IP address or a host name", host)
			return false
		}
	}
	return true
}

// overlap reports whether two valid listen addresses would bind the same
// port: the same non-zero port on the same host, or on a wildcard host.
// Port 0 (any free port, as tests use) never overlaps.
func overlap(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	if pa != pb || strings.TrimLeft(pa, "0") == "" {
		return false
	}
	return ha == hb || isWildcardHost(ha) || isWildcardHost(hb)
}

func isWildcardHost(h string) bool {
	a, err := netip.ParseAddr(h)
	return h == "" || (err == nil && a.IsUnspecified())
}

// zeroLimits reports limits written as 0 (or null). Zero means "default"
// for these keys, so an explicit 0 — often meant as "no limit", as in
// net/http — would silently become the default instead; refuse it. It
// runs before applyDefaults.
func (v *validator) zeroLimits(l Limits) {
	var def File
	applyDefaults(&def)
	d := def.Limits
	for _, c := range []struct {
		key  string
		zero bool
		def  any
	}{
		{"read_header_timeout", l.ReadHeaderTimeout == 0, d.ReadHeaderTimeout},
		{"idle_timeout", l.IdleTimeout == 0, d.IdleTimeout},
		{"max_header_bytes", l.MaxHeaderBytes == 0, d.MaxHeaderBytes},
		{"shutdown_timeout", l.ShutdownTimeout == 0, d.ShutdownTimeout},
		{"upstream_dial_timeout", l.UpstreamDialTimeout == 0, d.UpstreamDialTimeout},
		{"upstream_response_header_timeout", l.UpstreamResponseHeaderTimeout == 0, d.UpstreamResponseHeaderTimeout},
		{"upstream_idle_conns", l.UpstreamIdleConns == 0, d.UpstreamIdleConns},
		{"upstream_fail_timeout", l.UpstreamFailTimeout == 0, d.UpstreamFailTimeout},
		{"conns_per_ip", l.ConnsPerIP == 0, d.ConnsPerIP},
		{"h2_max_streams", l.H2MaxStreams == 0, d.H2MaxStreams},
		{"tracked_clients", l.TrackedClients == 0, d.TrackedClients},
		{"body_read_timeout", l.BodyReadTimeout == 0, d.BodyReadTimeout},
	} {
		field := "limits." + c.key
		if _, written := v.lines[field]; written && c.zero {
			v.add(field, "must be greater than 0; remove the key for the default (%v)", c.def)
		}
	}
}

// zeroHostTimeouts reports a hosts[].body_read_timeout written as 0 (or
// null): unset inherits limits.body_read_timeout, and an explicit 0 —
// often meant as "no timeout" — would silently inherit too. It runs
// before applyDefaults.
func (v *validator) zeroHostTimeouts(hosts []Host) {
	for i, h := range hosts {
		field := "hosts[" + strconv.Itoa(i) + "].body_read_timeout"
		if _, written := v.lines[field]; written && h.BodyReadTimeout == 0 {
			v.add(field, "must be greater than 0; remove the key to use limits.body_read_timeout")
		}
	}
}

// limits checks ranges after defaults. Durations need no check here:
// ParseDuration refuses negatives and zeroLimits refuses an explicit 0.
func (v *validator) limits(l *Limits) {
	if l.MaxHeaderBytes < 1<<10 || l.MaxHeaderBytes > 16<<20 {
		v.add("limits.max_header_bytes", "%v is not between 1KB and 16MB", l.MaxHeaderBytes)
	}
	if l.UpstreamIdleConns < 1 || l.UpstreamIdleConns > 10000 {
		v.add("limits.upstream_idle_conns", "%d is not between 1 and 10000", l.UpstreamIdleConns)
	}
	if l.ConnsPerIP < 1 || l.ConnsPerIP > 100000 {
		v.add("limits.conns_per_ip", "%d is not between 1 and 100000", l.ConnsPerIP)
	}
	if l.H2MaxStreams < 1 || l.H2MaxStreams > 10000 {
		v.add("limits.h2_max_streams", "%d is not between 1 and 10000", l.H2MaxStreams)
	}
	if l.TrackedClients < 1000 || l.TrackedClients > 10_000_000 {
		v.add("limits.tracked_clients", "%d is not between 1000 and 10000000", l.TrackedClients)
	}
}

func (v *validator) hosts(hosts []Host) {
	if len(hosts) == 0 {
		v.add("hosts", "at least one host is required")
	}
	names := map[HostPattern]string{} // pattern → field of its first use
	for i, h := range hosts {
		p := "hosts[" + strconv.Itoa(i) + "]"
		if len(h.Match) == 0 {
			v.add(p+".match", "at least one host name is required")
		}
		for j, m := range h.Match {
			field := p + ".match[" + strconv.Itoa(j) + "]"
			if m == (HostPattern{}) {
				v.add(field, "empty host name")
				continue
			}
			if first, dup := names[m]; dup {
				v.add(field, "%s is already matched by %s (line %d)", m, first, v.line(first))
				continue
			}
			names[m] = field
		}

		switch {
		case len(h.Upstreams) == 0:
			v.add(p+".upstreams", "at least one upstream URL is required")
		case len(h.Upstreams) > MaxUpstreams:
			v.add(p+".upstreams", "%d upstreams; at most %d are allowed per host", len(h.Upstreams), MaxUpstreams)
		}
		ups := map[string]string{}
		for j, u := range h.Upstreams {
			field := p + ".upstreams[" + strconv.Itoa(j) + "]"
			if u.u == nil {
				v.add(field, "empty upstream URL")
				continue
			}
			if first, dup := ups[u.String()]; dup {
				v.add(field, "%s is listed twice in this host (first at line %d)", u, v.line(first))
				continue
			}
			ups[u.String()] = field
		}

		if h.BufferRequests && h.MaxBody == 0 {
			// Buffering without a bound would let one client fill the
			// disk; nginx bounds it by client_max_body_size (1m).
			v.add(p+".buffer_requests", "needs max_body, which bounds what is buffered (nginx's client_max_body_size default is 1MB)")
		}
		if h.AllowEncodedSlash {
			// Path rules see "/paid%2Fa" as one segment outside "/paid/";
			// an upstream that decodes %2F serves /paid/a (red-team
			// finding on issue 17). Only a whole-host rule holds.
			partial := func(what string) {
				v.add(p+".allow_encoded_slash", "cannot be combined with %s on the same host: a rule on part of the host does not cover \"/a%%2Fb\", which an upstream that decodes %%2F serves as /a/b; protect the whole host (paths: [\"/\"]) or serve the %%2F paths on a host of their own", what)
			}
			if ba := h.BasicAuth; ba != nil && partialPaths(ba.Paths) {
				partial("basic_auth.paths")
			}
			if h.Hotlink != nil && partialPaths(h.Hotlink.Paths) {
				partial("hotlink.paths")
			}
			if h.SignedLinks != nil && partialPaths(h.SignedLinks.Paths) {
				partial("signed_links.paths")
			}
		}
		v.headers(p+".headers", h.Headers)
		v.hsts(p+".hsts", h.HSTS)
		if h.BasicAuth != nil {
			v.basicAuth(p+".basic_auth", h.BasicAuth)
		}
		if h.Hotlink != nil {
			v.hotlink(p+".hotlink", h.Hotlink)
		}
		if h.SignedLinks != nil {
			v.signedLinks(p+".signed_links", h.SignedLinks)
		}
	}
}

// jails checks the jails' limits through rules.NewDryRun, which applies
// the same checks as the live jails, and that every jail a rule reports
// to exists.
func (v *validator) jails(f *File) {
	if f.IPv6Prefix < 32 || f.IPv6Prefix > 128 {
		v.add("ipv6_prefix", "%d is not between 32 and 128", f.IPv6Prefix)
	}
	for _, name := range slices.Sorted(maps.Keys(f.Jails)) {
		field := mapEntry("jails", name)
		if j := f.Jails[name]; j.Rate < 0 || j.Burst < 0 || (j.Burst > 0 && j.Rate == 0) {
			v.add(field, "rate and burst must not be negative, and burst needs a rate")
		}
		if _, err := rules.NewDryRun(rules.JailsConfig{Jails: map[string]rules.JailConfig{name: JailConfig(f.Jails[name])}}); err != nil {
			v.add(field, "%v", unwrapCompile(err))
		}
	}
	ref := func(field, jail string) {
		if _, ok := f.Jails[jail]; !ok && jail != "" {
			v.add(field, "jail %q is not defined under jails", jail)
		}
	}
	// The default probes jail may be left undefined (offences counted,
	// nobody banned); a jail named in the file must exist, so a typo never
	// silently disables banning.
	if _, written := v.lines["probes.jail"]; f.Probes != nil && written {
		ref("probes.jail", f.Probes.Jail)
	}
	for i, h := range f.Hosts {
		if h.Hotlink != nil {
			ref("hosts["+strconv.Itoa(i)+"].hotlink.jail", h.Hotlink.Jail)
		}
	}
}

// firewallBackends are the values of firewall.backend.
var firewallBackends = []string{"ipset", "nftables", "iptables", "auto", "none"}

// state checks state_dir, firewall and notify.
func (v *validator) state(f *File) {
	if d := f.StateDir; d != "" {
		if !filepath.IsAbs(d) {
			v.add("state_dir", "%q is not an absolute path", d)
		} else if fi, err := os.Stat(d); err == nil && !fi.IsDir() {
			v.add("state_dir", "%s is not a directory", d)
		} else if err != nil {
			if _, perr := os.Stat(filepath.Dir(d)); perr != nil {
				v.add("state_dir", "neither %s nor its parent exists", d)
			}
		}
	}
	if !slices.Contains(firewallBackends, f.Firewall.Backend) {
		v.add("firewall.backend", "%q is not one of %s", f.Firewall.Backend, strings.Join(firewallBackends, ", "))
	}
	for i, p := range f.Firewall.Ports {
		if p < 1 || p > 65535 {
			v.add("firewall.ports["+strconv.Itoa(i)+"]", "%d is not a port (1-65535)", p)
		}
	}
	n := f.Notify
	if n == nil {
		return
	}
	if n.Webhook == "" && n.Email == nil {
		v.add("notify", "give a webhook, an email, or both")
	}
	if n.Webhook != "" {
		if u, err := url.Parse(n.Webhook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add("notify.webhook", "%q is not an absolute http(s) URL", n.Webhook)
		}
	}
	if e := n.Email; e != nil {
		if _, _, err := net.SplitHostPort(e.SMTP); err != nil {
			v.add("notify.email.smtp", "%q is not host:port", e.SMTP)
		}
		if !strings.Contains(e.From, "@") {
			v.add("notify.email.from", "%q is not an e-mail address", e.From)
		}
		if len(e.To) == 0 {
			v.add("notify.email.to", "at least one recipient is required")
		}
		for i, to := range e.To {
			if !strings.Contains(to, "@") {
				v.add("notify.email.to["+strconv.Itoa(i)+"]", "%q is not an e-mail address", to)
			}
		}
		if e.Username.IsZero() != e.Password.IsZero() {
			v.add("notify.email", "give both username and password, or neither")
		}
	}
}

// JailConfig maps a config jail to the rules package's.
func JailConfig(j Jail) rules.JailConfig {
	c := rules.JailConfig{MaxRetry: j.MaxRetry, FindTime: j.FindTime.D(), BanTime: j.BanTime.D(), Forget: j.Forget.D()}
	if j.Increment != nil {
		c.Increment = &rules.Increment{Factor: j.Increment.Factor, Max: j.Increment.Max.D()}
	}
	return c
}

// probes compiles each pattern on its own, so an error names its entry.
func (v *validator) probes(p *Probes) {
	presets := match.PresetNames()
	for i, name := range p.Presets {
		if !slices.Contains(presets, name) {
			v.add("probes.presets["+strconv.Itoa(i)+"]", "%q is not one of %s", name, strings.Join(presets, ", "))
		}
	}
	for i, pat := range p.Paths {
		if _, err := match.CompileProbes(match.ProbeConfig{Paths: []string{pat}}); err != nil {
			v.add("probes.paths["+strconv.Itoa(i)+"]", "%v", unwrapCompile(err))
		}
	}
	for i, pat := range p.Exclude {
		if _, err := match.CompileProbes(match.ProbeConfig{Exclude: []string{pat}}); err != nil {
			v.add("probes.exclude["+strconv.Itoa(i)+"]", "%v", unwrapCompile(err))
		}
	}
	if p.Status != 403 && p.Status != 404 {
		v.add("probes.status", "%d is not 403 or 404", p.Status)
	}
}

func (v *validator) hotlink(p string, h *Hotlink) {
	if len(h.Paths) == 0 {
		v.add(p+".paths", "at least one protected path is required")
	}
	if len(h.Allow) == 0 {
		v.add(p+".allow", "at least one allowed referer is required (none, blocked, example.com …)")
	}
	for i, pat := range h.Paths {
		if _, err := match.CompileHotlink(match.HotlinkConfig{Paths: []string{pat}, Allow: []string{"none"}}); err != nil {
			v.add(p+".paths["+strconv.Itoa(i)+"]", "%v", unwrapCompile(err))
		}
	}
	for i, a := range h.Allow {
		if _, err := match.CompileHotlink(match.HotlinkConfig{Paths: []string{"/protected/"}, Allow: []string{a}}); err != nil {
			v.add(p+".allow["+strconv.Itoa(i)+"]", "%v", unwrapCompile(err))
		}
	}
	switch a := h.Action; {
	case a.Redirect != "" && a.Status != 0:
		v.add(p+".action", "give either status or redirect, not both")
	case a.Redirect != "":
		if u, err := url.Parse(a.Redirect); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add(p+".action.redirect", "%q is not an absolute http(s) URL", a.Redirect)
		}
	case a.Status != 403 && a.Status != 404 && a.Status != 410:
		v.add(p+".action.status", "%d is not 403, 404 or 410", a.Status)
	}
}

// unwrapCompile drops the "compile …:" context of a rules error: the
// config error already names the field.
func unwrapCompile(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}

func (v *validator) basicAuth(p string, ba *BasicAuth) {
	if strings.ContainsAny(ba.Realm, "\"\\") || strings.IndexFunc(ba.Realm, unicode.IsControl) >= 0 {
		v.add(p+".realm", "%q contains a quote, backslash or control character", ba.Realm)
	}
	if ba.Htpasswd == "" {
		v.add(p+".htpasswd", "an htpasswd file is required")
	} else if _, err := htpasswd.LoadWith(ba.Htpasswd, htpasswd.ParseConfig{AllowSlowHashes: ba.AllowSlowHashes}); err != nil {
		var errs htpasswd.Errors
		if !errors.As(err, &errs) {
			v.add(p+".htpasswd", "%v", err)
		}
		for _, e := range errs {
			v.add(p+".htpasswd", "%v", e)
		}
	}
	for i, path := range ba.Paths {
		if !strings.HasPrefix(path, "/") {
			v.add(p+".paths["+strconv.Itoa(i)+"]", "%q must start with /", path)
		}
	}
	if !validHeaderName(ba.UserHeader) {
		v.add(p+".user_header", "%q is not a valid header name (letters, digits and !#$%%&'*+-.^_`|~)", ba.UserHeader)
	}
}

// partialPaths reports whether a path list protects part of a host in a
// way an encoded "/" gets around: it has a pattern other than "/" (the
// whole host) and "*suffix" (which matches the end of a segment, "%2F" or
// not). Empty means the whole host.
func partialPaths(paths []string) bool {
	if slices.Contains(paths, "/") {
		return false
	}
	for _, p := range paths {
		if !strings.HasPrefix(p, "*") || strings.HasPrefix(p, "**/") {
			return true
		}
	}
	return false
}

func (v *validator) headers(p string, h Headers) {
	set := map[string]string{} // lower-case name → field
	for _, k := range slices.Sorted(maps.Keys(h.Set)) {
		field := mapEntry(p+".set", k)
		if !validHeaderName(k) {
			v.add(field, "%q is not a valid header name (letters, digits and !#$%%&'*+-.^_`|~)", k)
			continue
		}
		if first, dup := set[strings.ToLower(k)]; dup {
			v.add(field, "same header as %s (line %d); header names are case-insensitive", first, v.line(first))
			continue
		}
		set[strings.ToLower(k)] = field
		if strings.ContainsAny(h.Set[k], "\r\n\x00") {
			v.add(field, "the value contains CR, LF or NUL")
		}
	}
	for i, name := range h.Remove {
		field := p + ".remove[" + strconv.Itoa(i) + "]"
		switch {
		case !validHeaderName(name):
			v.add(field, "%q is not a valid header name (letters, digits and !#$%%&'*+-.^_`|~)", name)
		case set[strings.ToLower(name)] != "":
			v.add(field, "%s is also in headers.set (line %d); set it to \"\" there to remove it", name, v.line(set[strings.ToLower(name)]))
		}
	}
	for i, name := range h.PassClient {
		if !slices.Contains(middleware.ClientIdentityHeaders, strings.ToLower(name)) {
			v.add(p+".pass_client["+strconv.Itoa(i)+"]", "%q is not a client identity header gatehouse removes; one of: %s",
				name, strings.Join(middleware.ClientIdentityHeaders, ", "))
		}
	}
}

// hsts checks a Strict-Transport-Security value (RFC 6797 §6.1): "off",
// or "max-age=SECONDS" followed by "; includeSubDomains" and "; preload"
// in any case, each at most once.
func (v *validator) hsts(field, value string) {
	if value == "off" {
		return
	}
	bad := func() {
		v.add(field, "%q is not off nor max-age=SECONDS with optional ; includeSubDomains and ; preload", value)
	}
	parts := strings.Split(value, ";")
	age, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(parts[0])), "max-age=")
	if !ok || !isDigits(age) || len(age) > 10 {
		bad()
		return
	}
	seen := map[string]bool{}
	for _, p := range parts[1:] {
		d := strings.ToLower(strings.TrimSpace(p))
		if (d != "includesubdomains" && d != "preload") || seen[d] {
			bad()
			return
		}
		seen[d] = true
	}
}

// validHeaderName reports whether s is an HTTP field name: a token of
// RFC 9110 §5.6.2.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

func (v *validator) tokens(tokens []Token) {
	names := map[string]string{}
	secrets := map[[32]byte]string{}
	for i, t := range tokens {
		p := "admin.tokens[" + strconv.Itoa(i) + "]"
		switch first, dup := names[t.Name]; {
		case t.Name == "":
			v.add(p+".name", "a name is required (it identifies the token in the audit log)")
		case dup:
			v.add(p+".name", "%q is already the name of %s (line %d)", t.Name, parent(first), v.line(first))
		default:
			names[t.Name] = p + ".name"
		}

		switch first, dup := secrets[t.Token.digest]; {
		case t.Token.IsZero():
			v.add(p+".token", "a token is required; %s", secretHelp)
		case dup:
			v.add(p+".token", "same secret as %s (line %d); give each token its own secret", parent(first), v.line(first))
		default:
			secrets[t.Token.digest] = p + ".token"
		}

		if len(t.Scopes) == 0 {
			v.add(p+".scopes", "at least one scope is required: %s", strings.Join(tokenScopes, ", "))
		}
		seen := map[string]bool{}
		for j, s := range t.Scopes {
			field := p + ".scopes[" + strconv.Itoa(j) + "]"
			switch {
			case !slices.Contains(tokenScopes, s):
				v.add(field, "%q is not one of %s", s, strings.Join(tokenScopes, ", "))
			case seen[s]:
				v.add(field, "%s is listed twice", s)
			}
			seen[s] = true
		}
		for j, pre := range t.Prefixes {
			if err := signer.CheckPrefix(pre); err != nil {
				v.add(p+".prefixes["+strconv.Itoa(j)+"]", "%v", err)
			}
		}
	}
}

// adminNames checks admin.names: host names or IP addresses, without a
// port or a wildcard, each once.
func (v *validator) adminNames(names []string) {
	seen := map[string]bool{}
	for i, n := range names {
		field := "admin.names[" + strconv.Itoa(i) + "]"
		key := strings.TrimSuffix(strings.ToLower(n), ".")
		if a, err := netip.ParseAddr(strings.Trim(key, "[]")); err == nil {
			switch {
			case a.Zone() != "":
				v.add(field, "%q has a zone; a Host header never carries one", n)
				continue
			case a.IsUnspecified():
				v.add(field, "%q is the unspecified address; name an address clients connect to", n)
				continue
			}
			key = a.Unmap().String()
		} else if err := checkDNSName(key); err != nil {
			hint := ""
			if strings.Contains(n, ":") || strings.Contains(n, "*") {
				hint = " (write a bare name: no port, no scheme, no wildcard)"
			}
			v.add(field, "%q is not a host name or an IP address: %v%s", n, err, hint)
			continue
		}
		if seen[key] {
			v.add(field, "%s is listed twice", n)
		}
		seen[key] = true
	}
}

func (v *validator) log(f *File) {
	l := &f.Log
	if !slices.Contains(logAccess, l.Access) {
		v.add("log.access", "%q is not one of %s", l.Access, strings.Join(logAccess, ", "))
	}
	if !slices.Contains(logLevels, l.Level) {
		v.add("log.level", "%q is not one of %s", l.Level, strings.Join(logLevels, ", "))
	}
	v.accessFile("log.access_file", l.AccessFile)
	for i, h := range f.Hosts {
		hl := h.Log
		if hl == nil {
			continue
		}
		// A value inherited from log is checked there, once.
		p := "hosts[" + strconv.Itoa(i) + "].log"
		if hl.Access != l.Access && !slices.Contains(logAccess, hl.Access) {
			v.add(p+".access", "%q is not one of %s", hl.Access, strings.Join(logAccess, ", "))
		}
		if hl.AccessFile != l.AccessFile {
			v.accessFile(p+".access_file", hl.AccessFile)
		}
	}
}

// accessFile checks that the directory of an access log file exists; ""
// and "-" are standard output.
func (v *validator) accessFile(field, path string) {
	if path == "" || path == "-" {
		return
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		v.add(field, "directory %s: %v", dir, pathErr(err))
	case !fi.IsDir():
		v.add(field, "%s is not a directory", dir)
	}
}

// Summary describes f in one line for "gatehouse check", e.g. "3 hosts, 5
// upstreams, admin on 127.0.0.1:9901 (2 tokens), access log json".
// Upstreams are counted once per distinct URL.
func (f *File) Summary() string {
	ups := map[string]bool{}
	for _, h := range f.Hosts {
		for _, u := range h.Upstreams {
			ups[u.String()] = true
		}
	}
	admin := "admin off"
	if f.Admin.Listen != "off" {
		admin = "admin on " + f.Admin.Listen
		if n := len(f.Admin.Tokens); n > 0 {
			admin += " (" + plural(n, "token") + ")"
		}
	}
	access := "access log " + f.Log.Access
	if f.Log.Access != "off" && f.Log.AccessFile != "" && f.Log.AccessFile != "-" {
		access += " to " + f.Log.AccessFile
	}
	tls := ""
	if f.TLS != nil {
		tls = ", https on " + f.Listen.HTTPS + " (" + plural(len(f.ManagedNames()), "ACME name") + ", " +
			plural(len(f.TLS.Certificates), "static certificate") + ")"
	}
	return plural(len(f.Hosts), "host") + ", " + plural(len(ups), "upstream") + tls + ", " + admin + ", " + access
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

// secretValue reports a secret given as sha256:, which a signer cannot
// use: it needs the key itself, not its digest. It returns whether the
// secret is set and usable.
func (v *validator) secretValue(field string, s Secret) bool {
	if !s.IsZero() && !s.HasValue() {
		v.add(field, "the gateway signs with this secret, so it needs the secret itself: use env:NAME or file:PATH, not sha256:")
		return false
	}
	return !s.IsZero()
}

// signedLinks checks a host's signed_links: the keys as signer.NewLinks
// takes them (at least signer.MinLinkKey bytes, no repeats).
func (v *validator) signedLinks(p string, sl *SignedLinks) {
	if len(sl.Paths) == 0 {
		v.add(p+".paths", "at least one protected path is required")
	}
	for i, path := range sl.Paths {
		if !strings.HasPrefix(path, "/") {
			v.add(p+".paths["+strconv.Itoa(i)+"]", "%q must start with /", path)
		}
	}
	type key struct {
		field string
		s     Secret
	}
	var keys []key
	switch {
	case sl.Key.IsZero() && len(sl.Keys) == 0:
		v.add(p, "a key is required: key: env:NAME, or keys: [env:NEW, env:OLD] to rotate")
	case !sl.Key.IsZero() && len(sl.Keys) > 0:
		v.add(p+".keys", "give key or keys, not both")
	case !sl.Key.IsZero():
		keys = append(keys, key{p + ".key", sl.Key})
	}
	for i, k := range sl.Keys {
		keys = append(keys, key{p + ".keys[" + strconv.Itoa(i) + "]", k})
	}
	for i, k := range keys {
		if !v.secretValue(k.field, k.s) {
			continue
		}
		if n := len(k.s.Value()); n < signer.MinLinkKey {
			v.add(k.field, "the key is %d bytes; at least %d are needed (openssl rand -base64 48)", n, signer.MinLinkKey)
		}
		for _, prev := range keys[:i] {
			if prev.s.HasValue() && prev.s.digest == k.s.digest {
				v.add(k.field, "same key as %s (line %d)", prev.field, v.line(prev.field))
				break
			}
		}
	}
	if sl.MaxExpires.D() < time.Second {
		v.add(p+".max_expires", "%v is under 1s", sl.MaxExpires)
	}
	if sl.Query != SignedLinksQuerySign && sl.Query != SignedLinksQueryIgnore {
		v.add(p+".query", "%q is not one of %s, %s", sl.Query, SignedLinksQuerySign, SignedLinksQueryIgnore)
	}
}

// keyPairID matches CloudFront public key IDs (K2JCJMDEHXQW5F, APKA…).
func keyPairID(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return s != ""
}

// signer checks signer.s3 and signer.cloudfront; the CloudFront private
// key is parsed here, so a bad key is reported at load with its line.
func (v *validator) signer(s Signer) {
	if c := s.S3; c != nil {
		if c.Region == "" {
			v.add("signer.s3.region", "a region is required, such as eu-west-1")
		}
		if c.Endpoint != "" {
			if u, err := url.Parse(c.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				v.add("signer.s3.endpoint", "%q is not an absolute http(s) URL", c.Endpoint)
			}
		}
		v.secretValue("signer.s3.access_key_id", c.AccessKeyID)
		v.secretValue("signer.s3.secret_access_key", c.SecretAccessKey)
		if c.AccessKeyID.IsZero() != c.SecretAccessKey.IsZero() {
			v.add("signer.s3", "give both access_key_id and secret_access_key, or neither (the AWS SDK's default credential chain)")
		}
		if d := c.MaxExpires.D(); d < time.Second || d > signer.MaxS3Expires {
			v.add("signer.s3.max_expires", "%v is not between 1s and 7d (the SigV4 limit)", c.MaxExpires)
		}
	}
	c := s.CloudFront
	if c == nil {
		return
	}
	if !keyPairID(c.KeyPairID) {
		v.add("signer.cloudfront.key_pair_id", "%q is not a CloudFront public key ID (upper-case letters and digits, such as K2JCJMDEHXQW5F)", c.KeyPairID)
	}
	if c.PrivateKey.IsZero() {
		v.add("signer.cloudfront.private_key", "a private key is required; use file:PATH to a PEM RSA key")
	} else if v.secretValue("signer.cloudfront.private_key", c.PrivateKey) {
		if _, err := signer.ParsePrivateKey([]byte(c.PrivateKey.Value())); err != nil {
			v.add("signer.cloudfront.private_key", "%v", err)
		}
	}
	if c.MaxExpires.D() < time.Second {
		v.add("signer.cloudfront.max_expires", "%v is under 1s", c.MaxExpires)
	}
	if len(c.Domains) == 0 {
		v.add("signer.cloudfront.domains", "at least one distribution host name is required, such as d111111abcdef8.cloudfront.net")
	}
	seen := map[HostPattern]string{}
	for i, d := range c.Domains {
		field := "signer.cloudfront.domains[" + strconv.Itoa(i) + "]"
		_, ipErr := netip.ParseAddr(d.Name())
		switch first, dup := seen[d]; {
		case d == (HostPattern{}):
			v.add(field, "empty host name")
		case d.Wildcard():
			v.add(field, "%s: wildcards are not supported; list each distribution host name", d)
		case ipErr == nil:
			v.add(field, "%s is an IP address; CloudFront serves host names", d)
		case dup:
			v.add(field, "%s is already listed (line %d)", d, v.line(first))
		default:
			seen[d] = field
		}
	}
}
