package match

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// RouteTable chooses which of a host's routes serves a request, the way
// nginx chooses a location, on the canonical path and ignoring ASCII
// case (regexes run on the lower-case path):
//
//  1. "=/exact" patterns: the path itself and nothing else; a match ends
//     the search.
//  2. Prefix patterns ("/a/b", "/a/b/", "/a/b*", with probes.paths'
//     meaning: "/a/b" on segment boundaries, "/a/b/" also covering
//     "/a/b", "/a/b*" any continuation): the longest match is
//     remembered. When it was written "^~/a/b" the search ends there.
//  3. Pattern routes ("*.ext", "**/segment" and "re:REGEX"), in the
//     order they are written: the first match wins over the prefix.
//  4. Else the remembered prefix; else no route (the host itself).
//
// When a path's readings disagree (the raw path as sent, its canonical
// form, its probe form, the path after a "//authority"; see anyReading),
// Select refuses the request rather than let a reader the upstream may
// use reach a route the gateway did not choose. A RouteTable is
// immutable and safe for concurrent use.
type RouteTable struct {
	exact    trie // "=/x": rule on the seg slot, matched only at the path's end
	prefixes trie // "/x", "/x/", "/x*" and their "^~" forms
	litLen   []int32
	route    []int32 // rule → route index
	stop     []bool  // rule → written "^~"
	patterns []routePattern
}

// routePattern is one pattern route: a regex or a literal segment match.
type routePattern struct {
	route int32
	re    *regexp.Regexp
	set   pathSet // "*.ext" or "**/x": matched by the probe grammar
	// need is a literal every match of re contains (fold: in any ASCII
	// case), checked first: most paths miss most regexes, and a
	// substring search costs a fraction of a regex scan.
	need string
	fold bool
	// prefix, when the regex starts with "^" and a literal, is what a
	// matching path starts with: the cheapest refusal.
	prefix string
}

// RouteError is a refused route pattern: routes[Route].paths[Path].
type RouteError struct {
	Route, Path int
	Pattern     string
	Err         error
}

func (e *RouteError) Error() string {
	if e.Path < 0 {
		return fmt.Sprintf("routes[%d].paths: %v", e.Route, e.Err)
	}
	return fmt.Sprintf("routes[%d].paths[%d] %q: %v", e.Route, e.Path, e.Pattern, e.Err)
}

func (e *RouteError) Unwrap() error { return e.Err }

