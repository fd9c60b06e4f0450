package signer

import (
	"strings"
)

// signatureSeparators are the spellings of the "=" after gh_signature in
// a URL as it may appear in a log: plain, and percent-encoded once or
// twice when the link sits inside another URL's query (a login page's
// "?next=/paid/a.mp4%3Fgh_signature%3D…").
var signatureSeparators = [...]string{"=", "%3D", "%3d", "%253D", "%253d"}

// SignatureSpan returns the byte range [start, end) of the first
// gh_signature value in s, a URI, a URL or a Referer, or -1, -1 when
// there is none. The value is the run of base64url characters after the
// name and its "=" (plain or percent-encoded), which holds any valid
// signature whole: a signature is 43 of them. It does not allocate.
func SignatureSpan(s string) (start, end int) {
	for from := 0; ; {
		i := strings.Index(s[from:], ParamSignature)
		if i < 0 {
			return -1, -1
		}
		at := from + i + len(ParamSignature)
		from = at
		for _, sep := range signatureSeparators {
			if strings.HasPrefix(s[at:], sep) {
				v := at + len(sep)
				e := v
				for e < len(s) && isBase64URL(s[e]) {
					e++
				}
				if e > v {
					return v, e
				}
				break
			}
		}
	}
}

func isBase64URL(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// RedactSignatures returns s with every gh_signature value replaced by
// RedactedSignature (SignatureSpan), s itself when it holds none.
func RedactSignatures(s string) string {
	start, end := SignatureSpan(s)
	if start < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for start >= 0 {
		b.WriteString(s[:start])
		b.WriteString(RedactedSignature)
		s = s[end:]
		start, end = SignatureSpan(s)
	}
	b.WriteString(s)
	return b.String()
}
