package match

import (
	"fmt"
	"strings"
)

// PrefixSet is a compiled list of path prefixes that protect part of a
// site (basic_auth.paths, signed_links.paths). A prefix covers a path on
// segment boundaries: "/admin" covers "/admin" and "/admin/x" but not
// "/administrator"; "/" covers every path. A prefix ending in "/" covers
// what starts with it and also the path without that slash: "/admin/"
// covers "/admin", which most applications serve as the admin index and
// which nginx's "location /admin/" answers with a redirect to "/admin/"
// before any upstream sees it. Matching ignores ASCII case,
// so a case-insensitive upstream cannot be reached around the rule. It is
// immutable and safe for concurrent use.
type PrefixSet struct {
	prefixes []string // lower case
	all      bool     // "/" is in the set
}

// CompilePrefixes validates prefixes (each must start with "/") and
// compiles them.
func CompilePrefixes(prefixes []string) (*PrefixSet, error) {
	ps := &PrefixSet{}
	for _, p := range prefixes {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("path prefix %q must start with /", p)
		}
		if p == "/" {
			ps.all = true
		}
		ps.prefixes = append(ps.prefixes, strings.ToLower(p))
	}
	return ps, nil
}

// Covers reports whether any prefix covers p (compared ignoring ASCII
// case).
func (ps *PrefixSet) Covers(p string) bool {
	if ps.all {
		return true
	}
	for _, pre := range ps.prefixes {
		if dir, ok := strings.CutSuffix(pre, "/"); ok && strings.EqualFold(p, dir) {
			return true // "/admin/" covers "/admin"
		}
		if len(p) < len(pre) || !strings.EqualFold(p[:len(pre)], pre) {
			continue
		}
		if len(p) == len(pre) || pre[len(pre)-1] == '/' || p[len(pre)] == '/' {
			return true
		}
	}
	return false
}

// CoversRequest reports whether a request is protected: when its raw
// path as sent, its canonical path or the canonical path's probe form
// (trailing dots and spaces trimmed, as Windows servers read it) is
// covered. Checking every form closes the bypasses where the gateway and
// the upstream read a path differently ("//admin", "/%61dmin",
// "/x/../admin", "/admin./"), and a raw path starting with "//" is also
// protected when the path after its "//authority" is (NetworkPath), or
// when that path cannot be canonicalised.
func (ps *PrefixSet) CoversRequest(rawPath string, c CanonicalPath) bool {
	return ps.all || anyReading(rawPath, c, ps.Covers)
}

// anyReading reports whether covers holds for a reading of a request
// path: the raw path as sent, the canonical path, its probe form, or,
// for a raw path starting with "//", the path after the authority
// (NetworkPath; covered when that path cannot be canonicalised). It is
// the one definition of "this rule protects the request" for every
// protection rule.
func anyReading(rawPath string, c CanonicalPath, covers func(string) bool) bool {
	if covers(c.Path) || covers(c.Probe) || covers(rawPath) {
		return true
	}
	if n, ok, err := NetworkPath(rawPath); ok {
		return err != nil || covers(n.Path) || covers(n.Probe)
	}
	return false
}

// NetworkPath returns the canonical view of the path that a reader of
// rawPath (a raw request path, as for Canonical) as a URI reference sees
// when rawPath starts with "//": "//evil/admin" is the path "//evil/admin"
// to HTTP (RFC 9112 origin-form), which Canonical folds to "/evil/admin",
// but a network-path reference — host "evil", path "/admin" — to Node's
// new URL(req.url, base), Python's urlsplit and PHP's parse_url (WHATWG
// URL skips any number of leading slashes for http). A path rule must
// cover both readings. ok is false when rawPath does not start with "//";
// err is Canonical's refusal of the path after the authority. It
// allocates only for such paths.
func NetworkPath(rawPath string) (c CanonicalPath, ok bool, err error) {
	if !strings.HasPrefix(rawPath, "//") {
		return CanonicalPath{}, false, nil
	}
	rest := strings.TrimLeft(rawPath, "/")
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return CanonicalPath{Path: "/", Probe: "/"}, true, nil
	}
	c, err = CanonicalWith(rest[i:], CanonicalOptions{AllowEncodedSlash: true, AllowStreamSyntax: true})
	return c, true, err
}
