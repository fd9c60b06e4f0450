package filter

import (
	"fmt"
	"sort"
	"strings"
)

// notPrefix returns an RE2 expression that matches where the text that
// follows does not start with any of lits, consuming at most one character
// past the longest common start with one of them. It is a negative
// look-ahead of literals, (?!a|b), for a place where nothing else of the
// expression follows: there the characters it consumes change which lines
// match not at all, and the groups before it not either, since RE2 and
// Python choose among the ways to match the part before it in the same
// order. An empty literal excludes everything: the result never matches.
func notPrefix(lits ...string) string {
	root := &trieNode{kids: map[rune]*trieNode{}}
	for _, l := range lits {
		n := root
		for _, r := range l {
			if n.end {
				break
			}
			k := n.kids[r]
			if k == nil {
				k = &trieNode{kids: map[rune]*trieNode{}}
				n.kids[r] = k
			}
			n = k
		}
		n.end = true
		n.kids = map[rune]*trieNode{}
	}
	return root.notPrefix()
}

type trieNode struct {
	end  bool
	kids map[rune]*trieNode
}

func (n *trieNode) notPrefix() string {
	if n.end {
		return `[^\x00-\x{10FFFF}]` // nothing
	}
	rs := make([]rune, 0, len(n.kids))
	for r := range n.kids {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i] < rs[j] })
	var b strings.Builder
	b.WriteString(`(?:\z|[^`)
	for _, r := range rs {
		b.WriteString(quoteRune(r))
	}
	b.WriteString(`]`)
	for _, r := range rs {
		k := n.kids[r]
		if k.end {
			continue
		}
		b.WriteString("|" + quoteRune(r) + k.notPrefix())
	}
	b.WriteString(`)`)
	return b.String()
}

// quoteRune writes r so that it is a literal both inside and outside a
// character class.
func quoteRune(r rune) string {
	switch {
	case r < 0x80 && strings.ContainsRune(`\.+*?()|[]{}^$-&~#/!"%',:;<=>@_`+"`", r):
		return `\` + string(r)
	case r > 0x20 && r < 0x7f, r == ' ':
		return string(r)
	}
	return fmt.Sprintf(`\x{%x}`, r)
}
