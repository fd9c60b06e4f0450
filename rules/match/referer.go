package match

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// HotlinkConfig protects media from being embedded by other sites, with
// nginx valid_referers semantics
// (https://nginx.org/en/docs/http/ngx_http_referer_module.html).
type HotlinkConfig struct {
	// Paths are the protected paths, in the ProbeConfig pattern grammar:
	// "/videos/" (everything under it), "/videos" (it and everything
	// under it), "/v*", "**/media", "*.mp4", "re:EXPR". Literals ignore
	// ASCII case; a regex sees the path as passed to Protected (add
	// "(?i)" to ignore case). Required.
	Paths []string
	// Allow lists the referers that may load protected paths. Required:
	//
	//	none            no Referer header (direct visits, privacy settings)
	//	blocked         a Referer without "http://" or "https://" (value
	//	                deleted or mangled by a firewall or proxy)
	//	example.com     that host exactly (any port, any case, one
	//	                trailing dot; Unicode names are compared as
	//	                punycode)
	//	*.example.com   any subdomain of example.com, at any depth, but
	//	                not example.com itself, as in nginx: list both
	//	.example.com    example.com and every subdomain (nginx's form)
	//	example.*       example followed by any suffix: example.org,
	//	                example.co.uk, and also example.evil.test — the
	//	                nginx semantics, weaker than it looks
	//	example.com/p/  a host form followed by a URI prefix: only
	//	                referers whose path starts with /p/
	//	re:EXPR         a Go regexp, case-insensitive as in nginx,
	//	                matched against the referer after "http://" or
	//	                "https://" (host, port, path and query as sent),
	//	                anchored only as written: anchor it
	//	                ("re:^([a-z0-9-]+\.)?example\.com(:[0-9]+)?(/|$)"),
	//	                since "example\.com" also matches
	//	                "example.com.evil.test".
	Allow []string
}

// HotlinkMatcher is a compiled HotlinkConfig. It is immutable and safe
// for concurrent use. A nil *HotlinkMatcher protects nothing.
type HotlinkMatcher struct {
	paths   pathSet
	none    bool
	blocked bool
	exact   map[string][]string // host → URI prefixes ("" = any)
	subdom  map[string][]string // "*.example.com" stored as "example.com"
	tail    map[string][]string // "example.*" stored as "example"
	res     []*regexp.Regexp
}

// CompileHotlink validates cfg and compiles it.
func CompileHotlink(cfg HotlinkConfig) (*HotlinkMatcher, error) {
	if len(cfg.Paths) == 0 {
		return nil, errors.New("compile hotlink: paths is empty: nothing would be protected")
	}
	if len(cfg.Allow) == 0 {
		return nil, errors.New(`compile hotlink: allow is empty: every request for a protected path would be refused; list at least "none" or a host`)
	}
	b := newPathSetBuilder(false)
	for i, pat := range cfg.Paths {
		if err := b.add(pat, int32(i)); err != nil {
			return nil, fmt.Errorf("compile hotlink: paths[%d] %q: %w", i, pat, err)
		}
	}
	ps, err := b.build()
	if err != nil {
		return nil, fmt.Errorf("compile hotlink: paths: %w", err)
	}
	m := &HotlinkMatcher{
		paths:  ps,
		exact:  map[string][]string{},
		subdom: map[string][]string{},
		tail:   map[string][]string{},
	}
	for i, a := range cfg.Allow {
		if err := m.addAllow(a); err != nil {
			return nil, fmt.Errorf("compile hotlink: allow[%d] %q: %w", i, a, err)
		}
	}
	return m, nil
}

