package filter

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

// Exact rewrites of Python constructs RE2 lacks, on a parse tree of the
// expression:
//
//   - a conditional (?(g)yes|no) whose group g is decided by an earlier
//     choice of the same sequence (an optional group, or an alternative of a
//     group) becomes that choice distributed over the rest of the sequence,
//     each branch with the conditional resolved: the same language, tried
//     in the same order;
//   - (?:(?!L).)*? right before the literal L (L a literal without case
//     folding) matches exactly the text up to the first L, and
//     (?:(?!L).)* right before the end ($) exactly a rest without L: both
//     are regular languages, written out from L's KMP automaton; where the
//     text they match is unique, groups and verdicts are Python's.
//
// Anything else is refused, with the construct named.

type pop uint8

const (
	pLeaf   pop = iota // printed as text: a character, class, escape or assertion
	pLit               // one literal character (text)
	pConcat            // kids in sequence
	pAlt               // kids as alternatives
	pGroup             // text is the opening, "(?:", "(?P<x>", "(" or "(?i:"
	pRepeat            // kids[0] and the quantifier text
	pLook              // text is the opening "(?=", "(?!", "(?<=", "(?<!"
	pCond              // name; kids: yes, no
	pBackref
	pFlags // a global flag group, text
)

type pnode struct {
	op   pop
	text string // leaf text, group opening, quantifier, flags
	name string // capture name of a group, condition of a conditional
	kids []*pnode
	min  int // repeat bounds; max -1 is unbounded
	max  int
	lazy bool
}

type pyParser struct {
	s   string
	i   int
	grp int // unnamed capture groups seen
}

func parsePy(s string) (*pnode, error) {
	p := &pyParser{s: s}
	n, err := p.alt()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.s) {
		return nil, fmt.Errorf("offset %d: unbalanced )", p.i)
	}
	return n, nil
}

func (p *pyParser) alt() (*pnode, error) {
	var alts []*pnode
	for {
		c, err := p.concat()
		if err != nil {
			return nil, err
		}
		alts = append(alts, c)
		if p.i < len(p.s) && p.s[p.i] == '|' {
			p.i++
			continue
		}
		break
	}
	if len(alts) == 1 {
		return alts[0], nil
	}
	return &pnode{op: pAlt, kids: alts}, nil
}

func (p *pyParser) concat() (*pnode, error) {
	n := &pnode{op: pConcat}
	for p.i < len(p.s) && p.s[p.i] != '|' && p.s[p.i] != ')' {
		a, err := p.atom()
		if err != nil {
			return nil, err
		}
		if a == nil {
			continue
		}
		if a, err = p.quant(a); err != nil {
			return nil, err
		}
		n.kids = append(n.kids, a)
	}
	return n, nil
}

func (p *pyParser) quant(a *pnode) (*pnode, error) {
	if p.i >= len(p.s) {
		return a, nil
	}
	start := p.i
	min, max := 0, 0
	switch p.s[p.i] {
	case '*':
		min, max = 0, -1
		p.i++
	case '+':
		min, max = 1, -1
		p.i++
	case '?':
		min, max = 0, 1
		p.i++
	case '{':
		j := strings.IndexByte(p.s[p.i:], '}')
		if j < 0 {
			return a, nil
		}
		body := p.s[p.i+1 : p.i+j]
		lo, hi, ok := strings.Cut(body, ",")
		var err1, err2 error
		if _, err1 = fmt.Sscanf(lo+"\n", "%d\n", &min); lo == "" {
			min, err1 = 0, nil
		}
		switch {
		case !ok:
			max = min
		case hi == "":
			max = -1
		default:
			_, err2 = fmt.Sscanf(hi+"\n", "%d\n", &max)
		}
		if err1 != nil || err2 != nil {
			return a, nil // a literal brace, as in Python
		}
		p.i += j + 1
	default:
		return a, nil
	}
	r := &pnode{op: pRepeat, kids: []*pnode{a}, min: min, max: max}
	if p.i < len(p.s) && p.s[p.i] == '?' {
		r.lazy = true
		p.i++
	} else if p.i < len(p.s) && p.s[p.i] == '+' {
		return nil, &TranslateError{p.i, "possessive quantifier: RE2 has no such construct"}
	}
	r.text = p.s[start:p.i]
	return r, nil
}

