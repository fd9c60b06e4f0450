package match

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ErrUnsafePath is wrapped by every error Canonical returns: the path
// cannot be normalised into one unambiguous form, so no path rule can be
// trusted to see what the upstream would see. The caller answers 400.
var ErrUnsafePath = errors.New("unsafe path")

// UnsafePathError says why and where Canonical refused a path. It wraps
// ErrUnsafePath; branch with errors.Is(err, ErrUnsafePath) or errors.As.
type UnsafePathError struct {
	// Reason is a short constant text such as "encoded slash"; it never
	// contains request bytes, so it is safe to log and to count.
	Reason string
	// Offset is the byte offset in the raw path where the problem was
	// found.
	Offset int
}

func (e *UnsafePathError) Error() string {
	return "canonicalise path: " + e.Reason + " at byte " + strconv.Itoa(e.Offset)
}

// Unwrap returns ErrUnsafePath.
func (e *UnsafePathError) Unwrap() error { return ErrUnsafePath }

// Is reports whether e is an encoded slash and target ErrEncodedSlash, or
// NTFS stream syntax and target ErrStreamSyntax: errors.Is tells the
// refusals a host can waive (CanonicalOptions).
func (e *UnsafePathError) Is(target error) bool {
	return target == ErrEncodedSlash && e.Reason == reasonEncSlash ||
		target == ErrStreamSyntax && e.Reason == reasonStreamSyntax
}

// Hostile reports whether the refusal is one no browser produces from a
// link written on a page, so the client is probing: an encoded NUL or
// other control character, a ".." above the root, double encoding
// (%252e, IIS %u), NTFS stream syntax, a raw byte browsers always encode
// (control, space, non-ASCII, "\" which they turn into "/"), and an
// encoded separator next to a dot-dot ("..%2F", "%5C..", the traversal
// scanners send). A link can carry an encoded "/" or "\"
// (encodeURIComponent), an old Latin-1 escape (invalid UTF-8), a "%" not
// followed by hex ("100%") and a "..." file name as written: those are
// refused all the same, but are not held against the client.
// raw is the path Canonical was given.
func (e *UnsafePathError) Hostile(raw string) bool {
	switch e.Reason {
	case reasonEncNUL, reasonEncControl, reasonAboveRoot, reasonDoubleEncoding, reasonStreamSyntax,
		reasonRawControl, reasonRawSpace, reasonRawNonASCII, reasonRawBackslash:
		return true
	case reasonEncSlash, reasonEncBackslash:
		return dotDotSeparator(raw)
	}
	return false
}

// dotDotSeparator reports whether raw has an encoded "/" or "\" next to a
// "..", raw or encoded.
func dotDotSeparator(raw string) bool {
	l := strings.ToLower(raw)
	l = strings.ReplaceAll(l, "%2e", ".")
	for _, sep := range []string{"%2f", "%5c"} {
		if strings.Contains(l, ".."+sep) || strings.Contains(l, sep+"..") {
			return true
		}
	}
	return false
}

// ErrEncodedSlash matches (errors.Is) the UnsafePathError of a path with an
// encoded "/" (%2F).
var ErrEncodedSlash = errors.New("encoded slash")

// ErrStreamSyntax matches (errors.Is) the UnsafePathError of a path with a
// segment where a ":" is followed by a "$", NTFS's alternate data stream
// syntax ("/web.config::$DATA").
var ErrStreamSyntax = errors.New("NTFS stream syntax")

// CanonicalOptions loosens Canonical for a legacy upstream.
type CanonicalOptions struct {
	// AllowEncodedSlash keeps "%2F" in a segment instead of refusing it:
	// the canonical path holds the three bytes "%2F" (upper case; "%2f" in
	// Probe), which no other input produces, since a decoded "%" followed
	// by hex digits is refused as double encoding. It is for upstreams
	// that read %2F as data, never as a separator (GitLab's
	// /api/v4/projects/group%2Fproject, Apache's AllowEncodedSlashes
	// NoDecode): path rules see "a%2Fb" as one segment, and an upstream
	// that decoded it would see two. Default false.
	AllowEncodedSlash bool
	// AllowStreamSyntax keeps a segment in which a ":" is directly
	// followed by a "$" instead of refusing it. On a Windows server such a segment names
	// an NTFS alternate data stream: "/web.config::$DATA" is web.config's
	// content and "/.git::$INDEX_ALLOCATION/config" is "/.git/config", so
	// no path rule written for the file or directory would see the
	// request. It is for upstreams on other systems whose paths
	// use ":$". Default false.
	AllowStreamSyntax bool
}

