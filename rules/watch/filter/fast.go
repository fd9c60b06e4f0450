package filter

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"time"
)

// Shortcuts that spare a line the regex engine without changing any
// verdict or group: each is exact, and falls back to the full expression
// where it cannot decide.

// leadingLiterals returns literals of which every match of the RE2
// expression re, anchored at the start of the text (^ without (?m)),
// starts with one (case-sensitive), or nil if re is not anchored so or
// there is no such set. A line that starts with none of them cannot match,
// which strings.HasPrefix tells in a few nanoseconds.
func leadingLiterals(re string) []string {
	p, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return nil
	}
	p = p.Simplify()
	for p.Op == syntax.OpCapture {
		p = p.Sub[0]
	}
	if p.Op != syntax.OpConcat || len(p.Sub) < 2 || p.Sub[0].Op != syntax.OpBeginText {
		return nil
	}
	return firstLits(p.Sub[1:])
}

// firstLits returns the literals one of which starts every match of the
// concatenation subs, or nil.
func firstLits(subs []*syntax.Regexp) []string {
	if len(subs) == 0 {
		return nil
	}
	s := subs[0]
	switch s.Op {
	case syntax.OpLiteral:
		if s.Flags&syntax.FoldCase != 0 {
			return nil
		}
		return []string{string(s.Rune)}
	case syntax.OpCapture:
		return firstLits(append([]*syntax.Regexp{s.Sub[0]}, subs[1:]...))
	case syntax.OpConcat:
		return firstLits(append(append([]*syntax.Regexp(nil), s.Sub...), subs[1:]...))
	case syntax.OpPlus:
		return firstLits([]*syntax.Regexp{s.Sub[0]})
	case syntax.OpRepeat:
		if s.Min >= 1 {
			return firstLits([]*syntax.Regexp{s.Sub[0]})
		}
	case syntax.OpAlternate:
		var out []string
		for _, b := range s.Sub {
			l := firstLits([]*syntax.Regexp{b})
			if l == nil {
				return nil
			}
			out = append(out, l...)
		}
		return out
	}
	return nil
}

func hasAnyPrefix(s string, lits []string) bool {
	for _, l := range lits {
		if strings.HasPrefix(s, l) {
			return true
		}
	}
	return false
}

// headRx is a prefregex without its tail `<F-CONTENT>.+</F-CONTENT>$`
// (or .*), the usual end of fail2ban's prefregexes: the head's match tells
// where the content starts, and the content is the rest of the line.
// Matching the head alone spares the engine a step per character of
// content. It is exact: the full expression takes the first way (in
// RE2's and Python's order) of matching the head that leaves a rest the
// tail accepts, so when the head's first way leaves such a rest it is the
// one the full expression takes; otherwise Filter falls back to the full
// expression.
type headRx struct {
	re       *regexp.Regexp
	content  int  // index of the content group in the full expression
	nonEmpty bool // the tail was .+: the rest must not be empty
}

// splitContentTail returns the head of the translated prefregex t when t
// ends in a content group of .+ or .* and $, or nil.
func splitContentTail(t string, names []string) *headRx {
	var tail string
	var nonEmpty bool
	switch {
	case strings.HasSuffix(t, `(?P<content>.+)$`):
		tail, nonEmpty = `(?P<content>.+)$`, true
	case strings.HasSuffix(t, `(?P<content>.*)$`):
		tail = `(?P<content>.*)$`
	default:
		return nil
	}
	content := -1
	for i, n := range names {
		if n == "content" {
			if content >= 0 {
				return nil
			}
			content = i
		}
	}
	// the content group must be the last one, so that the head's groups
	// are numbered as in the full expression
	if content != len(names)-1 {
		return nil
	}
	head, err := regexp.Compile(strings.TrimSuffix(t, tail))
	if err != nil || head.NumSubexp() != content-1 {
		return nil
	}
	return &headRx{re: head, content: content, nonEmpty: nonEmpty}
}

// match returns the full expression's submatch indices for s, or ok false
// if the head cannot decide (the caller runs the full expression).
func (h *headRx) match(s string) (m []int, matched, ok bool) {
	hm := h.re.FindStringSubmatchIndex(s)
	if hm == nil {
		// every match of the full expression starts with a match of the
		// head: there is none
		return nil, false, true
	}
	rest := s[hm[1]:]
	if (h.nonEmpty && rest == "") || strings.IndexByte(rest, '\n') >= 0 {
		return nil, false, false
	}
	m = append(hm, hm[1], len(s))
	m[1] = len(s)
	return m, true, true
}

