// Package yamlout writes the YAML configs the importers (proxy/config/fail2ban,
// proxy/config/nginx) build as node trees, whose comments and values carry
// text from the imported files.
package yamlout

import (
	"bytes"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Encode writes doc with two-space indentation after making every
// comment and value valid YAML text: imported files may hold any byte,
// YAML comments only printable UTF-8. Invalid UTF-8 becomes U+FFFD;
// control characters in comments other than line breaks are written as
// \xNN escapes. Encode changes doc.
func Encode(doc *yaml.Node) ([]byte, error) {
	sanitize(doc)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func sanitize(n *yaml.Node) {
	n.HeadComment = cleanComment(n.HeadComment)
	n.LineComment = cleanComment(n.LineComment)
	n.FootComment = cleanComment(n.FootComment)
	n.Value = strings.ToValidUTF8(n.Value, "\uFFFD")
	for _, c := range n.Content {
		sanitize(c)
	}
}

// cleanComment keeps the line structure of a comment and writes other
// control characters (and invalid UTF-8) as escapes.
func cleanComment(s string) string {
	if s == "" {
		return s
	}
	lines := strings.Split(strings.ToValidUTF8(s, "\uFFFD"), "\n")
	for i, l := range lines {
		var b strings.Builder
		for _, r := range l {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 || r == 0xfeff {
				fmt.Fprintf(&b, "\\x%02x", r)
				continue
			}
			b.WriteRune(r)
		}
		lines[i] = b.String()
	}
	return strings.Join(lines, "\n")
}