// Reasons reported in UnsafePathError.Reason. They are constants so that
// metrics and logs can use them as bounded labels.
const (
	reasonNoSlash        = "path does not start with /"
	reasonRawQuery       = "raw ? in path"
	reasonRawFragment    = "raw # in path"
	reasonRawBackslash   = "raw backslash"
	reasonRawSpace       = "raw space"
	reasonRawControl     = "raw control character"
	reasonRawNonASCII    = "raw non-ASCII byte"
	reasonBadEscape      = "bad percent escape"
	reasonEncSlash       = "encoded slash"
	reasonEncBackslash   = "encoded backslash"
	reasonEncNUL         = "encoded NUL"
	reasonEncControl     = "encoded control character"
	reasonDoubleEncoding = "double percent encoding"
	reasonBadUTF8        = "invalid UTF-8"
	reasonAboveRoot      = "dot-dot segment above the root"
	reasonDotsOnly       = "segment of only dots and spaces"
	reasonStreamSyntax   = "NTFS stream syntax"
)

// CanonicalPath is the one view of a request path that every path rule
// (probes, basic_auth.paths, hotlink.paths, signed_links.paths) matches
// on. Both fields start with "/", never contain "//", "/./" or "/../",
// never contain ";" (path parameters are stripped), "\", NUL or other
// control characters, and are valid UTF-8. They are decoded: a "%" in
// them is a literal percent sign (sent as %25). The zero value is not a
// valid path; obtain one from Canonical.
type CanonicalPath struct {
	// Path is the decoded, cleaned path with its case preserved. A
	// protection rule (basic auth, hotlink, signed links) covers a
	// request when it covers Path, Probe (a Windows upstream serves
	// "/admin./" as "/admin/") or the raw path.
	Path string
	// Probe is Path with trailing dots and spaces trimmed from every
	// segment and ASCII letters lower-cased, the form ProbeMatcher.Match
	// expects: "/WP-Login.php%20" and "/.env." are probes for
	// "/wp-login.php" and "/.env" on servers that trim like Windows or
	// fold case. Only ASCII is folded: "ſ" (U+017F) and the Kelvin sign
	// (U+212A) stay what they are and never become "s" or "k".
	Probe string
}

// Canonical returns the canonical view of rawPath, the request path as
// sent: percent-encoded, without query string (use RequestPath to take it
// from r.RequestURI). The empty path is "/".
//
// It percent-decodes exactly once; strips ";params" from every segment
// (after a raw ";" or a decoded "%3B"), so "/admin;x/" is "/admin/";
// folds repeated slashes; resolves "." and ".." segments (RFC 3986
// §5.2.4, after decoding, so "/%2e%2e/" is a dot-dot segment); and keeps
// a trailing slash ("/a/b/.." is "/a/").
//
// It refuses (an *UnsafePathError wrapping ErrUnsafePath) a path that an
// upstream could read differently: an encoded "/" (%2F) or "\" (%5C),
// an encoded NUL or other control character, a raw "#", "?", "\",
// space, control character or non-ASCII byte, a bad percent escape,
// invalid UTF-8 after decoding, a "%XX" (or IIS "%uXXXX") still present
// after the one decode (double encoding), a ".." above the root, and a
// segment made of dots and spaces that is not "." or ".." ("...", ".. "),
// which Windows servers read as a dot segment, and a segment with ":$"
// (NTFS stream syntax, "/web.config::$DATA").
//
// Clean paths are returned without allocation; anything else up to 256
// bytes (512 when it needs decoding) costs one allocation, shared by both
// fields. Canonical is safe for concurrent use.
//
// Canonical is idempotent on its own output re-escaped:
// Canonical(escape(c.Path)) == c for a URL path escaper such as
// (&url.URL{Path: c.Path}).EscapedPath(); for a result that is plain
// ASCII without "%", "#", "?" or spaces, Canonical(c.Path) == c directly.
func Canonical(rawPath string) (CanonicalPath, error) {
	return CanonicalWith(rawPath, CanonicalOptions{})
}

// CanonicalWith is Canonical with the loosening of opt. With the zero
// CanonicalOptions it is Canonical.
func CanonicalWith(rawPath string, opt CanonicalOptions) (CanonicalPath, error) {
	if rawPath == "" {
		return CanonicalPath{Path: "/", Probe: "/"}, nil
	}
	clean, probeClean := scanClean(rawPath)
	if clean {
		if probeClean {
			return CanonicalPath{Path: rawPath, Probe: rawPath}, nil
		}
		var stack [256]byte
		probe := string(appendProbe(stack[:0], rawPath))
		return CanonicalPath{Path: rawPath, Probe: probe}, nil
	}
	return canonicalSlow(rawPath, opt)
}

// encodedDotSegment reports whether a canonical path with encoded
// slashes kept ("%2F") has a "." or ".." between them and a separator.
func encodedDotSegment(p []byte) bool {
	for _, seg := range strings.Split(string(p), "/") {
		if !strings.Contains(seg, "%2F") {
			continue
		}
		for _, part := range strings.Split(seg, "%2F") {
			if part == "." || part == ".." {
				return true
			}
		}
	}
	return false
}