func (p *pyParser) atom() (*pnode, error) {
	s, i := p.s, p.i
	switch c := s[i]; c {
	case '\\':
		if i+1 >= len(s) {
			return nil, &TranslateError{i, "trailing backslash"}
		}
		n := s[i+1]
		switch {
		case n >= '1' && n <= '9':
			return nil, &TranslateError{i, "back-reference: RE2 cannot match back-references"}
		case n == 'x' && i+3 < len(s):
			p.i = i + 4
			var v int
			if _, err := fmt.Sscanf(s[i+2:i+4], "%02x", &v); err != nil {
				return nil, &TranslateError{i, "bad \\x escape"}
			}
			return &pnode{op: pLit, text: string(rune(v))}, nil
		case isWord(n):
			p.i = i + 2
			if n == 'Z' {
				return &pnode{op: pLeaf, text: `\z`}, nil
			}
			return &pnode{op: pLeaf, text: s[i : i+2]}, nil
		}
		p.i = i + 2
		return &pnode{op: pLit, text: s[i+1 : i+2]}, nil
	case '[':
		j := classEnd(s, i)
		if j == len(s) {
			return nil, &TranslateError{i, "unterminated character class"}
		}
		p.i = j + 1
		return &pnode{op: pLeaf, text: s[i : j+1]}, nil
	case '(':
		return p.group()
	case '.', '^', '$':
		p.i++
		return &pnode{op: pLeaf, text: s[i : i+1]}, nil
	}
	_, size := utf8.DecodeRuneInString(s[i:])
	p.i += size
	return &pnode{op: pLit, text: s[i : i+size]}, nil
}

func (p *pyParser) group() (*pnode, error) {
	s, i := p.s, p.i
	rest := s[i:]
	var n *pnode
	switch {
	case strings.HasPrefix(rest, "(?:"):
		n, p.i = &pnode{op: pGroup, text: "(?:"}, i+3
	case strings.HasPrefix(rest, "(?P<"):
		j := strings.IndexByte(rest, '>')
		if j < 0 {
			return nil, &TranslateError{i, "unterminated group name"}
		}
		n, p.i = &pnode{op: pGroup, text: rest[:j+1], name: rest[4:j]}, i+j+1
	case strings.HasPrefix(rest, "(?P="):
		j := strings.IndexByte(rest, ')')
		if j < 0 {
			return nil, &TranslateError{i, "unterminated back-reference"}
		}
		return nil, &TranslateError{i, "named back-reference (?P=…): RE2 cannot match back-references"}
	case strings.HasPrefix(rest, "(?="), strings.HasPrefix(rest, "(?!"):
		n, p.i = &pnode{op: pLook, text: rest[:3]}, i+3
	case strings.HasPrefix(rest, "(?<="), strings.HasPrefix(rest, "(?<!"):
		n, p.i = &pnode{op: pLook, text: rest[:4]}, i+4
	case strings.HasPrefix(rest, "(?("):
		j := strings.IndexByte(rest, ')')
		if j < 0 {
			return nil, &TranslateError{i, "unterminated conditional"}
		}
		n, p.i = &pnode{op: pCond, name: rest[3:j]}, i+j+1
	case strings.HasPrefix(rest, "(?#"):
		j := strings.IndexByte(rest, ')')
		if j < 0 {
			return nil, &TranslateError{i, "unterminated comment"}
		}
		p.i = i + j + 1
		return nil, nil
	case strings.HasPrefix(rest, "(?"):
		j := 2
		for j < len(rest) && rest[j] >= 'a' && rest[j] <= 'z' {
			j++
		}
		flags := strings.ReplaceAll(rest[2:j], "u", "") // Unicode: Python's default
		if strings.Trim(flags, "ims") != "" {
			return nil, &TranslateError{i, "flags (?" + rest[2:j] + "): RE2 has only i, m and s"}
		}
		if j < len(rest) && rest[j] == ')' {
			p.i = i + j + 1
			if flags == "" {
				return nil, nil
			}
			return &pnode{op: pFlags, text: "(?" + flags + ")"}, nil
		}
		if j < len(rest) && rest[j] == ':' {
			n, p.i = &pnode{op: pGroup, text: "(?" + flags + ":"}, i+j+1
			break
		}
		return nil, &TranslateError{i, "unknown group construct"}
	default:
		p.grp++
		n, p.i = &pnode{op: pGroup, text: "("}, i+1
	}
	body, err := p.alt()
	if err != nil {
		return nil, err
	}
	if p.i >= len(p.s) || p.s[p.i] != ')' {
		return nil, &TranslateError{i, "unterminated group"}
	}
	p.i++
	if n.op == pCond {
		yes, no := body, &pnode{op: pConcat}
		if body.op == pAlt {
			if len(body.kids) > 2 {
				return nil, &TranslateError{i, "conditional with more than two branches"}
			}
			yes, no = body.kids[0], body.kids[1]
		}
		n.kids = []*pnode{yes, no}
		return n, nil
	}
	n.kids = []*pnode{body}
	return n, nil
}