// CompileRoutes compiles the paths of a host's routes: routes[i] lists
// route i's patterns. Two routes may not share a pattern, and a pattern
// may not be given twice (an equal prefix in two routes leaves one of
// them unreachable); errors name the route and pattern index.
func CompileRoutes(routes [][]string) (*RouteTable, error) {
	t := &RouteTable{}
	exact, prefixes := newTrieBuilder(), newTrieBuilder()
	type dirCover struct {
		lit  string
		rule int32
	}
	var dirs []dirCover
	seen := map[string]string{} // normalised pattern → where it was first given
	for i, paths := range routes {
		if len(paths) == 0 {
			return nil, &RouteError{Route: i, Path: -1, Err: errors.New("no paths")}
		}
		for j, pat := range paths {
			where := fmt.Sprintf("routes[%d].paths[%d]", i, j)
			fail := func(err error) error { return &RouteError{Route: i, Path: j, Pattern: pat, Err: err} }
			key, err := routeKey(pat)
			if err != nil {
				return nil, fail(err)
			}
			if first, dup := seen[key]; dup {
				return nil, fail(fmt.Errorf("already given at %s: one of them could never be chosen", first))
			}
			seen[key] = where
			rule := int32(len(t.route))
			switch {
			case strings.HasPrefix(pat, "re:"), strings.HasPrefix(pat, "*"):
				p := routePattern{route: int32(i)}
				if expr, ok := strings.CutPrefix(pat, "re:"); ok {
					// Routes ignore case, regexes too: they run on the
					// lower-case path, so "re:^/private" also serves
					// "/Private", which a case-insensitive upstream reads
					// as /private; an upper-case letter could never match.
					if err := CheckRouteRegex(expr); err != nil {
						return nil, fail(err)
					}
					if p.re, err = regexp.Compile(expr); err != nil {
						return nil, fail(err)
					}
					p.need, p.fold = requiredLiteral(expr)
					p.prefix = anchoredPrefix(expr)
				} else {
					b := newPathSetBuilder(true)
					if err := b.add(pat, 0); err != nil {
						return nil, fail(err)
					}
					if p.set, err = b.build(); err != nil {
						return nil, fail(err)
					}
				}
				t.patterns = append(t.patterns, p)
				continue
			case strings.HasPrefix(pat, "="):
				lit := lowerASCIIString(pat[1:])
				if err := checkRouteLiteral(lit, false); err != nil {
					return nil, fail(err)
				}
				exact.insert(lit, false, false, rule)
				t.litLen = append(t.litLen, int32(len(lit)))
			default:
				lit, raw := splitPrefix(lowerASCIIString(strings.TrimPrefix(pat, "^~")))
				if err := checkRouteLiteral(lit, raw); err != nil {
					return nil, fail(err)
				}
				prefixes.insert(lit, false, raw, rule)
				if dir, ok := strings.CutSuffix(lit, "/"); ok && dir != "" && !strings.HasSuffix(pat, "*") {
					// "/a/" also covers "/a", unless "/a" is a pattern of
					// its own: inserted after every literal, so that
					// one keeps the node.
					dirs = append(dirs, dirCover{dir, rule})
				}
				t.litLen = append(t.litLen, int32(len(lit)))
			}
			t.route = append(t.route, int32(i))
			t.stop = append(t.stop, strings.HasPrefix(pat, "^~"))
		}
	}
	for _, d := range dirs {
		prefixes.insert(d.lit, false, false, d.rule)
	}
	t.exact, t.prefixes = exact.build(), prefixes.build()
	return t, nil
}

// routeKey is the form two patterns are compared in for duplicates.
func routeKey(pat string) (string, error) {
	switch {
	case pat == "":
		return "", errors.New("empty pattern")
	case strings.HasPrefix(pat, "re:"):
		return pat, nil
	case strings.HasPrefix(pat, "^~ "), strings.HasPrefix(pat, "= "):
		op, rest, _ := strings.Cut(pat, " ")
		return "", fmt.Errorf("write %q, without the space nginx puts there", op+strings.TrimSpace(rest))
	case strings.HasPrefix(pat, "~*"):
		return "", fmt.Errorf("nginx's \"~* RE\" is %q here", "re:(?i)"+strings.TrimSpace(pat[2:]))
	case strings.HasPrefix(pat, "~"):
		return "", fmt.Errorf("nginx's \"~ RE\" is %q here", "re:"+strings.TrimSpace(pat[1:]))
	case strings.HasPrefix(pat, "^~"), strings.HasPrefix(pat, "="), strings.HasPrefix(pat, "/"), strings.HasPrefix(pat, "*"):
		return lowerASCIIString(strings.TrimPrefix(pat, "^~")), nil
	}
	return "", errors.New(`a route path starts with "/", "=/", "^~/", "*", "**/" or "re:"`)
}

// checkRouteLiteral refuses a literal that can never match a canonical
// path, as probe literals are, and a "*" inside it with what to write
// instead.
func checkRouteLiteral(lit string, raw bool) error {
	if !strings.HasPrefix(lit, "/") {
		return errors.New(`must start with "/"`)
	}
	if lit == "/" {
		return nil
	}
	if strings.Contains(lit, "*") {
		return innerStar(lit)
	}
	return checkLiteral(lit, false, raw)
}

// SelectPath returns the route one reading of a path selects, or -1.
func (t *RouteTable) SelectPath(p string) int {
	lower := p
	if len(t.patterns) > 0 && strings.IndexFunc(p, func(r rune) bool { return 'A' <= r && r <= 'Z' }) >= 0 {
		lower = lowerASCIIString(p) // only a path with upper case costs a copy
	}
	return t.selectPath(p, lower)
}