// RequestPath returns the path part of an HTTP request-target as sent
// (r.RequestURI): the origin form "/a/b?q" gives "/a/b"; the absolute form
// "http://host/a/b?q" gives "/a/b" and "http://host" or "http://host?q"
// gives "". Anything else ("*", "host:443") is returned unchanged, and
// Canonical refuses it. Pass its result to Canonical: unlike
// r.URL.EscapedPath(), it still holds the raw "#", "\" and non-ASCII
// bytes the client sent, which Canonical refuses.
func RequestPath(requestURI string) string {
	if strings.HasPrefix(requestURI, "/") {
		if i := strings.IndexByte(requestURI, '?'); i >= 0 {
			return requestURI[:i]
		}
		return requestURI
	}
	i := strings.Index(requestURI, "://")
	if i <= 0 {
		return requestURI
	}
	rest := requestURI[i+3:]
	j := strings.IndexAny(rest, "/?")
	if j < 0 || rest[j] == '?' {
		return ""
	}
	p := rest[j:]
	if k := strings.IndexByte(p, '?'); k >= 0 {
		p = p[:k]
	}
	return p
}

// plainByte marks the raw bytes that need no decoding and no checking:
// printable ASCII except "%", ";", "#", "?", "\" and space. It is a
// never-mutated table.
var plainByte = func() (t [256]bool) {
	for c := 0x21; c < 0x7f; c++ {
		t[c] = true
	}
	for _, c := range "%;#?\\" {
		t[c] = false
	}
	return t
}()

// cleanByte marks the raw bytes scanClean takes as they are: plainByte's
// but "$", rare in paths, which the slow path checks for NTFS stream
// syntax (":$"). It is a never-mutated table.
var cleanByte = func() (t [256]bool) {
	t = plainByte
	t['$'] = false
	return t
}()

// scanClean reports whether raw is already canonical (clean) and whether
// it is also its own probe form (probeClean: no ASCII upper case and no
// segment ending in a dot). It is the allocation-free fast path.
func scanClean(raw string) (clean, probeClean bool) {
	if raw[0] != '/' {
		return false, false
	}
	probeClean = true
	segStart := 1
	dotsOnly := true
	for i := 1; i <= len(raw); i++ {
		if i == len(raw) || raw[i] == '/' {
			switch {
			case i == segStart:
				if i != len(raw) { // "//"
					return false, false
				}
			case dotsOnly: // ".", ".." and "..."
				return false, false
			case raw[i-1] == '.':
				probeClean = false
			}
			segStart = i + 1
			dotsOnly = true
			continue
		}
		c := raw[i]
		if !cleanByte[c] {
			return false, false
		}
		if c != '.' {
			dotsOnly = false
		}
		if 'A' <= c && c <= 'Z' {
			probeClean = false
		}
	}
	return true, probeClean
}

func unsafePath(reason string, off int) (CanonicalPath, error) {
	return CanonicalPath{}, &UnsafePathError{Reason: reason, Offset: off}
}

