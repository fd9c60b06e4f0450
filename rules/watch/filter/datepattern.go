package filter

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// A date pattern line is fail2ban's: a regular expression (Python syntax)
// with strftime directives (%Y, %m, %d, %H, %M, %S, %b, %a, %z …, and
// fail2ban's exact %Ex… forms and %k, %l), optionally preceded by
// {^LN-BEG} (the timestamp starts the line, after at most two non-word
// characters) or {UNB} (no word boundaries); or one of the special lines
// {^LN-BEG} and {DEFAULT} (the default templates), a pattern containing
// {DATE} (each default template in its place), {NONE} (no timestamp),
// EPOCH, LEPOCH, TAI64N (optionally {^LN-BEG} or ^ first), or a pattern
// containing {EPOCH} or {LEPOCH}. Unless anchored by ^ (or ending in $, \b,
// \s), a pattern only matches at word boundaries. The first group of the
// pattern, or the whole pattern if it has none, is the timestamp that is
// removed from the line. Case is ignored when the pattern names months,
// weekdays or AM/PM.

type tmplKind uint8

const (
	tmplStrptime tmplKind = iota
	tmplTAI64N
	tmplEpoch
	tmplLongEpoch
)

// dateTemplate is one date template compiled for RE2.
type dateTemplate struct {
	re        *regexp.Regexp
	kind      tmplKind
	anchored  bool  // at the line start or end: the first match decides
	lineBegin bool  // at the line start: kept by {^LN-BEG}
	span      []int // groups of the timestamp (the first that took part)
	at        []int // groups marking where fail2ban's match starts; nil: the match start
	epoch     []int // the seconds of an epoch template
	field     [nFields][]int
	name      string    // the pattern, for {DATE} and duplicates
	need      *dateNeed // every match has it; nil: none known
}

// bound is where a pattern may start.
type bound uint8

const (
	boundNone bound = iota
	boundWord       // at a word boundary
	boundLine       // at the line start, after at most two non-word characters
)

// Word boundaries in RE2: fail2ban's look-aheads (?=^|\b|\W) before and
// (?=\b|\W|$) after a timestamp fail only inside a word, so a boundary or
// a consumed non-word character outside the timestamp's group is the same
// test. The empty group marks where the timestamp starts.
const (
	reWordBegin = `(?:^|\b|\W)(?P<_at>)`
	reWordEnd   = `(?:\b|\W|$)`
	reLineBegin = `^(?:\W{0,2})?`
	reEpoch     = `\d{10,11}\b(?:\.\d{3,6})?`
	reLongEpoch = `\d{10,11}(?:\d{3}(?:\.\d{1,6}|\d{3})?)?`
	reTAI64N    = `@[0-9a-f]{24}`
)

// defaultDates are the formats fail2ban's default templates find, in its
// order, written with the strftime directives below. Separators that must
// repeat are spelled out as alternatives.
var defaultDates = []string{
	// ISO 8601 and alike, optional fraction and zone: 2005-01-23T21:59:59.981746+01:00,
	// 2005/01/23 21:59:59, 2005.01.23  8:59:59
	`%ExY(?:-%m-|/%m/|\.%m\.)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?`,
	// asctime, optional weekday, fraction and year: Sun Jan 23 21:59:59.011 2005
	`(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?`,
	// year after the day: Sun Jan 23 2005 21:59:59.011
	`(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?`,
	// 23/01/2005 21:59:59, 23-01-05 21:59:59
	`%d(?:-%m-|/%m/)(?:%ExY|%Exy) %k:%M:%S`,
	// Apache, optional zone: 31/Oct/2006:09:22:55 -0000, 26-Jul-2007 15:20:52.252
	`%d(?:-%b-|/%b/)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?`,
	// CPanel: 05/20/2008:01:57:39
	`%m/%d/%ExY:%H:%M:%S`,
	// 01-27-2012 16:22:44.252
	`%m-%d-%ExY %k:%M:%S(?:\.%f)?`,
	"EPOCH",
	// a time of day only
	`{^LN-BEG}%H:%M:%S`,
	// <09/16/08@05:03:30>
	`^<%m/%d/%Exy@%H:%M:%S>`,
	// MySQL: 130322 11:46:11
	`%Exy%Exm%Exd  ?%H:%M:%S`,
	// Tomcat: Jan 23, 2005 9:59:59 PM
	`%b %d, %ExY %I:%M:%S %p`,
	// Apr-27-13 02:33:06
	`^%b-%d-%Exy %k:%M:%S`,
	// 20050123T215959, 20050123 215959
	`%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?`,
	// zone name first: PDT Apr 16 21:05:29
	`(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?`,
	// zone offset first: +00:00 Jan 23 21:59:59.011 2005
	`(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?`,
	"TAI64N",
}