// selectPath is SelectPath with p's ASCII lower-case form given, which
// the regexes run on.
func (t *RouteTable) selectPath(p, lower string) int {
	if len(t.exact.nodes) > 1 {
		if r := t.exact.walkExact(p); r >= 0 {
			return int(t.route[r])
		}
	}
	best := int32(-1)
	if len(t.prefixes.nodes) > 1 {
		best = t.prefixes.walk(p, 0, best, t.litLen)
		if best >= 0 && t.stop[best] {
			return int(t.route[best])
		}
	}
	for i := range t.patterns {
		pt := &t.patterns[i]
		if pt.re != nil {
			if pt.matches(lower) {
				return int(pt.route)
			}
		} else if _, ok := pt.set.match(p); ok {
			return int(pt.route)
		}
	}
	if best >= 0 {
		return int(t.route[best])
	}
	return -1
}

// matches runs the pattern's regex on p, when p holds its literal.
func (pt *routePattern) matches(p string) bool {
	if !strings.HasPrefix(p, pt.prefix) {
		return false
	}
	if pt.need != "" && !containsLiteral(p, pt.need, pt.fold) {
		return false
	}
	return pt.re.MatchString(p)
}

// Select returns the route serving a request whose path is rawPath as
// sent (RequestPath) and c canonical, or -1 for the host itself. ok is
// false when the path's readings select different routes: the request
// is refused. It does not allocate for a path that does not start with
// "//".
func (t *RouteTable) Select(rawPath string, c CanonicalPath) (route int, ok bool) {
	// Probe is Path lower-cased, which changes no choice, and shorter
	// when trailing dots and spaces were trimmed from a segment.
	if len(c.Probe) == len(c.Path) {
		route = t.selectPath(c.Path, c.Probe)
	} else {
		route = t.SelectPath(c.Path)
		if t.selectPath(c.Probe, c.Probe) != route {
			return route, false
		}
	}
	if rawPath != c.Path {
		// The raw reading without ";params", which every reader strips
		// ("/a.jsp;jsessionid=1" is /a.jsp), so that only a difference
		// in how the path is spelt refuses.
		if strings.IndexByte(rawPath, ';') >= 0 {
			rawPath = stripParams(rawPath)
		}
		if t.SelectPath(rawPath) != route {
			return route, false
		}
	}
	if n, isNet, err := NetworkPath(rawPath); isNet {
		if err != nil || t.SelectPath(n.Path) != route || t.selectPath(n.Probe, n.Probe) != route {
			return route, false
		}
	}
	return route, true
}

// stripParams removes ";params" from every segment of a raw path.
func stripParams(p string) string {
	segs := strings.Split(p, "/")
	for i, seg := range segs {
		if j := strings.IndexByte(seg, ';'); j >= 0 {
			segs[i] = seg[:j]
		}
	}
	return strings.Join(segs, "/")
}

// CheckRouteRegex refuses an upper-case ASCII letter in a regex's
// literals and character classes, outside "(?i)": route regexes run on
// the lower-case path, where it could never match.
func CheckRouteRegex(expr string) error {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		if strings.Contains(expr, "(?=") || strings.Contains(expr, "(?!") || strings.Contains(expr, "(?<") {
			err = fmt.Errorf("%w (Go's RE2 has no lookahead or lookbehind: route the exceptions first, or list them as routes of their own)", err)
		}
		return err
	}
	if upperLiteral(re) || upperClass(re) {
		return errors.New("regexes run on the lower-case path (routes ignore case): write letters in lower case, or use (?i)")
	}
	return nil
}