// syslogDate reads the most common timestamp, a BSD syslog one at the very
// start of the line ("Jun 21 16:47:48 host …"), without the regex engine.
// It accepts only what the default templates would read in the same way:
// a month name, a day of two characters ("21", "01", " 1"), a time of two
// digits each, and then a character that is not a word character, a
// point (a fraction) nor a space before a digit (a year); anything else
// (ok false) goes to the templates.
func (d *dateDetector) syslogDate(line string) (end int, t time.Time, ok bool) {
	if len(line) < 15 {
		return 0, time.Time{}, false
	}
	mon := monthIndex(line[:3])
	if mon == 0 || line[3] != ' ' || line[6] != ' ' || line[9] != ':' || line[12] != ':' {
		return 0, time.Time{}, false
	}
	var day int
	switch c, c2 := line[4], line[5]; {
	case (c == '1' || c == '2') && isDigit(c2):
		day = int(c-'0')*10 + int(c2-'0')
	case (c == '0' || c == ' ') && c2 >= '1' && c2 <= '9':
		day = int(c2 - '0')
	case c == '3' && (c2 == '0' || c2 == '1'):
		day = 30 + int(c2-'0')
	default:
		return 0, time.Time{}, false
	}
	hour, ok1 := digits2(line[7:])
	mins, ok2 := digits2(line[10:])
	sec, ok3 := digits2(line[13:])
	if !ok1 || !ok2 || !ok3 || line[7] > '2' || line[10] > '5' || line[13] > '5' || hour > 23 {
		return 0, time.Time{}, false
	}
	if len(line) > 15 {
		switch c := line[15]; {
		case isWord(c), c == '.', c >= 0x80:
			return 0, time.Time{}, false
		case c == ' ' && len(line) > 16 && isDigit(line[16]):
			return 0, time.Time{}, false
		}
	}
	if day > daysIn[mon] {
		return 0, time.Time{}, false // February 29 depends on the year
	}
	t, ok = d.resolve(civil{month: mon, day: day, hour: hour, min: mins, sec: sec, hasMonth: true, hasDay: true})
	return 15, t, ok
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

var daysIn = [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

func monthIndex(s string) int {
	const names = "JanFebMarAprMayJunJulAugSepOctNovDec"
	for m := 0; m < 12; m++ {
		if names[3*m:3*m+3] == s {
			return m + 1
		}
	}
	return 0
}

func digits2(s string) (int, bool) {
	if len(s) < 2 || s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' {
		return 0, false
	}
	return int(s[0]-'0')*10 + int(s[1]-'0'), true
}

// litSet answers whether a text contains any of a set of literals (each of
// at least two bytes) in one pass: a bitmap of their first two bytes
// finds the places where one may start, and only there are they compared.
type litSet struct {
	first [1 << 16 / 64]uint64
	by    map[uint16][]string
}

func newLitSet(lits []string) *litSet {
	s := &litSet{by: map[uint16][]string{}}
	for _, l := range lits {
		if len(l) < 2 {
			return nil
		}
		k := uint16(l[0])<<8 | uint16(l[1])
		s.first[k/64] |= 1 << (k % 64)
		if !slices.Contains(s.by[k], l) {
			s.by[k] = append(s.by[k], l)
		}
	}
	return s
}

func (s *litSet) containedIn(text string) bool {
	for i := 0; i+1 < len(text); i++ {
		k := uint16(text[i])<<8 | uint16(text[i+1])
		if s.first[k/64]&(1<<(k%64)) == 0 {
			continue
		}
		for _, l := range s.by[k] {
			if strings.HasPrefix(text[i:], l) {
				return true
			}
		}
	}
	return false
}

// requiredSeq returns literals that every match of the RE2 expression re
// contains in this order, without overlap: the runs of literal text its
// top-level sequence cannot avoid. A text that does not contain them in
// order (hasSeq) cannot match; the test is one pass over the text.
func requiredSeq(re string) []string {
	p, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return nil
	}
	var out []string
	run := ""
	flush := func() {
		if len(run) >= 2 {
			out = append(out, run)
		}
		run = ""
	}
	var walk func(*syntax.Regexp)
	walk = func(r *syntax.Regexp) {
		switch r.Op {
		case syntax.OpLiteral:
			if r.Flags&syntax.FoldCase != 0 {
				flush()
				return
			}
			run += string(r.Rune)
		case syntax.OpCapture:
			walk(r.Sub[0])
		case syntax.OpConcat:
			for _, s := range r.Sub {
				walk(s)
			}
		case syntax.OpPlus:
			// at least one repetition, whose runs are required; what
			// follows may come after further repetitions
			flush()
			walk(r.Sub[0])
			flush()
		case syntax.OpRepeat:
			flush()
			if r.Min >= 1 {
				walk(r.Sub[0])
				flush()
			}
		case syntax.OpBeginText, syntax.OpBeginLine, syntax.OpEndText, syntax.OpEndLine,
			syntax.OpWordBoundary, syntax.OpNoWordBoundary, syntax.OpEmptyMatch:
			// zero width: the runs around it are still adjacent
		default:
			flush()
		}
	}
	walk(p.Simplify())
	flush()
	return out
}

// hasSeq reports whether s contains seq's literals in order, without
// overlap. Taking each at its first place after the previous one finds
// such a placement whenever there is one.
func hasSeq(s string, seq []string) bool {
	for _, l := range seq {
		i := strings.Index(s, l)
		if i < 0 {
			return false
		}
		s = s[i+len(l):]
	}
	return true
}