// canonicalSlow decodes, checks and cleans raw segment by segment into a
// stack buffer, then appends the probe form when it differs, and makes
// one string of both.
func canonicalSlow(raw string, opt CanonicalOptions) (CanonicalPath, error) {
	if raw[0] != '/' {
		return unsafePath(reasonNoSlash, 0)
	}
	var stack [512]byte
	buf := stack[:0] // "/seg/seg" of the segments kept so far
	trailing := false
	n := len(raw)
	i := 0
	for i < n { // raw[i] == '/'
		i++
		segStart := len(buf)
		buf = append(buf, '/')
		params := -1      // index in buf where ";params" start
		stream := false   // ":$" seen in the decoded segment, params included
		last := byte('/') // the decoded byte before c
		pct := 0          // 1: a decoded "%" seen; 2: "%" and one hex digit seen
		for i < n && raw[i] != '/' {
			c := raw[i]
			switch {
			case c == '%':
				if i+2 >= n || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
					return unsafePath(reasonBadEscape, i)
				}
				d := unhex(raw[i+1])<<4 | unhex(raw[i+2])
				switch {
				case d == '/' && opt.AllowEncodedSlash:
					// Kept encoded, as data inside the segment.
					buf = append(buf, '%', '2', 'F')
					i += 3
					pct = 0
					continue
				case d == '/':
					return unsafePath(reasonEncSlash, i)
				case d == '\\':
					return unsafePath(reasonEncBackslash, i)
				case d == 0:
					return unsafePath(reasonEncNUL, i)
				case d < 0x20 || d == 0x7f:
					return unsafePath(reasonEncControl, i)
				}
				c = d
				i += 3
			case plainByte[c] || c == ';':
				i++
			case c == '?':
				return unsafePath(reasonRawQuery, i)
			case c == '#':
				return unsafePath(reasonRawFragment, i)
			case c == '\\':
				return unsafePath(reasonRawBackslash, i)
			case c == ' ':
				return unsafePath(reasonRawSpace, i)
			case c >= 0x80:
				return unsafePath(reasonRawNonASCII, i)
			default:
				return unsafePath(reasonRawControl, i)
			}
			// A decoded "%" followed by two hex digits (or by "u", the
			// IIS %uXXXX form) would be decoded again by a server that
			// decodes twice.
			switch {
			case pct == 2 && isHex(c), pct == 1 && (c == 'u' || c == 'U'):
				return unsafePath(reasonDoubleEncoding, i-1)
			case c == '%':
				pct = 1
			case pct == 1 && isHex(c):
				pct = 2
			default:
				pct = 0
			}
			switch {
			case c == ';' && params < 0:
				params = len(buf)
			case c == '$' && last == ':':
				// NTFS stream syntax: the type of "name::$DATA" and
				// "name:stream:$DATA" (CanonicalOptions.AllowStreamSyntax).
				stream = true
			}
			last = c
			buf = append(buf, c)
		}
		// Parameters are checked like the name (the upstream sees them),
		// then dropped.
		if !utf8.Valid(buf[segStart+1:]) {
			return unsafePath(reasonBadUTF8, i)
		}
		if stream && !opt.AllowStreamSyntax {
			return unsafePath(reasonStreamSyntax, i)
		}
		if params >= 0 {
			buf = buf[:params]
		}
		name := buf[segStart+1:]
		switch {
		case len(name) == 0, len(name) == 1 && name[0] == '.':
			buf = buf[:segStart]
			trailing = true
		case len(name) == 2 && name[0] == '.' && name[1] == '.':
			j := lastSlash(buf[:segStart])
			if j < 0 {
				return unsafePath(reasonAboveRoot, i)
			}
			buf = buf[:j]
			trailing = true
		case dotsAndSpaces(name):
			return unsafePath(reasonDotsOnly, i)
		default:
			trailing = false
		}
	}
	if len(buf) == 0 || trailing {
		buf = append(buf, '/')
	}
	if opt.AllowEncodedSlash && encodedDotSegment(buf) {
		// "/public/..%2Fadmin": data to an upstream that keeps %2F, but
		// a traversal to one that decodes it, which no path rule
		// would see.
		return unsafePath(reasonEncSlash, 0)
	}
	k := len(buf)
	if !needsProbe(buf) {
		s := string(buf)
		return CanonicalPath{Path: s, Probe: s}, nil
	}
	buf = appendProbe(buf, buf[:k])
	s := string(buf)
	return CanonicalPath{Path: s[:k], Probe: s[k:]}, nil
}

// needsProbe reports whether the probe form of the canonical path p
// differs from p.
func needsProbe(p []byte) bool {
	for i, c := range p {
		if 'A' <= c && c <= 'Z' {
			return true
		}
		if (c == '.' || c == ' ') && (i+1 == len(p) || p[i+1] == '/') {
			return true
		}
	}
	return false
}

// appendProbe appends the probe form of the canonical path p to dst:
// trailing dots and spaces trimmed per segment, ASCII lower-cased. A
// segment that trims to nothing is dropped (Canonical refuses those, so
// this only keeps the "no //" property for any input).
func appendProbe[S ~string | ~[]byte](dst []byte, p S) []byte {
	start := len(dst)
	for i := 0; i < len(p); {
		// p[i] == '/'
		j := i + 1
		for j < len(p) && p[j] != '/' {
			j++
		}
		end := j
		for end > i+1 && (p[end-1] == '.' || p[end-1] == ' ') {
			end--
		}
		if end > i+1 {
			dst = append(dst, '/')
			for k := i + 1; k < end; k++ {
				dst = append(dst, lowerASCII[p[k]])
			}
		}
		i = j
	}
	if len(dst) == start || p[len(p)-1] == '/' {
		dst = append(dst, '/')
	}
	return dst
}

// lowerASCII maps A-Z to a-z and every other byte to itself: the only
// case folding path rules use (no Unicode folding, see CanonicalPath). It
// is a never-mutated table.
var lowerASCII = func() (t [256]byte) {
	for i := range t {
		t[i] = byte(i)
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = byte(c) + 'a' - 'A'
	}
	return t
}()

func dotsAndSpaces(b []byte) bool {
	for _, c := range b {
		if c != '.' && c != ' ' {
			return false
		}
	}
	return true
}

func lastSlash(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '/' {
			return i
		}
	}
	return -1
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}