// String prints n in RE2 syntax (what RE2 lacks printed as Python's).
func (n *pnode) String() string {
	var b strings.Builder
	n.write(&b)
	return b.String()
}

func (n *pnode) write(b *strings.Builder) {
	switch n.op {
	case pLeaf, pFlags:
		b.WriteString(n.text)
	case pLit:
		r, _ := utf8.DecodeRuneInString(n.text)
		b.WriteString(quoteRune(r))
	case pConcat:
		for _, k := range n.kids {
			k.write(b)
		}
	case pAlt:
		for i, k := range n.kids {
			if i > 0 {
				b.WriteByte('|')
			}
			k.write(b)
		}
	case pGroup, pLook:
		b.WriteString(n.text)
		n.kids[0].write(b)
		b.WriteByte(')')
	case pRepeat:
		k := n.kids[0]
		if k.op == pConcat || k.op == pAlt || k.op == pRepeat {
			b.WriteString("(?:")
			k.write(b)
			b.WriteByte(')')
		} else {
			k.write(b)
		}
		b.WriteString(n.text)
	case pCond:
		b.WriteString("(?(" + n.name + ")")
		n.kids[0].write(b)
		b.WriteByte('|')
		n.kids[1].write(b)
		b.WriteByte(')')
	}
}

func (n *pnode) clone() *pnode {
	c := *n
	c.kids = make([]*pnode, len(n.kids))
	for i, k := range n.kids {
		c.kids[i] = k.clone()
	}
	return &c
}

// rewritePython applies the exact rewrites to a Python expression whose
// fail2ban tags are already expanded, and returns it in RE2 syntax.
func rewritePython(re string) (string, error) {
	if strings.Contains(re, "(?i") {
		return "", errors.New("case folding: the rewrites read literals case-sensitively")
	}
	n, err := parsePy(re)
	if err != nil {
		return "", err
	}
	if n, err = elimConds(n); err != nil {
		return "", err
	}
	if err := rewriteLooks(n, []*pnode{}); err != nil {
		return "", err
	}
	out := n.String()
	if err := checkSyntax(out); err != nil {
		return "", err
	}
	if _, err := regexp.Compile(out); err != nil {
		return "", err
	}
	return out, nil
}