// directives are the strftime directives, as fail2ban reads them. Order
// within an alternation matters where one alternative is a prefix of
// another: the first that lets the whole pattern match wins.
var directives = map[string]string{
	"a": `(?P<a>mon|tue|wed|thu|fri|sat|sun)`,
	"A": `(?P<A>monday|tuesday|wednesday|thursday|friday|saturday|sunday)`,
	"b": `(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)`,
	"B": `(?P<B>january|february|march|april|may|june|july|august|september|october|november|december)`,
	"d": `(?P<d>[12]\d|[0 ]?[1-9]|3[01])`,
	"f": `(?P<f>\d{1,6})`,
	"H": `(?P<H>[01]?\d|2[0-3])`,
	"I": `(?P<I>1[0-2]|0[1-9]|[1-9])`,
	"k": ` ?(?P<H>[0-2]?\d)`,
	"l": ` ?(?P<I>1?\d)`,
	"m": `(?P<m>0?[1-9]|1[0-2])`,
	"M": `(?P<M>[0-5]?\d)`,
	"p": `(?P<p>am|pm)`,
	"S": `(?P<S>[0-5]?\d|6[01])`,
	"y": `(?P<y>\d\d)`,
	"Y": `(?P<Y>\d{4})`,
	"z": `(?P<z>Z|UTC|GMT|[+-][01]\d(?::?\d\d)?)`,
	"Z": `(?P<Z>Z|[A-Z]{3,5})`,
	"%": `%`,

	"Exd": `(?P<d>[12]\d|0[1-9]|3[01])`,
	"Exm": `(?P<m>0[1-9]|1[0-2])`,
	"ExH": `(?P<H>[01]\d|2[0-3])`,
	"Exk": ` ?(?P<H>[01]?\d|2[0-3])`,
	"Exl": ` ?(?P<I>1[0-2]|\d)`,
	"ExM": `(?P<M>[0-5]\d)`,
	"ExS": `(?P<S>[0-5]\d|6[01])`,
	"Exy": `(?P<y>\d\d)`,
	"ExZ": `(?P<Z>[A-Z](?:[A-Z]{2,4})?)`,
	"Exz": `(?P<z>(?:[A-Z](?:[A-Z]{2,4})?)?[+-][01]\d(?::?\d\d)?|[A-Z](?:[A-Z]{2,4})?)`,
	// ExY is computed from the clock: see templateBuilder.
}

// templateBuilder compiles date pattern lines.
type templateBuilder struct {
	exY      string // the %ExY expression
	defaults []*dateTemplate
	anchored []*dateTemplate // the default templates anchored at the line start
}

