package config

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
)

// ParseTrustedList reads a plain list: one address or prefix a line,
// "#" and ";" comments.
func ParseTrustedList(r io.Reader) ([]netip.Prefix, error) {
	var out []netip.Prefix
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		p, err := ParsePrefix(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, p)
	}
	return out, sc.Err()
}

// TrustedListCopy is where the last good copy of a url: list is kept.
func TrustedListCopy(stateDir string, t TrustedProxy) string {
	sum := sha256.Sum256([]byte(t.URL))
	return filepath.Join(stateDir, "intel", "trusted-"+hex.EncodeToString(sum[:8])+".txt")
}
