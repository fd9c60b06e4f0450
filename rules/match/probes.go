package match

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ProbeConfig selects the request paths that are probes: requests for
// software, secrets and scanner fingerprints a site does not have, which
// gatehouse answers with 403/404 and counts against the client.
//
// Path patterns (in Paths and in the presets) are matched against
// CanonicalPath.Probe, ignoring ASCII case:
//
//	"/a/b"    the path /a/b and everything under it (/a/b/, /a/b/c), on
//	          segment boundaries: "/admin" does not match "/administration"
//	"/a/b/"   everything under /a/b/ and /a/b itself (as basic_auth.paths:
//	          a prefix ending in "/" also covers the path without it, the
//	          way nginx's "location /a/b/" redirects "/a/b" to "/a/b/");
//	          "/a/b/*" likewise
//	"/a/b*"   every path that starts with the bytes "/a/b" ("/phpmyadmin*"
//	          matches "/phpMyAdmin-2.8.2.3/")
//	"**/a/b"  like "/a/b" but starting at any segment: "**/.git" matches
//	          "/.git", "/.git/config" and "/blog/.git/HEAD"; "**/a*" and
//	          "**/a/" work as above
//	"*.ext"   a segment that ends in ".ext", wherever it is: "*.php"
//	          matches "/x.php", "/x.php/" and "/x.php/extra" (PATH_INFO,
//	          which PHP and CGI servers run as x.php); any literal suffix
//	          works ("*~", "*.sql.gz")
//	"re:EXPR" a Go regexp (RE2 syntax) matched against the lower-case
//	          probe path, anchored only as written ("re:^/old-[0-9]+/");
//	          compiled once. Upper-case letters in its literals are
//	          refused: they could never match.
//
// Literal patterns must be in canonical probe form (no "//", dot
// segments, ";", "\", control characters, "%XX", nor a segment ending in
// a dot or space), since a canonical path never contains those; such a
// pattern is refused rather than silently never matching.
type ProbeConfig struct {
	// Presets names built-in pattern lists (see PresetNames): common,
	// php, wordpress, phpmyadmin, secrets, vcs, cgi, shells. A preset is
	// meant for sites that do not run the probed software: "php" blocks
	// every *.php request and "wordpress" every /wp-admin, so a PHP or
	// WordPress site leaves those out (or carves its own paths out with
	// Exclude). Empty: no presets.
	Presets []string
	// Paths are extra patterns (grammar above); rule names "paths[i]".
	// Empty: none.
	Paths []string
	// Exclude lists path prefixes ("/a/b", "/a/b/", "/a/b*") that are
	// never probes, whatever matched. "/.well-known/" is always excluded
	// (ACME HTTP-01 challenges, security.txt), even when not listed.
	Exclude []string
}

// implicitExclude is excluded from probe matching in every config, so a
// preset can never break ACME certificate issuance (RFC 8555 §8.3) or
// RFC 8615 well-known URIs.
const implicitExclude = "/.well-known/"

// ProbeMatcher is a compiled ProbeConfig. It is immutable and safe for
// concurrent use. A nil *ProbeMatcher matches nothing.
type ProbeMatcher struct {
	set     pathSet
	exclude trie
	names   []string // rule index → rule name
}

// CompileProbes validates cfg and compiles it into a matcher whose cost
// does not grow with the number of literal patterns (byte tries over the
// path) and whose miss path does not allocate. Regexes are compiled once
// and tried in order, only when no literal pattern matched; each costs
// roughly 0.1-0.5 µs per request on a short path, so prefer literals.
func CompileProbes(cfg ProbeConfig) (*ProbeMatcher, error) {
	b := newPathSetBuilder(true)
	m := &ProbeMatcher{}
	seen := map[string]bool{}
	for i, name := range cfg.Presets {
		pats, ok := presetPatterns(name)
		if !ok {
			return nil, fmt.Errorf("compile probes: presets[%d] %q: unknown preset (known: %s)",
				i, name, strings.Join(PresetNames(), ", "))
		}
		if seen[name] {
			return nil, fmt.Errorf("compile probes: presets[%d] %q: listed twice", i, name)
		}
		seen[name] = true
		for _, pat := range pats {
			if err := b.add(pat, int32(len(m.names))); err != nil {
				return nil, fmt.Errorf("compile probes: preset %s pattern %q: %w", name, pat, err)
			}
			m.names = append(m.names, name+":"+pat)
		}
	}
	for i, pat := range cfg.Paths {
		if err := b.add(pat, int32(len(m.names))); err != nil {
			return nil, fmt.Errorf("compile probes: paths[%d] %q: %w", i, pat, err)
		}
		m.names = append(m.names, "paths["+strconv.Itoa(i)+"]")
	}
	set, err := b.build()
	if err != nil {
		return nil, fmt.Errorf("compile probes: %w", err)
	}
	m.set = set
	ex := newTrieBuilder()
	if err := addExclude(ex, implicitExclude); err != nil {
		return nil, fmt.Errorf("compile probes: implicit exclude %q: %w", implicitExclude, err)
	}
	for i, pat := range cfg.Exclude {
		if err := addExclude(ex, pat); err != nil {
			return nil, fmt.Errorf("compile probes: exclude[%d] %q: %w", i, pat, err)
		}
	}
	m.exclude = ex.build()
	return m, nil
}