// newTemplateBuilder returns a builder whose %ExY accepts, like fail2ban's,
// the years 2000 to three years after now, by decade.
func newTemplateBuilder(now time.Time) *templateBuilder {
	last := max(now.Year(), time.Now().Year()) + 3
	var decades []string
	for y := 2000; y <= last; y += 10 {
		decades = append(decades, strconv.Itoa(y/10))
	}
	b := &templateBuilder{exY: `(?P<Y>(?:` + strings.Join(decades, "|") + `)\d)`}
	for _, p := range defaultDates {
		t, err := b.special(p)
		if err != nil {
			panic("default date template " + p + ": " + err.Error())
		}
		b.defaults = append(b.defaults, t)
	}
	// fail2ban tries the default templates first anchored at the line
	// start, those not anchored already.
	for i, t := range b.defaults {
		if t.lineBegin || strings.HasPrefix(defaultDates[i], "^") {
			continue
		}
		a, err := b.special("{^LN-BEG}" + defaultDates[i])
		if err != nil {
			panic("default date template " + defaultDates[i] + ": " + err.Error())
		}
		b.anchored = append(b.anchored, a)
	}
	return b
}

// syslogFirst reports whether syslogDate decides as tmpls: the templates
// before the anchored asctime one cannot match a line that starts with a
// letter.
func (b *templateBuilder) syslogFirst(tmpls []*dateTemplate) bool {
	asctime, iso, tai := b.anchored[1].re.String(), b.anchored[0].re.String(), b.anchored[len(b.anchored)-1].re.String()
	for _, t := range tmpls {
		switch t.re.String() {
		case asctime:
			return true
		case iso, tai:
			continue
		}
		return false
	}
	return false
}

// list compiles a datepattern: one template per line, "" meaning all
// default templates.
func (b *templateBuilder) list(pattern string) ([]*dateTemplate, error) {
	var out []*dateTemplate
	seen := map[string]bool{}
	add := func(ts ...*dateTemplate) {
		for _, t := range ts {
			if k := t.re.String(); !seen[k] {
				seen[k] = true
				out = append(out, t)
			}
		}
	}
	var lines []string
	for _, l := range strings.Split(pattern, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		lines = []string{"{DEFAULT}"}
	}
	for _, l := range lines {
		key := l
		if !strings.Contains(l, "%") {
			key = strings.ToUpper(l)
		}
		switch {
		case key == "{^LN-BEG}":
			add(b.anchored...)
			for _, t := range b.defaults {
				if t.lineBegin {
					add(t)
				}
			}
		case key == "{DEFAULT}":
			add(b.anchored...)
			add(b.defaults...)
		case strings.Contains(key, "{DATE}"):
			for i, t := range b.defaults {
				var w *dateTemplate
				var err error
				switch t.kind {
				case tmplStrptime:
					w, err = b.compile(replaceDATE(l, unbound(defaultDates[i])), boundWord, true)
				case tmplTAI64N:
					// fail2ban puts the template's name in place: "^{DATE}"
					// makes it the anchored template, other patterns a
					// literal one
					w, err = b.special(replaceDATE(l, "TAI64N"))
				default:
					w, err = b.special(replaceDATE(l, "Epoch"))
				}
				if err != nil {
					return nil, fmt.Errorf("%s: %w", l, err)
				}
				add(w)
			}
		case key == "{NONE}":
			t, err := b.compile("{UNB}^", boundWord, true)
			if err != nil {
				return nil, err
			}
			add(t)
		default:
			t, err := b.special(l)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", l, err)
			}
			add(t)
		}
	}
	return out, nil
}

// replaceDATE puts r in place of each {DATE} (any case, not escaped) of p.
func replaceDATE(p, r string) string {
	var sb strings.Builder
	for {
		i := strings.Index(strings.ToUpper(p), "{DATE}")
		if i < 0 {
			sb.WriteString(p)
			return sb.String()
		}
		if escaped(p, i) {
			sb.WriteString(p[:i+6])
		} else {
			sb.WriteString(p[:i] + r)
		}
		p = p[i+6:]
	}
}

// unbound strips the boundary markers of a pattern.
func unbound(p string) string {
	p = strings.TrimPrefix(p, "{UNB}")
	p = strings.TrimPrefix(p, "{^LN-BEG}")
	return p
}

