package filter

import (
	"math/bits"
	"regexp/syntax"
	"strings"
	"unicode"
)

// A line without a date would otherwise run every template's expression,
// some 34 of them for the default list. Most templates cannot match
// without a byte in a given context: every default template but EPOCH,
// TAI64N and the compact 20050123T215959 one needs a ':' between two
// digits (%H:%M). Each template gets the rarest such need its expression
// proves, and a line that lacks it is spared the expression. The test is
// exact: it only skips a template that cannot match.

// byteSet is a set of bytes.
type byteSet [4]uint64

func (b *byteSet) add(c byte)      { b[c>>6] |= 1 << (c & 63) }
func (b *byteSet) has(c byte) bool { return b[c>>6]&(1<<(c&63)) != 0 }
func (b *byteSet) union(o *byteSet) {
	b[0], b[1], b[2], b[3] = b[0]|o[0], b[1]|o[1], b[2]|o[2], b[3]|o[3]
}

func (b *byteSet) size() int {
	return bits.OnesCount64(b[0]) + bits.OnesCount64(b[1]) + bits.OnesCount64(b[2]) + bits.OnesCount64(b[3])
}

// byteNeed says every match contains the byte c, preceded by a byte of
// prev (unless anyPrev) and followed by a byte of next (unless anyNext);
// or, with start, that the text starts with a byte of next.
type byteNeed struct {
	c                byte
	prev, next       byteSet
	anyPrev, anyNext bool
	start            bool
}

// maxAlts bounds the alternatives of a dateNeed.
const maxAlts = 4

// dateNeed says every match of a template has one of its alternatives.
type dateNeed struct {
	alts [maxAlts]byteNeed
	n    int
}

// in reports whether s has one of the alternatives of d.
func (d *dateNeed) in(s string) bool {
	for i := range d.n {
		if d.alts[i].in(s) {
			return true
		}
	}
	return false
}

// in reports whether s has c in the context n needs.
func (n *byteNeed) in(s string) bool {
	if n.start {
		return len(s) > 0 && n.next.has(s[0])
	}
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], n.c)
		if j < 0 {
			return false
		}
		j += i
		if (n.anyPrev || j > 0 && n.prev.has(s[j-1])) && (n.anyNext || j+1 < len(s) && n.next.has(s[j+1])) {
			return true
		}
		i = j + 1
	}
	return false
}

// cost ranks needs: the fewer lines hold one, the better. A space, a
// letter or a digit is in most lines; a context narrows it.
func (n *byteNeed) cost() int {
	w := 1
	switch c := n.c; {
	case n.start:
		return n.next.size()
	case c == ' ':
		w = 64
	case isWord(c):
		w = 16
	}
	ctx := func(any bool, s *byteSet) int {
		if any {
			return 256
		}
		return s.size()
	}
	return w * (ctx(n.anyPrev, &n.prev) + ctx(n.anyNext, &n.next))
}

// needOf returns what every match of the RE2 expression re needs, or nil.
func needOf(re string) *dateNeed {
	p, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return nil
	}
	return needs(p.Simplify())
}

// needs returns the best single need of re or, failing one, one need per
// alternative of re; nil if neither is known.
func needs(re *syntax.Regexp) *dateNeed {
	var best *byteNeed
	collectNeeds(re, func(n byteNeed) {
		if best == nil || n.cost() < best.cost() {
			best = &n
		}
	})
	if best != nil {
		return &dateNeed{alts: [maxAlts]byteNeed{*best}, n: 1}
	}
	for re.Op == syntax.OpCapture {
		re = re.Sub[0]
	}
	if re.Op != syntax.OpAlternate {
		return nil
	}
	d := &dateNeed{}
	for _, sub := range re.Sub {
		s := needs(sub)
		if s == nil || d.n+s.n > maxAlts {
			return nil
		}
		copy(d.alts[d.n:], s.alts[:s.n])
		d.n += s.n
	}
	return d
}

// item is one element of a concatenation: a node, or one rune of a
// literal.
type item struct {
	re   *syntax.Regexp
	r    rune
	fold bool
}

// collectNeeds calls add with every need of re found in the
// concatenations every match goes through.
func collectNeeds(re *syntax.Regexp, add func(byteNeed)) {
	switch re.Op {
	case syntax.OpCapture, syntax.OpPlus:
		collectNeeds(re.Sub[0], add)
	case syntax.OpRepeat:
		if re.Min >= 1 {
			collectNeeds(re.Sub[0], add)
		}
	case syntax.OpLiteral:
		concatNeeds([]*syntax.Regexp{re}, add)
	case syntax.OpConcat:
		concatNeeds(re.Sub, add)
		for _, s := range re.Sub {
			if s.Op != syntax.OpLiteral {
				collectNeeds(s, add)
			}
		}
	}
}