// Match reports whether probePath — a CanonicalPath.Probe — is a probe,
// and the name of the rule that matched: "preset:pattern" for a preset
// ("wordpress:**/wp-login.php") or "paths[i]" for cfg.Paths[i]. When
// several literal patterns match, the longest wins (ties: the first
// listed), so the name is the most specific one; regexes are tried only
// when no literal matched. Exclude entries win over every match. Match
// does not allocate.
func (m *ProbeMatcher) Match(probePath string) (rule string, ok bool) {
	if m == nil {
		return "", false
	}
	r, ok := m.set.match(probePath)
	if !ok || m.exclude.matchPrefix(probePath) {
		return "", false
	}
	return m.names[r], true
}

// MatchRequest is Match for a request whose raw path is rawPath and
// canonical view c: it also matches the path after a leading
// "//authority", which readers of the target as a URI reference see
// ("//evil/.env" is /.env to them, NetworkPath). It does not allocate for
// a path that does not start with "//".
func (m *ProbeMatcher) MatchRequest(rawPath string, c CanonicalPath) (rule string, ok bool) {
	if rule, ok := m.Match(c.Probe); ok {
		return rule, true
	}
	if n, isNet, err := NetworkPath(rawPath); isNet && err == nil {
		return m.Match(n.Probe)
	}
	return "", false
}

// Rules returns how many patterns m holds (presets expanded). It is for
// logs and tests.
func (m *ProbeMatcher) Rules() int {
	if m == nil {
		return 0
	}
	return len(m.names)
}

// addExclude adds one exclude prefix ("/a", "/a/" or "/a*").
func addExclude(b *trieBuilder, pat string) error {
	if !strings.HasPrefix(pat, "/") {
		return errors.New(`exclude must be a path prefix starting with "/"`)
	}
	lit, raw := splitPrefix(lowerASCIIString(pat))
	if err := checkLiteral(lit, false, raw); err != nil {
		return err
	}
	insertDir(b, lit, raw, 0)
	return nil
}

// insertDir inserts the prefix literal lit; one ending in "/" also covers
// the path without that slash ("/admin/" covers "/admin", which
// applications serve as the directory's index).
func insertDir(b *trieBuilder, lit string, raw bool, rule int32) {
	b.insert(lit, false, raw, rule)
	if dir, ok := strings.CutSuffix(lit, "/"); ok && dir != "" {
		b.insert(dir, false, false, rule)
	}
}

// lowerASCIIString lower-cases ASCII letters only and leaves every other
// byte alone, valid UTF-8 or not (see CanonicalPath.Probe).
func lowerASCIIString(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = lowerASCII[c]
	}
	return string(b)
}

// splitPrefix turns a prefix pattern into its literal and whether it is
// raw (matches whatever follows) or segment-bounded. "/" itself is raw.
func splitPrefix(pat string) (lit string, raw bool) {
	if lit, ok := strings.CutSuffix(pat, "*"); ok {
		return lit, true
	}
	return pat, strings.HasSuffix(pat, "/")
}