// special compiles one pattern line that is not a list: epoch and TAI64N
// forms, or a strftime pattern.
func (b *templateBuilder) special(p string) (*dateTemplate, error) {
	key := p
	if !strings.Contains(p, "%") {
		key = strings.ToUpper(p)
	}
	if strings.Contains(key, "EPOCH") {
		upper := strings.ToUpper(p)
		if i := strings.Index(upper, "{EPOCH}"); i >= 0 && !escaped(p, i) {
			return b.epochPattern(p, i, len("{EPOCH}"), reEpoch, tmplEpoch)
		}
		if i := strings.Index(upper, "{LEPOCH}"); i >= 0 && !escaped(p, i) {
			return b.epochPattern(p, i, len("{LEPOCH}"), reLongEpoch, tmplLongEpoch)
		}
		switch key {
		case "EPOCH":
			return epochTemplate(reEpoch, tmplEpoch, false)
		case "{^LN-BEG}EPOCH", "^EPOCH":
			return epochTemplate(reEpoch, tmplEpoch, true)
		case "LEPOCH":
			return epochTemplate(reLongEpoch, tmplLongEpoch, false)
		case "{^LN-BEG}LEPOCH", "^LEPOCH":
			return epochTemplate(reLongEpoch, tmplLongEpoch, true)
		}
	}
	switch key {
	case "TAI64N":
		return finish(`(?P<_date>`+reTAI64N+`)`+reWordEnd, tmplTAI64N, false, false, p)
	case "{^LN-BEG}TAI64N", "^TAI64N":
		return finish(reLineBegin+`(?P<_date>`+reTAI64N+`)`+reWordEnd, tmplTAI64N, true, true, p)
	}
	return b.compile(p, boundWord, true)
}

// epochTemplate is fail2ban's epoch template: seconds at the line start,
// in brackets at the line start, or in an audit record "audit(…:n)".
// Anchored, the seconds follow at most two non-word characters, and a
// bracket before them must close after them if it can.
func epochTemplate(num string, kind tmplKind, anchored bool) (*dateTemplate, error) {
	e := `(?P<_at>)(?P<_date>` + num + `)`
	if anchored {
		return finish(`^(?:\[`+e+`\]|(?:\W{0,2})?`+e+reWordEnd+`)`, kind, true, true, "{^LN-BEG}EPOCH")
	}
	return finish(`(?:^`+e+reWordEnd+`|^\[`+e+reWordEnd+`|\baudit\(`+e+reWordEnd+`)`, kind, false, false, "EPOCH")
}