// elimConds removes the conditionals of n by distribution.
func elimConds(n *pnode) (*pnode, error) {
	for i, k := range n.kids {
		var err error
		if n.kids[i], err = elimConds(k); err != nil {
			return nil, err
		}
	}
	if n.op != pConcat {
		return n, nil
	}
	for i, item := range n.kids {
		refs := condRefs(n.kids[i+1:])
		for _, g := range refs {
			branches, ok := choice(item, g)
			if !ok || mentionsAny(n.kids[i+1:], g) {
				continue // not decided here, or set again later
			}
			alt := &pnode{op: pAlt}
			for _, br := range branches {
				rest := &pnode{op: pConcat, kids: []*pnode{br.item}}
				for _, r := range n.kids[i+1:] {
					rest.kids = append(rest.kids, resolve(r.clone(), g, br.set))
				}
				r, err := elimConds(rest)
				if err != nil {
					return nil, err
				}
				alt.kids = append(alt.kids, r)
			}
			out := &pnode{op: pConcat, kids: append(append([]*pnode(nil), n.kids[:i]...), &pnode{op: pGroup, text: "(?:", kids: []*pnode{alt}})}
			return out, nil
		}
	}
	return n, nil
}

// condRefs returns the groups the conditionals within ns test.
func condRefs(ns []*pnode) []string {
	var out []string
	var walk func(*pnode)
	walk = func(n *pnode) {
		if n.op == pCond {
			out = append(out, n.name)
		}
		for _, k := range n.kids {
			walk(k)
		}
	}
	for _, n := range ns {
		walk(n)
	}
	return out
}

type branch struct {
	item *pnode
	set  bool
}

// choice splits item into the ways it matches that decide whether group g
// takes part, in Python's order: an optional item holding g (greedy: with
// g first), a group of alternatives each holding g or not, or g itself.
func choice(item *pnode, g string) ([]branch, bool) {
	switch {
	case item.op == pGroup && item.name == g:
		return []branch{{item, true}}, true
	case item.op == pRepeat && item.min == 0 && item.max == 1 && defines(item.kids[0], g):
		with, without := branch{item.kids[0], true}, branch{&pnode{op: pConcat}, false}
		if item.lazy {
			return []branch{without, with}, true
		}
		return []branch{with, without}, true
	case item.op == pGroup && item.kids[0].op == pAlt && mentions(item, g):
		var out []branch
		for _, a := range item.kids[0].kids {
			switch {
			case defines(a, g):
				out = append(out, branch{&pnode{op: pGroup, text: item.text, name: item.name, kids: []*pnode{a}}, true})
			case !mentions(a, g):
				out = append(out, branch{&pnode{op: pGroup, text: item.text, name: item.name, kids: []*pnode{a}}, false})
			default:
				return nil, false
			}
		}
		return out, true
	}
	return nil, false
}

// defines reports whether every match of n sets group g.
func defines(n *pnode, g string) bool {
	switch n.op {
	case pGroup:
		return n.name == g || defines(n.kids[0], g)
	case pConcat:
		for _, k := range n.kids {
			if defines(k, g) {
				return true
			}
		}
	case pRepeat:
		return n.min >= 1 && defines(n.kids[0], g)
	}
	return false
}

func mentionsAny(ns []*pnode, g string) bool {
	for _, n := range ns {
		if mentions(n, g) {
			return true
		}
	}
	return false
}

// mentions reports whether n holds a group g.
func mentions(n *pnode, g string) bool {
	if n.op == pGroup && n.name == g {
		return true
	}
	for _, k := range n.kids {
		if mentions(k, g) {
			return true
		}
	}
	return false
}

// resolve replaces the conditionals on g within n by their branch.
func resolve(n *pnode, g string, set bool) *pnode {
	if n.op == pCond && n.name == g {
		k := n.kids[1]
		if set {
			k = n.kids[0]
		}
		return &pnode{op: pGroup, text: "(?:", kids: []*pnode{resolve(k, g, set)}}
	}
	for i, k := range n.kids {
		n.kids[i] = resolve(k, g, set)
	}
	return n
}

// unknownCont stands for a continuation the rewrites cannot see (after a
// repetition's body).
var unknownCont = &pnode{op: pLeaf, text: "\x00"}