// checkLiteral reports why lit can never occur in a canonical probe path.
// firstPartial: the first segment may be a fragment (suffix patterns);
// lastPartial: the last segment may be a fragment (raw prefixes).
func checkLiteral(lit string, firstPartial, lastPartial bool) error {
	if lit == "" {
		return errors.New("empty pattern")
	}
	if !utf8.ValidString(lit) {
		return errors.New("invalid UTF-8")
	}
	for i := 0; i < len(lit); i++ {
		c := lit[i]
		switch {
		case c < 0x20 || c == 0x7f:
			return errors.New("control character can never match a canonical path")
		case c == '\\':
			return errors.New(`"\" can never match a canonical path`)
		case c == ';':
			return errors.New(`";" can never match: path parameters are stripped`)
		case c == '*':
			return errors.New(`"*" is only allowed as "*suffix", "prefix*" or "**/"`)
		case c == '%' && i+2 < len(lit) && isHex(lit[i+1]) && isHex(lit[i+2]):
			return errors.New(`"%XX" can never match: patterns are decoded text and double encoding is refused`)
		}
	}
	segs := strings.Split(lit, "/")
	if !firstPartial {
		segs = segs[1:] // before the leading "/"
	}
	for k, seg := range segs {
		if (k == 0 && firstPartial) || (k == len(segs)-1 && lastPartial) {
			continue
		}
		switch {
		case seg == "" && k == len(segs)-1:
			return errors.New(`suffix must not end with "/"`)
		case seg == "":
			return errors.New(`"//" can never match a canonical path`)
		case seg == "." || seg == "..":
			return errors.New("dot segment can never match a canonical path")
		case dotsAndSpaces([]byte(seg)):
			return errors.New("segment of only dots and spaces can never match a canonical path")
		case seg[len(seg)-1] == '.' || seg[len(seg)-1] == ' ':
			return errors.New("segment ending in a dot or space can never match: probe paths are trimmed")
		}
	}
	return nil
}

// pathSet is a compiled set of path patterns (see ProbeConfig for the
// grammar): three byte tries walked over the path, so the cost of a match
// depends on the path and the longest pattern, not on how many patterns
// there are, plus the regexes, tried in order. Immutable once built.
type pathSet struct {
	root     trie // "/a", "/a/", "/a*": walked from the start of the path
	anywhere trie // "**/a...": walked from every "/"
	suffix   trie // "*sfx", reversed: walked back from every segment end
	res      []*regexp.Regexp
	reRule   []int32
	litLen   []int32 // rule → literal length, for "longest wins"
}

type pathSetBuilder struct {
	probe                  bool // regex literals must be lower case; literals are lower-cased
	root, anywhere, suffix *trieBuilder
	res                    []string
	reRule                 []int32
	litLen                 []int32
}

func newPathSetBuilder(probe bool) *pathSetBuilder {
	return &pathSetBuilder{probe: probe, root: newTrieBuilder(), anywhere: newTrieBuilder(), suffix: newTrieBuilder()}
}

// add parses pat and adds it as rule (rules are numbered 0, 1, … in the
// order they are added).
func (b *pathSetBuilder) add(pat string, rule int32) error {
	if int(rule) != len(b.litLen) {
		return fmt.Errorf("internal error: rule %d added out of order", rule)
	}
	if expr, ok := strings.CutPrefix(pat, "re:"); ok {
		if err := checkRegex(expr, b.probe); err != nil {
			return err
		}
		b.res = append(b.res, expr)
		b.reRule = append(b.reRule, rule)
		b.litLen = append(b.litLen, 0)
		return nil
	}
	pat = lowerASCIIString(pat)
	var lit string
	switch {
	case strings.HasPrefix(pat, "**/"):
		var raw bool
		lit, raw = splitPrefix(pat[2:])
		if lit == "/" {
			return errors.New(`"**/" would match every path`)
		}
		if err := checkLiteral(lit, false, raw); err != nil {
			return err
		}
		insertDir(b.anywhere, lit, raw, rule)
	case strings.HasPrefix(pat, "*"):
		lit = pat[1:]
		if err := checkLiteral(lit, true, false); err != nil {
			return err
		}
		b.suffix.insert(lit, true, true, rule)
	case strings.HasPrefix(pat, "/"):
		var raw bool
		lit, raw = splitPrefix(pat)
		if lit == "/" {
			return errors.New(`"/" would match every path`)
		}
		if strings.Contains(lit, "*") {
			return innerStar(pat)
		}
		if err := checkLiteral(lit, false, raw); err != nil {
			return err
		}
		insertDir(b.root, lit, raw, rule)
	default:
		return errors.New(`pattern must start with "/", "*", "**/" or "re:"`)
	}
	b.litLen = append(b.litLen, int32(len(lit)))
	return nil
}