// epochPattern is a pattern with {EPOCH} or {LEPOCH} at i (n bytes long):
// the whole pattern is the timestamp, the placeholder its seconds.
func (b *templateBuilder) epochPattern(p string, i, n int, num string, kind tmplKind) (*dateTemplate, error) {
	pre, post := p[:i], p[i+n:]
	if err := checkSyntax(pre + post); err != nil {
		return nil, err
	}
	re := `(?P<_date>` + pre + `(?P<_epoch>` + num + `)` + post + `)`
	begin := !noWordBoundBegin(re)
	end := !noWordBoundEnd(re)
	lineBegin := lineBoundBegin(re)
	if begin {
		re = reWordBegin + re
	}
	lineEnd := false
	if end {
		re += reWordEnd
	} else {
		lineEnd = lineBoundEnd(re)
	}
	t, err := finish(re, kind, lineBegin || lineEnd, lineBegin, p)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// finish compiles re and finds its groups.
func finish(re string, kind tmplKind, anchored, lineBegin bool, name string) (*dateTemplate, error) {
	c, err := regexp.Compile(re)
	if err != nil {
		return nil, err
	}
	t := &dateTemplate{re: c, kind: kind, anchored: anchored, lineBegin: lineBegin, name: name, need: needOf(re)}
	for i, n := range c.SubexpNames() {
		switch n {
		case "_date":
			t.span = append(t.span, i)
		case "_at":
			t.at = append(t.at, i)
		case "_epoch":
			t.epoch = append(t.epoch, i)
		}
		for f, fn := range fieldNames {
			if n == fn {
				t.field[f] = append(t.field[f], i)
			}
		}
	}
	if len(t.span) == 0 {
		t.span = []int{1}
	}
	if kind != tmplStrptime && len(t.epoch) == 0 {
		t.epoch = t.span
	}
	return t, nil
}

// compile turns a strftime pattern line into a template, as fail2ban's
// DatePatternRegex does: directives replaced, word boundaries added unless
// the pattern is anchored, the whole pattern grouped if it has no group.
func (b *templateBuilder) compile(p string, begin bound, end bool) (*dateTemplate, error) {
	name := p
	if rest, ok := strings.CutPrefix(p, "{UNB}"); ok {
		p, begin, end = rest, boundNone, false
	}
	if rest, ok := strings.CutPrefix(p, "{^LN-BEG}"); ok && begin != boundNone {
		p, begin = rest, boundLine
	}
	re, err := b.directives(p)
	if err != nil {
		return nil, err
	}
	if hasAlphaDirective(p) {
		re = "(?iu)" + re
	}
	re = strings.TrimSpace(re)
	flags := ""
	if loc := globalFlags.FindStringIndex(re); loc != nil {
		flags = re[loc[0]:loc[1]]
		re = re[:loc[0]] + re[loc[1]:]
	}
	boundBegin := begin != boundNone && !noWordBoundBegin(re)
	boundEnd := end && !noWordBoundEnd(re)
	if !hasCapture(re) {
		m := groupSplit.FindStringSubmatch(re)
		re = m[1] + "(" + m[2] + ")" + m[3]
	}
	lineBegin := boundBegin && begin == boundLine
	if !boundBegin {
		lineBegin = lineBoundBegin(re)
	}
	lineEnd := !boundEnd && lineBoundEnd(re)
	re = nameFirstGroup(delWordBounds(re))
	if re, err = expandBackrefs(re); err != nil {
		return nil, err
	}
	if err := checkSyntax(re); err != nil {
		return nil, err
	}
	re = strings.ReplaceAll(re, `\Z`, `\z`)
	goFlags, err := reFlags(flags)
	if err != nil {
		return nil, err
	}
	switch {
	case boundBegin && begin == boundLine:
		re = reLineBegin + re
	case boundBegin:
		re = reWordBegin + re
	}
	if boundEnd {
		re += reWordEnd
	}
	return finish(goFlags+re, tmplStrptime, lineBegin || lineEnd, lineBegin, name)
}

var (
	directiveRE = regexp.MustCompile(`%(Ex[a-zA-Z]|.)`)
	globalFlags = regexp.MustCompile(`\(\?[a-z]+\)`)
	groupSplit  = regexp.MustCompile(`^((?:\(\?\w+\))?\^?(?:\(\?\w+\))?)((?s:.*?))(\$?)$`)
)

// directives replaces the strftime directives of p.
func (b *templateBuilder) directives(p string) (string, error) {
	var err error
	out := directiveRE.ReplaceAllStringFunc(p, func(d string) string {
		k := d[1:]
		if k == "ExY" {
			return b.exY
		}
		if r, ok := directives[k]; ok {
			return r
		}
		if err == nil {
			err = errors.New("strftime directive " + d + " is not supported")
		}
		return d
	})
	if strings.HasSuffix(strings.ReplaceAll(p, "%%", ""), "%") && err == nil {
		err = errors.New("a lone % ends the pattern (write %% for a percent sign)")
	}
	return out, err
}

// hasAlphaDirective reports whether p names months, weekdays or AM/PM
// (%a %A %b %B %p %c): fail2ban then ignores case.
func hasAlphaDirective(p string) bool {
	for i := 0; i+1 < len(p); i++ {
		if p[i] == '%' {
			if strings.IndexByte("aAbBpc", p[i+1]) >= 0 && (i == 0 || p[i-1] != '%') {
				return true
			}
		}
	}
	return false
}

// reFlags turns Python's global flags into RE2's: i and s carry over, u
// (Unicode, Python's default) is dropped, others are refused.
func reFlags(flags string) (string, error) {
	var keep []byte
	for _, c := range []byte(flags) {
		switch c {
		case '(', ')', '?', 'u':
		case 'i', 's':
			if !strings.ContainsRune(string(keep), rune(c)) {
				keep = append(keep, c)
			}
		default:
			return "", fmt.Errorf("flag %q of %s: not supported", c, flags)
		}
	}
	if len(keep) == 0 {
		return "", nil
	}
	return "(?" + string(keep) + ")", nil
}

// noWordBoundBegin reports whether re is anchored so that fail2ban adds
// no boundary before it: after opening parentheses and a flag group, ^,
// (^, (?:^ or the marker ** (after more parentheses).
func noWordBoundBegin(re string) bool { return anchoredStart.MatchString(re) }

var anchoredStart = regexp.MustCompile(`^\(*(?:\(\?\w+\))?(?:\(*\*\*|\(\?:\^|\(?\^)`)

var leadFlag = regexp.MustCompile(`^\(\?\w+\)`)

// noWordBoundEnd reports whether re ends so that fail2ban adds no boundary
// after it: $, $), \b, \s or the marker ** (then closing parentheses).
func noWordBoundEnd(re string) bool {
	s := strings.TrimRight(re, ")")
	if strings.HasSuffix(s, "**") && !escaped(s, len(s)-2) {
		return true
	}
	for _, suf := range []string{"$)", "$", `\b`, `\s`} {
		if strings.HasSuffix(re, suf) && !escaped(re, len(re)-len(suf)) {
			return true
		}
	}
	return false
}

// lineBoundBegin reports whether re starts at the line start: ^, (^ or
// (?:^, after a flag group.
func lineBoundBegin(re string) bool {
	if loc := leadFlag.FindStringIndex(re); loc != nil {
		re = re[loc[1]:]
	}
	if strings.HasPrefix(re, "^") {
		return true
	}
	for _, p := range []string{"(^", "(?:^"} {
		if strings.HasPrefix(re, p) && !strings.HasPrefix(re[len(p):], "|") {
			return true
		}
	}
	return false
}

// lineBoundEnd reports whether re ends at the line end: $ or $), not
// escaped nor an empty alternative.
func lineBoundEnd(re string) bool {
	for _, suf := range []string{"$)", "$"} {
		if strings.HasSuffix(re, suf) {
			i := len(re) - len(suf)
			return i == 0 || re[i-1] != '\\' && re[i-1] != '|'
		}
	}
	return false
}

// delWordBounds removes the ** markers at the start (after opening
// parentheses and a flag group) and at the end (before closing ones).
func delWordBounds(re string) string {
	i := 0
	for i < len(re) && re[i] == '(' {
		i++
	}
	if loc := leadFlag.FindStringIndex(re[i:]); loc != nil {
		i += loc[1]
	}
	for i < len(re) && re[i] == '(' {
		i++
	}
	if strings.HasPrefix(re[i:], "**") {
		re = re[:i] + re[i+2:]
	}
	s := strings.TrimRight(re, ")")
	if strings.HasSuffix(s, "**") && !escaped(s, len(s)-2) {
		re = s[:len(s)-2] + re[len(s):]
	}
	return re
}

// hasCapture reports whether re has a capturing group: an unescaped ( not
// followed by ? (fail2ban's test; named groups do not count).
func hasCapture(re string) bool {
	for i := 0; i < len(re); i++ {
		if re[i] != '(' || escaped(re, i) {
			continue
		}
		if i+1 < len(re) && re[i+1] == '?' {
			continue
		}
		if i >= 2 && re[i-2:i] == "(?" {
			continue
		}
		return true
	}
	return false
}

// nameFirstGroup names the first capturing group of re _date, the
// timestamp fail2ban removes (its group 1). A named first group keeps its
// name; the template then reads group 1.
func nameFirstGroup(re string) string {
	for i := 0; i < len(re); i++ {
		c := re[i]
		switch {
		case c == '\\':
			i++
		case c == '[':
			i = classEnd(re, i)
		case c == '(':
			if strings.HasPrefix(re[i:], "(?P<") {
				return re
			}
			if !strings.HasPrefix(re[i:], "(?") {
				return re[:i] + "(?P<_date>" + re[i+1:]
			}
		}
	}
	return re
}

// expandBackrefs rewrites each (?P=name) whose group (?P<name>…) holds one
// character of a class or a single literal character: the group and what
// follows up to the reference become alternatives, one per character,
// which is the same language, matched in the same order.
func expandBackrefs(re string) (string, error) {
	for {
		j := strings.Index(re, "(?P=")
		if j < 0 {
			return re, nil
		}
		end := strings.IndexByte(re[j:], ')')
		if end < 0 {
			return "", &TranslateError{j, "unterminated back-reference"}
		}
		name := re[j+4 : j+end]
		refEnd := j + end + 1
		open := strings.Index(re, "(?P<"+name+">")
		if open < 0 || open > j {
			return "", &TranslateError{j, "back-reference to an unknown group " + name}
		}
		bodyStart := open + len("(?P<"+name+">")
		close := closeParen(re, open)
		if close < 0 || close > j {
			return "", &TranslateError{j, "back-reference inside its group"}
		}
		chars, ok := singleChars(re[bodyStart:close])
		mid := re[close+1 : j]
		if !ok || !balanced(mid) {
			return "", &TranslateError{j, "named back-reference (?P=" + name + "): RE2 cannot match back-references"}
		}
		var alts []string
		for _, c := range chars {
			q := quoteRune(c)
			alts = append(alts, "(?P<"+name+">"+q+")(?:"+mid+")"+q)
		}
		re = re[:open] + "(?:" + strings.Join(alts, "|") + ")" + re[refEnd:]
	}
}

// closeParen returns the index of the ) closing the ( at re[i], or -1.
func closeParen(re string, i int) int {
	depth := 0
	for ; i < len(re); i++ {
		c := re[i]
		switch {
		case c == '\\':
			i++
		case c == '[':
			i = classEnd(re, i)
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// balanced reports whether re opens and closes its groups itself.
func balanced(re string) bool {
	depth := 0
	for i := 0; i < len(re); i++ {
		c := re[i]
		switch {
		case c == '\\':
			i++
		case c == '[':
			if i+1 < len(re) && re[i+1] == '^' {
				return false
			}
			if i = classEnd(re, i); i == len(re) {
				return false // unterminated
			}
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth < 0 {
				return false
			}
		}
	}
	return depth == 0
}

// singleChars returns the characters a group body of one literal character
// or one positive class of literal characters matches, in order.
func singleChars(body string) ([]rune, bool) {
	if len(body) == 1 && !strings.ContainsAny(body, `.^$*+?{}[]()|\`) {
		return []rune(body), true
	}
	if len(body) == 2 && body[0] == '\\' && !isWord(body[1]) {
		return []rune(body[1:]), true
	}
	if len(body) < 3 || body[0] != '[' || body[len(body)-1] != ']' || body[1] == '^' {
		return nil, false
	}
	in := body[1 : len(body)-1]
	var out []rune
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch {
		case c == '\\' && i+1 < len(in) && !isWord(in[i+1]):
			out = append(out, rune(in[i+1]))
			i++
		case c == '-' && i > 0 && i < len(in)-1, c == '\\', c == '[', c >= 0x80:
			return nil, false
		default:
			out = append(out, rune(c))
		}
	}
	return out, len(out) > 0
}