// rewriteLooks replaces the look-ahead idioms of n; cont is what follows
// n up to the end of the expression (empty: nothing), unknownCont where
// that is not known.
func rewriteLooks(n *pnode, cont []*pnode) error {
	switch n.op {
	case pConcat:
		for i, k := range n.kids {
			c := append(append([]*pnode{}, n.kids[i+1:]...), cont...)
			if k.op == pRepeat && i+1 < len(n.kids) {
				if w, ok := notWordIdiom(k, n.kids[i+1]); ok {
					// \w+ (?!W\b) repeated, then \w+: the words after the
					// first are not W
					n.kids[i] = &pnode{op: pLeaf, text: `\w+`}
					n.kids[i+1] = &pnode{op: pRepeat, text: k.text, min: k.min, max: k.max, lazy: k.lazy,
						kids: []*pnode{{op: pLeaf, text: "(?: " + notWord(w) + ")"}}}
					continue
				}
			}
			if k.op == pRepeat {
				if lit, ok := notLitIdiom(k); ok {
					rep, err := lookRewrite(lit, k.lazy, c)
					if err != nil {
						return err
					}
					n.kids[i] = rep
					continue
				}
			}
			if err := rewriteLooks(k, c); err != nil {
				return err
			}
		}
		return nil
	case pAlt:
		for _, k := range n.kids {
			if err := rewriteLooks(k, cont); err != nil {
				return err
			}
		}
		return nil
	case pGroup:
		return rewriteLooks(n.kids[0], cont)
	case pRepeat:
		if _, ok := notLitIdiom(n); ok {
			return errors.New("negative look-ahead (?!…) in a repetition whose continuation is unknown")
		}
		return rewriteLooks(n.kids[0], []*pnode{unknownCont})
	case pLook:
		return errors.New(n.text + "…): RE2 has no such construct, and it is not one of the rewritten idioms")
	case pCond:
		return errors.New("conditional group (?(" + n.name + ")…): its group is not decided by an earlier choice of the same sequence")
	}
	return nil
}

// plainGroup reports whether n is a group that only groups or captures.
func plainGroup(n *pnode) bool {
	return n.op == pGroup && (n.text == "(?:" || n.text == "(" || strings.HasPrefix(n.text, "(?P<"))
}

// notWordIdiom recognises (?:\w+ (?!W\b)){m,n} followed by \w+, W a word:
// each word after the first (all whole words, each followed by a space
// or the first thing after the last) must not be W. Where the last word is
// followed by nothing, taking part of it changes no verdict, as nothing
// after it is captured.
func notWordIdiom(r, next *pnode) (string, bool) {
	if next.op != pRepeat || next.min != 1 || next.max != -1 || next.lazy || next.kids[0].op != pLeaf || next.kids[0].text != `\w` {
		return "", false
	}
	g := r.kids[0]
	if r.lazy || g.op != pGroup || g.text != "(?:" || g.kids[0].op != pConcat || len(g.kids[0].kids) != 3 {
		return "", false
	}
	w, sp, look := g.kids[0].kids[0], g.kids[0].kids[1], g.kids[0].kids[2]
	if w.op != pRepeat || w.min != 1 || w.max != -1 || w.lazy || w.kids[0].op != pLeaf || w.kids[0].text != `\w` ||
		sp.op != pLit || sp.text != " " || look.op != pLook || look.text != "(?!" {
		return "", false
	}
	body := look.kids[0]
	if body.op != pConcat || len(body.kids) < 2 {
		return "", false
	}
	last := body.kids[len(body.kids)-1]
	if last.op != pLeaf || last.text != `\b` {
		return "", false
	}
	word, ok := literalOf(&pnode{op: pConcat, kids: body.kids[:len(body.kids)-1]})
	if !ok {
		return "", false
	}
	for i := 0; i < len(word); i++ {
		if !isWord(word[i]) {
			return "", false
		}
	}
	return word, true
}