func concatNeeds(subs []*syntax.Regexp, add func(byteNeed)) {
	var items []item
	for _, s := range subs {
		if s.Op == syntax.OpLiteral {
			for _, r := range s.Rune {
				items = append(items, item{r: r, fold: s.Flags&syntax.FoldCase != 0})
			}
			continue
		}
		items = append(items, item{re: s})
	}
	if len(subs) > 0 && subs[0].Op == syntax.OpBeginText {
		n := byteNeed{start: true}
		if contextSet(items[1:], false, &n.next) {
			add(n)
		}
	}
	for i, it := range items {
		if it.re != nil || it.r >= 0x80 || it.fold && unicode.SimpleFold(it.r) != it.r {
			continue
		}
		n := byteNeed{c: byte(it.r)}
		n.anyPrev = !contextSet(items[:i], true, &n.prev)
		n.anyNext = !contextSet(items[i+1:], false, &n.next)
		if n.anyPrev && n.anyNext && isWord(n.c) {
			continue // in nearly every line
		}
		add(n)
	}
}

// contextSet puts into set the bytes (or more) that can stand next to the
// items on the side of the rune between them: the last byte of a match of
// items (last) or the first one. It reports false if that is not known or
// the items can match the empty text.
func contextSet(items []item, last bool, set *byteSet) bool {
	for k := range items {
		it := items[k]
		if last {
			it = items[len(items)-1-k]
		}
		var s byteSet
		if it.re == nil {
			if !runeSet(it.r, it.fold, &s) {
				return false
			}
			set.union(&s)
			return true
		}
		if !edgeSet(it.re, last, &s) {
			return false
		}
		set.union(&s)
		if !nullable(it.re) {
			return true
		}
	}
	return false
}

// runeSet adds to s the bytes r (and its case variants) can start or end
// with: any byte from 0x80 for a rune that is not ASCII (the bytes of its
// UTF-8 form, or an invalid byte read as U+FFFD).
func runeSet(r rune, fold bool, s *byteSet) bool {
	addRune(r, s)
	if fold {
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			addRune(f, s)
		}
	}
	return true
}

func addRune(r rune, s *byteSet) {
	if r < 0x80 {
		s.add(byte(r))
		return
	}
	s[2], s[3] = ^uint64(0), ^uint64(0)
}

// edgeSet adds to s the bytes a non-empty match of re can end (last) or
// start with (or more); false if unknown.
func edgeSet(re *syntax.Regexp, last bool, s *byteSet) bool {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return true
	case syntax.OpLiteral:
		if len(re.Rune) == 0 {
			return true
		}
		r := re.Rune[0]
		if last {
			r = re.Rune[len(re.Rune)-1]
		}
		return runeSet(r, re.Flags&syntax.FoldCase != 0, s)
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			for r := lo; r <= min(hi, 0x7f); r++ {
				s.add(byte(r))
			}
			if hi >= 0x80 {
				addRune(hi, s)
			}
		}
		return true
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		*s = byteSet{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
		return true
	case syntax.OpCapture, syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		return edgeSet(re.Sub[0], last, s)
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if !edgeSet(sub, last, s) {
				return false
			}
		}
		return true
	case syntax.OpConcat:
		for k := range re.Sub {
			sub := re.Sub[k]
			if last {
				sub = re.Sub[len(re.Sub)-1-k]
			}
			if !edgeSet(sub, last, s) {
				return false
			}
			if !nullable(sub) {
				return true
			}
		}
		return true
	}
	return false
}

// nullable reports whether re can match the empty text.
func nullable(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune) == 0
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return false
	case syntax.OpCapture, syntax.OpPlus:
		return nullable(re.Sub[0])
	case syntax.OpRepeat:
		return re.Min == 0 || nullable(re.Sub[0])
	case syntax.OpConcat:
		for _, s := range re.Sub {
			if !nullable(s) {
				return false
			}
		}
		return true
	case syntax.OpAlternate:
		for _, s := range re.Sub {
			if nullable(s) {
				return true
			}
		}
		return false
	case syntax.OpNoMatch:
		return false
	}
	return true // empty-width assertions, star, quest
}