// innerStar explains why a prefix pattern with a "*" before its end, such
// as "/media/*.mp4", is refused and what to write instead: patterns are
// prefixes, suffixes or segments, never globs, and a regex says both.
func innerStar(pat string) error {
	parts := strings.Split(pat, "*")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	re := "re:(?i)^" + strings.Join(parts, ".*")
	if !strings.HasSuffix(pat, "*") {
		re += "$"
	}
	prefix := pat[:strings.IndexByte(pat, '*')]
	alts := fmt.Sprintf("%q (everything under it)", prefix+"*")
	if strings.HasSuffix(prefix, "/") {
		alts = fmt.Sprintf("%q (everything under it)", prefix)
	}
	if suffix := pat[strings.LastIndexByte(pat, '*')+1:]; suffix != "" && !strings.Contains(suffix, "/") {
		alts += fmt.Sprintf(", %q (every path ending so)", "*"+suffix)
	}
	return fmt.Errorf(`"*" is only allowed as "*suffix", "prefix*" or "**/": write %s or %s (both at once)`, alts, re)
}

// checkRegex compiles expr; for probe paths (lower case) it refuses
// upper-case letters in literals, which could never match.
func checkRegex(expr string, probe bool) error {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return err
	}
	if probe && upperLiteral(re) {
		return errors.New("regex has upper-case letters but probe paths are lower case: write them in lower case or use (?i)")
	}
	return nil
}

func upperLiteral(re *syntax.Regexp) bool {
	if re.Op == syntax.OpLiteral && re.Flags&syntax.FoldCase == 0 {
		for _, r := range re.Rune {
			if 'A' <= r && r <= 'Z' {
				return true
			}
		}
	}
	for _, s := range re.Sub {
		if upperLiteral(s) {
			return true
		}
	}
	return false
}

func (b *pathSetBuilder) build() (pathSet, error) {
	ps := pathSet{
		root:     b.root.build(),
		anywhere: b.anywhere.build(),
		suffix:   b.suffix.build(),
		reRule:   b.reRule,
		litLen:   b.litLen,
	}
	for _, expr := range b.res {
		re, err := regexp.Compile(expr)
		if err != nil { // checkRegex parsed it; this is not expected
			return pathSet{}, fmt.Errorf("regex %q: %w", expr, err)
		}
		ps.res = append(ps.res, re)
	}
	return ps, nil
}

// match returns the rule matching p: the longest literal pattern (ties:
// the lowest rule), else the first regex. It does not allocate.
func (ps *pathSet) match(p string) (int32, bool) {
	best := int32(-1)
	if len(ps.root.nodes) > 1 {
		best = ps.root.walk(p, 0, best, ps.litLen)
	}
	if len(ps.anywhere.nodes) > 1 {
		for i := 0; i < len(p); i++ {
			if p[i] == '/' {
				best = ps.anywhere.walk(p, i, best, ps.litLen)
			}
		}
	}
	if len(ps.suffix.nodes) > 1 {
		for j := 1; j <= len(p); j++ {
			if (j == len(p) || p[j] == '/') && p[j-1] != '/' {
				best = ps.suffix.walkBack(p, j, best, ps.litLen)
			}
		}
	}
	if best >= 0 {
		return best, true
	}
	// Each regex on its own: Go's regexp runs an anchored or
	// literal-prefixed expression far faster than one alternation of
	// them all (about 100 ns for three short ones against 1.2 µs).
	for k, re := range ps.res {
		if re.MatchString(p) {
			return ps.reRule[k], true
		}
	}
	return -1, false
}

// better returns whichever of rules a and b is preferred: the longer
// literal, then the lower rule number. a may be -1 (none yet).
func better(a, b int32, litLen []int32) int32 {
	if a < 0 || litLen[b] > litLen[a] || (litLen[b] == litLen[a] && b < a) {
		return b
	}
	return a
}

// trie is an immutable byte trie; node 0 is the root. A node's edges are
// a sorted run in labels/kids, searched linearly; a node with more than
// denseMin edges also has a 256-entry row in dense, so no lookup costs
// more than a few comparisons however many patterns share a prefix.
type trie struct {
	nodes  []trieNode
	labels []byte
	kids   []int32
	dense  []int32 // rows of 256 children (-1: none)
}

// denseMin is the edge count above which a node gets a dense row.
const denseMin = 8