// notWord returns an expression for the whole words (\w+ up to a word
// boundary) other than w.
func notWord(w string) string {
	var alts []string
	for k := 0; k < len(w); k++ {
		alts = append(alts, w[:k]+`[^\W`+w[k:k+1]+`]\w*`)
		if k > 0 {
			alts = append(alts, w[:k])
		}
	}
	alts = append(alts, w+`\w+`)
	return "(?:" + strings.Join(alts, "|") + `)\b`
}

// notLitIdiom recognises (?:(?!L).)* and (?:(?!L).)*? with L literal.
func notLitIdiom(r *pnode) (string, bool) {
	if r.min != 0 || r.max != -1 {
		return "", false
	}
	g := r.kids[0]
	if g.op != pGroup || g.text != "(?:" || g.kids[0].op != pConcat || len(g.kids[0].kids) != 2 {
		return "", false
	}
	look, dot := g.kids[0].kids[0], g.kids[0].kids[1]
	if look.op != pLook || look.text != "(?!" || dot.op != pLeaf || dot.text != "." {
		return "", false
	}
	lit, ok := literalOf(look.kids[0])
	return lit, ok && lit != "" && !strings.Contains(lit, "\n")
}

func literalOf(n *pnode) (string, bool) {
	switch n.op {
	case pLit:
		return n.text, true
	case pConcat:
		var b strings.Builder
		for _, k := range n.kids {
			s, ok := literalOf(k)
			if !ok {
				return "", false
			}
			b.WriteString(s)
		}
		return b.String(), true
	case pGroup:
		if n.text == "(?:" {
			return literalOf(n.kids[0])
		}
	}
	return "", false
}

// followingLits returns the literal text that certainly comes next in
// cont, up to n bytes or the first thing that is not a literal.
func followingLits(cont []*pnode, n int) string {
	var b strings.Builder
	var walk func(ns []*pnode) bool
	walk = func(ns []*pnode) bool {
		for _, k := range ns {
			if b.Len() >= n {
				return false
			}
			switch {
			case k.op == pLit:
				b.WriteString(k.text)
			case plainGroup(k) && k.kids[0].op == pConcat:
				if !walk(k.kids[0].kids) {
					return false
				}
			default:
				return false
			}
		}
		return true
	}
	walk(cont)
	return b.String()
}

// endsHere reports whether cont is $ (or \z) and nothing else.
func endsHere(cont []*pnode) bool {
	var flat []*pnode
	var walk func(ns []*pnode) bool
	walk = func(ns []*pnode) bool {
		for _, k := range ns {
			switch {
			case plainGroup(k) && k.kids[0].op == pConcat:
				if !walk(k.kids[0].kids) {
					return false
				}
			case plainGroup(k):
				return false
			default:
				flat = append(flat, k)
			}
		}
		return true
	}
	if !walk(cont) || len(flat) != 1 {
		return false
	}
	return flat[0].op == pLeaf && (flat[0].text == "$" || flat[0].text == `\z`)
}

// lookRewrite writes the idiom on literal lit out in RE2.
func lookRewrite(lit string, lazy bool, cont []*pnode) (*pnode, error) {
	switch {
	case lazy && strings.HasPrefix(followingLits(cont, len(lit)), lit):
		return &pnode{op: pLeaf, text: "(?:" + upToFirst([]rune(lit)) + ")"}, nil
	case !lazy && endsHere(cont):
		return &pnode{op: pLeaf, text: "(?:" + without([]rune(lit)) + ")"}, nil
	}
	return nil, fmt.Errorf("negative look-ahead (?!%s) in a repetition not followed by %q nor by the end", lit, lit)
}