func (m *HotlinkMatcher) addAllow(a string) error {
	switch a {
	case "none":
		m.none = true
		return nil
	case "blocked":
		m.blocked = true
		return nil
	case "server_names":
		return errors.New("server_names is not supported: list the host names")
	case "":
		return errors.New("empty entry")
	}
	if expr, ok := strings.CutPrefix(a, "re:"); ok {
		re, err := regexp.Compile("(?i)" + expr)
		if err != nil {
			return err
		}
		m.res = append(m.res, re)
		return nil
	}
	if strings.Contains(a, "://") {
		return errors.New("write the host without a scheme: the scheme of the referer is not compared")
	}
	hostPat, uri := a, ""
	if i := strings.IndexByte(a, '/'); i >= 0 {
		hostPat, uri = a[:i], a[i:]
	}
	name, exact, subdom, tail := hostPat, true, false, false
	switch {
	case strings.HasPrefix(hostPat, "*."):
		name, exact, subdom = hostPat[2:], false, true
	case strings.HasPrefix(hostPat, "."):
		// nginx ".example.com": the name and all its subdomains.
		name, subdom = hostPat[1:], true
	case strings.HasSuffix(hostPat, ".*"):
		name, exact, tail = hostPat[:len(hostPat)-2], false, true
	}
	if strings.Contains(name, "*") {
		return errors.New(`"*" is only allowed as a "*." prefix or a ".*" suffix`)
	}
	h, err := allowHost(name)
	if err != nil {
		return err
	}
	if (subdom || tail) && strings.Contains(h, ":") {
		return errors.New("an IPv6 address cannot have a wildcard")
	}
	if exact {
		m.exact[h] = append(m.exact[h], uri)
	}
	if subdom {
		m.subdom[h] = append(m.subdom[h], uri)
	}
	if tail {
		m.tail[h] = append(m.tail[h], uri)
	}
	return nil
}

// allowHost normalises the host of an allow entry as Allowed normalises
// the referer's: lower case, one trailing dot dropped, punycode for
// Unicode names, IPv6 without brackets.
func allowHost(name string) (string, error) {
	if strings.HasPrefix(name, "[") {
		inner, ok := strings.CutSuffix(name[1:], "]")
		if !ok {
			return "", errors.New("unterminated IPv6 literal")
		}
		name = inner
	}
	if addr, err := netip.ParseAddr(name); err == nil {
		if addr.Zone() != "" {
			return "", errors.New("an IPv6 zone cannot appear in a Referer")
		}
		return addr.String(), nil
	}
	if strings.Contains(name, ":") {
		return "", errors.New("a port is not allowed: nginx ignores the referer's port, so does gatehouse")
	}
	var buf [maxHostLen]byte
	h, ok := normaliseHost(name, buf[:0])
	if !ok {
		return "", errors.New("not a valid host name")
	}
	return string(h), nil
}

// Protected reports whether path falls under the protected paths. A
// request is protected when its raw path, CanonicalPath.Path or
// CanonicalPath.Probe is: call it with each. A nil matcher
// protects nothing. Protected does not allocate unless a regex needs to.
func (m *HotlinkMatcher) Protected(path string) bool {
	if m == nil {
		return false
	}
	_, ok := m.paths.match(path)
	return ok
}

// ProtectedRequest reports whether m protects a request whose raw path
// is rawPath and canonical view c, in any reading of the path (as
// PrefixSet.CoversRequest). A nil matcher protects nothing.
func (m *HotlinkMatcher) ProtectedRequest(rawPath string, c CanonicalPath) bool {
	return m != nil && anyReading(rawPath, c, m.Protected)
}

// Allowed reports whether a request with this Referer may load a
// protected path; present is false when the request has no Referer
// header (an empty header is present: nginx counts it as "blocked"). The
// referer's host is parsed properly: the userinfo is dropped
// ("https://example.com@evil.test/" is evil.test, where nginx would see
// "example.com" in "https://example.com:x@evil.test/"), and so are the
// port and one trailing dot; case is folded and Unicode names are
// converted to punycode (IDNA UTS #46, as browsers do). An http(s)
// Referer whose host cannot be parsed is never allowed, not even by a
// regex. Allowed does not allocate for ASCII host names.
func (m *HotlinkMatcher) Allowed(referer string, present bool) bool {
	if m == nil {
		return true
	}
	if !present {
		return m.none
	}
	rest, ok := cutHTTPScheme(referer)
	if !ok {
		return m.blocked
	}
	var buf [maxHostLen]byte
	host, path, ok := parseRefererHost(rest, buf[:0])
	if !ok {
		return false
	}
	if uris, ok := m.exact[string(host)]; ok && uriAllowed(uris, path) {
		return true
	}
	for i, c := range host {
		if c != '.' {
			continue
		}
		if uris, ok := m.subdom[string(host[i+1:])]; ok && uriAllowed(uris, path) {
			return true
		}
		if uris, ok := m.tail[string(host[:i])]; ok && uriAllowed(uris, path) {
			return true
		}
	}
	for _, re := range m.res {
		if re.MatchString(rest) {
			return true
		}
	}
	return false
}