// upperClass reports a character class of re that holds an upper-case
// ASCII letter without its lower-case one ([A-Z], not [A-Za-z]).
func upperClass(re *syntax.Regexp) bool {
	if re.Op == syntax.OpCharClass {
		in := func(c rune) bool {
			for i := 0; i+1 < len(re.Rune); i += 2 {
				if re.Rune[i] <= c && c <= re.Rune[i+1] {
					return true
				}
			}
			return false
		}
		ascii := 0
		for c := rune(0); c < 128; c++ {
			if in(c) {
				ascii++
			}
		}
		// A negated class ([^w]) holds most of ASCII: on the lower-case
		// path it still means what it says.
		for c := 'A'; c <= 'Z' && ascii < 64; c++ {
			if in(c) && !in(c+'a'-'A') {
				return true
			}
		}
	}
	for _, s := range re.Sub {
		if upperClass(s) {
			return true
		}
	}
	return false
}

// walkExact returns the rule whose literal is exactly p, or -1.
func (t *trie) walkExact(p string) int32 {
	n := int32(0)
	for i := 0; i < len(p); i++ {
		if n = t.next(n, lowerASCII[p[i]]); n < 0 {
			return -1
		}
	}
	return t.nodes[n].seg
}

// anchoredPrefix returns the literal expr's matches start the path
// with: "^/api/v[0-9]+" gives "/api/v"; "" when there is none, or when
// it matches in any case.
func anchoredPrefix(expr string) string {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return ""
	}
	re = re.Simplify()
	if re.Op != syntax.OpConcat || len(re.Sub) < 2 || re.Sub[0].Op != syntax.OpBeginText {
		return ""
	}
	lit := re.Sub[1]
	if lit.Op != syntax.OpLiteral || lit.Flags&syntax.FoldCase != 0 {
		return ""
	}
	return string(lit.Rune)
}

// requiredLiteral returns the longest literal that a match of expr
// must contain, when expr is a concatenation with one (or a literal),
// and whether it matches in any case.
func requiredLiteral(expr string) (string, bool) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return "", false
	}
	re = re.Simplify()
	subs := []*syntax.Regexp{re}
	if re.Op == syntax.OpConcat {
		subs = re.Sub
	}
	var best *syntax.Regexp
	for _, s := range subs {
		if s.Op == syntax.OpLiteral && (best == nil || len(s.Rune) > len(best.Rune)) {
			best = s
		}
	}
	if best == nil {
		return "", false
	}
	fold := best.Flags&syntax.FoldCase != 0
	lit := string(best.Rune)
	if fold && (!isASCIIString(lit) || strings.ContainsAny(lit, "kKsS")) {
		// Unicode case folding matches "ſ" for s and the Kelvin sign for
		// k: leave those to the regex.
		return "", false
	}
	return lit, fold
}

func isASCIIString(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// containsLiteral reports whether p contains lit, ignoring ASCII case
// when fold.
func containsLiteral(p, lit string, fold bool) bool {
	if !fold {
		return strings.Contains(p, lit)
	}
	for i := 0; i+len(lit) <= len(p); i++ {
		if lowerASCII[p[i]] == lowerASCII[lit[0]] && strings.EqualFold(p[i:i+len(lit)], lit) {
			return true
		}
	}
	return false
}

// Witnesses returns paths that route i's patterns cover, one or more per
// pattern that has a literal (regexes only when they are a literal
// prefix), for "gatehouse check" to find routes no path can reach.
func Witnesses(paths []string) []string {
	var out []string
	for _, pat := range paths {
		switch {
		case strings.HasPrefix(pat, "re:"):
			re, err := regexp.Compile(pat[3:])
			if err != nil {
				continue
			}
			if pre, _ := re.LiteralPrefix(); strings.HasPrefix(pre, "/") {
				out = append(out, pre, pre+"x", pre+"/x")
			}
		case strings.HasPrefix(pat, "**/"):
			lit, _ := splitPrefix(pat[2:])
			out = append(out, lit, "/x"+lit)
		case strings.HasPrefix(pat, "*"):
			out = append(out, "/x"+pat[1:], "/x/x"+pat[1:])
		case strings.HasPrefix(pat, "="):
			out = append(out, pat[1:])
		default:
			lit, raw := splitPrefix(strings.TrimPrefix(pat, "^~"))
			out = append(out, lit, strings.TrimSuffix(lit, "/")+"/x")
			if raw {
				out = append(out, lit+"x")
			}
		}
	}
	return out
}