// kmp returns the KMP automaton of lit: next[s][i] is the state after
// reading lit's distinct rune i in state s (len(lit) is a match), other
// runes go to 0.
func kmp(lit []rune) (alpha []rune, next [][]int) {
	seen := map[rune]bool{}
	for _, r := range lit {
		if !seen[r] {
			seen[r] = true
			alpha = append(alpha, r)
		}
	}
	sort.Slice(alpha, func(i, j int) bool { return alpha[i] < alpha[j] })
	m := len(lit)
	next = make([][]int, m+1)
	for s := 0; s <= m; s++ {
		next[s] = make([]int, len(alpha))
		for i, r := range alpha {
			// longest prefix of lit that is a suffix of lit[:s]+r
			cand := append(append([]rune{}, lit[:min(s, m)]...), r)
			for k := min(len(cand), m); k >= 0; k-- {
				if string(cand[len(cand)-k:]) == string(lit[:k]) {
					next[s][i] = k
					break
				}
			}
		}
	}
	return alpha, next
}

// without returns an expression for the texts without lit (and without a
// newline, as Python's dot).
func without(lit []rune) string {
	m := len(lit)
	acc := make([]bool, m)
	for s := range acc {
		acc[s] = true
	}
	return automatonRegex(lit, acc)
}

// upToFirst returns an expression for the texts u such that u+lit holds
// lit first at its end: the text before lit's first occurrence.
func upToFirst(lit []rune) string {
	alpha, next := kmp(lit)
	m := len(lit)
	acc := make([]bool, m)
	for s := 0; s < m; s++ {
		st, ok := s, true
		for i, r := range lit {
			st = next[st][indexRune(alpha, r)]
			if st == m && i < m-1 {
				ok = false
				break
			}
		}
		acc[s] = ok && st == m
	}
	return automatonRegex(lit, acc)
}

func indexRune(rs []rune, r rune) int {
	for i, x := range rs {
		if x == r {
			return i
		}
	}
	return -1
}

// automatonRegex eliminates the states of lit's KMP automaton (without its
// match state) into an expression for the paths from state 0 to a state
// in acc.
func automatonRegex(lit []rune, acc []bool) string {
	alpha, next := kmp(lit)
	m := len(lit)
	// states 0..m-1, start m, final m+1; "" is the empty word, absent no edge
	n := m + 2
	edge := make([]map[int]string, n)
	for i := range edge {
		edge[i] = map[int]string{}
	}
	union := func(a, b string, okA bool) string {
		if !okA {
			return b
		}
		return a + "|" + b
	}
	group := func(s string) string {
		if s == "" {
			return ""
		}
		return "(?:" + s + ")"
	}
	var other strings.Builder
	other.WriteString(`[^\n`)
	for _, r := range alpha {
		other.WriteString(quoteRune(r))
	}
	other.WriteString("]")
	for s := 0; s < m; s++ {
		byTarget := map[int][]rune{}
		for i, r := range alpha {
			if t := next[s][i]; t < m {
				byTarget[t] = append(byTarget[t], r)
			}
		}
		for t, rs := range byTarget {
			var c strings.Builder
			c.WriteString("[")
			for _, r := range rs {
				c.WriteString(quoteRune(r))
			}
			c.WriteString("]")
			if t == 0 {
				e, ok := edge[s][0]
				edge[s][0] = union(e, c.String(), ok)
			} else {
				edge[s][t] = c.String()
			}
		}
		e, ok := edge[s][0]
		edge[s][0] = union(e, other.String(), ok)
		if acc[s] {
			edge[s][m+1] = ""
		}
	}
	edge[m][0] = ""
	for k := 0; k < m; k++ {
		loop, hasLoop := edge[k][k]
		star := ""
		if hasLoop {
			star = "(?:" + loop + ")*"
		}
		for i := 0; i < n; i++ {
			in, ok := edge[i][k]
			if i == k || !ok {
				continue
			}
			for j, out := range edge[k] {
				if j == k {
					continue
				}
				path := group(in) + star + group(out)
				e, ok := edge[i][j]
				edge[i][j] = union(e, path, ok)
			}
			delete(edge[i], k)
		}
		edge[k] = map[int]string{}
	}
	return edge[m][m+1]
}
