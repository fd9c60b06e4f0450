package rules

import (
	"fmt"
	"path"
	"strings"
)

// PrefixSet is a compiled list of path prefixes that protect part of a
// site (basic_auth.paths). A prefix covers a path on segment boundaries:
// "/admin" covers "/admin" and "/admin/x" but not "/administrator"; "/"
// and "/admin/" cover what starts with them. Matching ignores ASCII case,
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
		if len(p) < len(pre) || !strings.EqualFold(p[:len(pre)], pre) {
			continue
		}
		if len(p) == len(pre) || pre[len(pre)-1] == '/' || p[len(pre)] == '/' {
			return true
		}
	}
	return false
}

// CoversRequest reports whether a request path is protected: when either
// its raw (escaped) form or its decoded, cleaned form ("//a/./b/../c" →
// "/a/c") is covered. Checking both closes the bypasses where the gateway
// and the upstream read a path differently ("//admin", "/%61dmin",
// "/x/../admin").
func (ps *PrefixSet) CoversRequest(rawPath, decodedPath string) bool {
	if ps.all {
		return true
	}
	if ps.Covers(rawPath) || ps.Covers(decodedPath) {
		return true
	}
	clean := cleanPath(decodedPath)
	return clean != decodedPath && ps.Covers(clean)
}

// cleanPath resolves dot segments and folds repeated slashes; it keeps a
// trailing slash, which path.Clean drops.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	c := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}
