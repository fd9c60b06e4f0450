package match

import "strings"

// pathKeep marks the bytes EscapePath writes as they are: RFC 3986 pchar
// (unreserved, sub-delims, ":" and "@") and "/". Every one of them is in
// Go's net/url validEncoded set, so a request carrying EscapePath's
// output arrives with r.URL.EscapedPath() equal to it. It is a
// never-mutated table.
var pathKeep = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~!$&'()*+,=:@/" {
		t[c] = true
	}
	return t
}()

// EscapePath returns the one percent-encoded spelling of a canonical
// path (CanonicalPath.Path): pchar bytes as they are, every other byte
// as %XX in upper-case hex. A raw path is in canonical form when it is
// EscapePath(c.Path) for its own Canonical c: no "//", "." or ".."
// segment, no ";params", no needless or lower-case escape, case kept.
// Signed links are signed only for such paths, so a link names exactly
// one spelling of its resource. Canonical(EscapePath(c.Path))
// returns c. A path needing no escape is returned without allocation.
func EscapePath(p string) string {
	n := 0
	for i := 0; i < len(p); i++ {
		if !pathKeep[p[i]] {
			n++
		}
	}
	if n == 0 {
		return p
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(p) + 2*n)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if pathKeep[c] {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}