func uriAllowed(uris []string, path string) bool {
	for _, u := range uris {
		if u == "" || strings.HasPrefix(path, u) {
			return true
		}
	}
	return false
}

// cutHTTPScheme returns what follows "http://" or "https://" (any case),
// and false for anything else (nginx's "blocked").
func cutHTTPScheme(ref string) (string, bool) {
	switch {
	case len(ref) >= 7 && strings.EqualFold(ref[:7], "http://"):
		return ref[7:], true
	case len(ref) >= 8 && strings.EqualFold(ref[:8], "https://"):
		return ref[8:], true
	}
	return "", false
}

// maxHostLen bounds a host name (RFC 1035 §2.3.4: 253 characters) and
// the stack buffers it is lower-cased in.
const maxHostLen = 253

// parseRefererHost parses the authority at the start of rest (the
// referer after its scheme) and appends its host to buf: lower case,
// without userinfo, port or a trailing dot, punycode for Unicode names,
// an IPv6 address without brackets. path is what follows the authority
// ("/x?y", "?y" or ""). ok is false for anything that is not a valid
// host, including a "\" or a "%" anywhere in the authority.
func parseRefererHost(rest string, buf []byte) (host []byte, path string, ok bool) {
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	auth, path := rest[:end], rest[end:]
	if strings.ContainsAny(auth, "\\%") {
		return nil, "", false
	}
	if i := strings.LastIndexByte(auth, '@'); i >= 0 {
		auth = auth[i+1:]
	}
	hostPart := auth
	port := ""
	if strings.HasPrefix(auth, "[") {
		j := strings.IndexByte(auth, ']')
		if j < 0 {
			return nil, "", false
		}
		hostPart, port = auth[1:j], auth[j+1:]
		if port != "" && port[0] != ':' {
			return nil, "", false
		}
		addr, err := netip.ParseAddr(hostPart)
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return nil, "", false
		}
		if !refererPort(port) {
			return nil, "", false
		}
		return addr.AppendTo(buf), path, true
	}
	if i := strings.IndexByte(auth, ':'); i >= 0 {
		hostPart, port = auth[:i], auth[i:]
	}
	if !refererPort(port) {
		return nil, "", false
	}
	h, ok := normaliseHost(hostPart, buf)
	if !ok {
		return nil, "", false
	}
	return h, path, true
}

// ValidPort reports whether p is a port number: 1 to 5 decimal digits,
// at most 65535. The Host header and Referer parsers share it.
func ValidPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n <= 65535
}

// refererPort accepts what may follow a Referer's host: nothing, or ":"
// and a port, which RFC 3986 section 3.2.3 allows to be empty.
func refererPort(p string) bool {
	return p == "" || p == ":" || p[0] == ':' && ValidPort(p[1:])
}

// normaliseHost appends name to buf lower-cased and without one trailing
// dot, converting a Unicode name to punycode; ok is false unless the
// result is a DNS-ish name (letters, digits, "-", "_", non-empty labels)
// or an IPv4 address, at most maxHostLen long.
func normaliseHost(name string, buf []byte) ([]byte, bool) {
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 4*maxHostLen {
		return nil, false
	}
	for i := 0; i < len(name); i++ {
		if name[i] >= utf8.RuneSelf {
			if !utf8.ValidString(name) {
				return nil, false
			}
			a, err := idna.Lookup.ToASCII(name)
			if err != nil {
				return nil, false
			}
			name = a
			break
		}
	}
	if len(name) > maxHostLen {
		return nil, false
	}
	start := len(buf)
	label := 0
	for i := 0; i < len(name); i++ {
		c := lowerASCII[name[i]]
		switch {
		case c == '.':
			if label == 0 {
				return nil, false
			}
			label = 0
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			label++
		default:
			return nil, false
		}
		buf = append(buf, c)
	}
	if label == 0 {
		return nil, false
	}
	return buf[start:], true
}