type trieNode struct {
	off, n int32 // edges: labels[off:off+n], kids[off:off+n]
	dense  int32 // offset of the node's row in dense, or -1
	seg    int32 // rule ending here when a "/" or the path end follows; -1 none
	raw    int32 // rule ending here whatever follows; -1 none
}

// next returns the child of node n along byte c (already lower-cased),
// or -1.
func (t *trie) next(n int32, c byte) int32 {
	nd := &t.nodes[n]
	if nd.dense >= 0 {
		return t.dense[int(nd.dense)+int(c)]
	}
	lab := t.labels[nd.off : nd.off+nd.n]
	for i, l := range lab {
		if l == c {
			return t.kids[int(nd.off)+i]
		}
	}
	return -1
}

// walk follows p from index start and returns the preferred of best and
// every rule whose pattern matched.
func (t *trie) walk(p string, start int, best int32, litLen []int32) int32 {
	n := int32(0)
	for i := start; i < len(p); i++ {
		if n = t.next(n, lowerASCII[p[i]]); n < 0 {
			break
		}
		nd := &t.nodes[n]
		if nd.raw >= 0 {
			best = better(best, nd.raw, litLen)
		}
		if nd.seg >= 0 && (i+1 == len(p) || p[i+1] == '/') {
			best = better(best, nd.seg, litLen)
		}
	}
	return best
}

// walkBack follows p backwards from index end-1 through a trie of
// reversed suffixes.
func (t *trie) walkBack(p string, end int, best int32, litLen []int32) int32 {
	n := int32(0)
	for i := end - 1; i >= 0; i-- {
		if n = t.next(n, lowerASCII[p[i]]); n < 0 {
			break
		}
		if r := t.nodes[n].raw; r >= 0 {
			best = better(best, r, litLen)
		}
	}
	return best
}

// matchPrefix reports whether any pattern of a root trie matches p.
func (t *trie) matchPrefix(p string) bool {
	n := int32(0)
	for i := 0; i < len(p); i++ {
		if n = t.next(n, lowerASCII[p[i]]); n < 0 {
			return false
		}
		nd := &t.nodes[n]
		if nd.raw >= 0 || (nd.seg >= 0 && (i+1 == len(p) || p[i+1] == '/')) {
			return true
		}
	}
	return false
}

type trieBuilder struct {
	nodes []builderNode
}

type builderNode struct {
	kids     map[byte]int32
	seg, raw int32
}

func newTrieBuilder() *trieBuilder {
	return &trieBuilder{nodes: []builderNode{{seg: -1, raw: -1}}}
}

// insert adds lit (reversed when reverse) for rule; raw: matches whatever
// follows, else only on a segment boundary. The first rule inserted for a
// literal keeps it.
func (b *trieBuilder) insert(lit string, reverse, raw bool, rule int32) {
	n := int32(0)
	for k := 0; k < len(lit); k++ {
		c := lit[k]
		if reverse {
			c = lit[len(lit)-1-k]
		}
		child, ok := b.nodes[n].kids[c]
		if !ok {
			child = int32(len(b.nodes))
			b.nodes = append(b.nodes, builderNode{seg: -1, raw: -1})
			if b.nodes[n].kids == nil {
				b.nodes[n].kids = map[byte]int32{}
			}
			b.nodes[n].kids[c] = child
		}
		n = child
	}
	nd := &b.nodes[n]
	if raw && nd.raw < 0 {
		nd.raw = rule
	}
	if !raw && nd.seg < 0 {
		nd.seg = rule
	}
}

func (b *trieBuilder) build() trie {
	t := trie{nodes: make([]trieNode, len(b.nodes))}
	for i, bn := range b.nodes {
		keys := make([]byte, 0, len(bn.kids))
		for c := range bn.kids {
			keys = append(keys, c)
		}
		slices.Sort(keys)
		t.nodes[i] = trieNode{off: int32(len(t.labels)), n: int32(len(keys)), dense: -1, seg: bn.seg, raw: bn.raw}
		for _, c := range keys {
			t.labels = append(t.labels, c)
			t.kids = append(t.kids, bn.kids[c])
		}
		if len(keys) > denseMin {
			t.nodes[i].dense = int32(len(t.dense))
			row := make([]int32, 256)
			for c := range row {
				row[c] = -1
			}
			for c, k := range bn.kids {
				row[c] = k
			}
			t.dense = append(t.dense, row...)
		}
	}
	return t
}
