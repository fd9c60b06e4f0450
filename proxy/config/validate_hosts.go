package config

import (
	"errors"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"gatehouse/middleware"
	"gatehouse/middleware/htpasswd"
	"gatehouse/rules/match"
)

func (v *validator) hosts(f *File) {
	hosts := f.Hosts
	if len(hosts) == 0 && len(f.Watch) == 0 {
		v.add("hosts", "at least one host is required (or a watch section, to watch logs alone)")
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

		v.upstreamList(p+".upstreams", h.Upstreams, true)

		if h.BufferRequests && h.MaxBody == 0 {
			// Buffering without a bound would let one client fill the
			// disk; nginx bounds it by client_max_body_size (1m).
			v.add(p+".buffer_requests", "needs max_body, which bounds what is buffered (nginx's client_max_body_size default is 1MB)")
		}
		if h.AllowEncodedSlash {
			// Path rules see "/paid%2Fa" as one segment outside "/paid/";
			// an upstream that decodes %2F serves /paid/a. Only a
			// whole-host rule holds.
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
		v.hostPolicy(f, p, &hosts[i])
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
