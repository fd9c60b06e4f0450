package filter

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"regexp/syntax"
	"strings"
	"time"
)

// Config is a filter in fail2ban's own syntax, as a filter.d file states it
// after `%(…)s` interpolation.
type Config struct {
	// FailRegex are the failregex lines, tried in order; the first that
	// matches decides. At least one is required.
	FailRegex []string
	// IgnoreRegex are the ignoreregex lines: a line a failregex matched is
	// Ignored when one of them also matches it.
	IgnoreRegex []string
	// PrefRegex, when set, must match a line before any failregex is tried;
	// its <F-CONTENT> group is then the text the failregexes see, and its
	// <F-MLFID> group ties lines of one connection together.
	PrefRegex string
	// DatePattern is fail2ban's datepattern, one template a line, tried in
	// order: empty for all of fail2ban's default templates, "{^LN-BEG}" for
	// those at the line start, a strftime pattern such as
	// "^%Y-%m-%d %H:%M:%S" or "{^LN-BEG}%b %d %H:%M:%S", a regex with
	// {DATE} (each default template in its place), "EPOCH", "TAI64N"
	// (optionally after "{^LN-BEG}") or "{NONE}".
	DatePattern string
	// MaxLines is fail2ban's maxlines. Zero and 1 mean one line; more is
	// refused, as multi-line buffers are not supported.
	MaxLines int
	// Location is the zone of timestamps that carry none. Nil means
	// time.Local, as fail2ban reads them in the host's zone.
	Location *time.Location
	// Now returns the current time, for timestamps without a year. Nil means
	// time.Now.
	Now func() time.Time
}

// Kind is the verdict on one line.
type Kind uint8

const (
	// NoMatch: no failregex matched, or the match carried no failure (a
	// fail2ban <F-NOFAIL> helper line, or a line whose address is still
	// unknown).
	NoMatch Kind = iota
	// Fail: a failregex matched and blames a host.
	Fail
	// Ignored: a failregex matched but an ignoreregex matched too.
	Ignored
)

func (k Kind) String() string {
	switch k {
	case Fail:
		return "fail"
	case Ignored:
		return "ignored"
	}
	return "nomatch"
}

// Result is the verdict on one line. For Fail, exactly one of Host and
// HostName is set: Host is a valid address as written (zone-less, an
// IPv4-mapped address folded to IPv4), HostName the text the line named
// instead (a DNS name, an address with a zone or a malformed one), never
// resolved. An address is only one when the line does not go on with more
// of a name or an address: "10.66.0.1.evil.example" is a HostName, never
// 10.66.0.1, and "::10.0.0.5" is ::a00:5, not ::10. User is the
// <F-USER> group, if any. Time is the line's own timestamp (zero when it had
// none). Regex is the index of the failregex that matched (Fail) or of the
// ignoreregex that matched (Ignored); -1 otherwise.
type Result struct {
	Kind     Kind
	Host     netip.Addr
	HostName string
	User     string
	Time     time.Time
	Regex    int
}

// Filter is a compiled filter. It is immutable and safe for concurrent use;
// Match judges lines one by one. Lines that need earlier lines of the same
// connection (fail2ban's <F-MLFID>) are judged with a Stream.
type Filter struct {
	pref   *rx
	head   *headRx // pref without its content tail; nil: run pref
	fail   []*rx
	ignore []*rx
	lits   *litSet // every match of some failregex has one of them; nil: no pre-check
	date   *dateDetector
}

// groups of a compiled expression: capture indices for each name fail2ban
// gives meaning to. A name may occur more than once (two <HOST> tags).
type rx struct {
	re                            *regexp.Regexp
	lits                          []string // one is in every match; nil: unknown
	lead                          []string // every match starts the text with one; nil: unknown
	seq                           []string // every match has them in this order
	ip4, ip6, dns, fid, user, alt []int
	mlfid, content                []int
	nofail, forget, gained        []int
}

// ErrNoFailRegex is returned by Compile for a filter without failregex.
var ErrNoFailRegex = errors.New("filter has no failregex")

// RegexError locates a regular expression that does not compile.
type RegexError struct {
	Field string // "failregex", "ignoreregex" or "prefregex"
	Index int    // position in its list; 0 for prefregex
	Err   error
}

func (e *RegexError) Error() string {
	return fmt.Sprintf("%s[%d]: %v", e.Field, e.Index, e.Err)
}

func (e *RegexError) Unwrap() error { return e.Err }

// Compile translates and compiles cfg. Errors name the regex (field and
// index) and what RE2 cannot do.
func Compile(cfg Config) (*Filter, error) {
	if len(cfg.FailRegex) == 0 {
		return nil, ErrNoFailRegex
	}
	if cfg.MaxLines > 1 {
		return nil, fmt.Errorf("maxlines %d: only single-line filters are supported", cfg.MaxLines)
	}
	f := &Filter{}
	var err error
	if strings.TrimSpace(cfg.PrefRegex) != "" {
		if f.pref, err = compileRx(cfg.PrefRegex); err != nil {
			return nil, &RegexError{"prefregex", 0, err}
		}
	}
	for i, s := range cfg.FailRegex {
		r, err := compileRx(s)
		if err != nil {
			return nil, &RegexError{"failregex", i, err}
		}
		hasID := len(r.ip4)+len(r.ip6)+len(r.dns)+len(r.fid) > 0
		if !hasID && (f.pref == nil || len(f.pref.ip4)+len(f.pref.ip6)+len(f.pref.dns)+len(f.pref.fid) == 0) && len(r.mlfid) == 0 && (f.pref == nil || len(f.pref.mlfid) == 0) {
			return nil, &RegexError{"failregex", i, errors.New("no <HOST>, <ADDR>, <IP4>, <IP6>, <DNS> or <F-ID> tag")}
		}
		f.fail = append(f.fail, r)
	}
	for i, s := range cfg.IgnoreRegex {
		if strings.TrimSpace(s) == "" {
			continue
		}
		r, err := compileRx(s)
		if err != nil {
			return nil, &RegexError{"ignoreregex", i, err}
		}
		f.ignore = append(f.ignore, r)
	}
	all := true
	var lits []string
	for _, r := range f.fail {
		r.lits = requiredLiterals(r.re.String())
		all = all && r.lits != nil
		lits = append(lits, r.lits...)
		r.lead = leadingLiterals(r.re.String())
		r.seq = requiredSeq(r.re.String())
	}
	if f.pref != nil {
		f.head = splitContentTail(f.pref.re.String(), f.pref.re.SubexpNames())
	}
	if all {
		f.lits = newLitSet(lits)
	}
	if f.date, err = newDateDetector(cfg.DatePattern, cfg.Location, cfg.Now); err != nil {
		return nil, fmt.Errorf("datepattern %q: %w", cfg.DatePattern, err)
	}
	return f, nil
}

func compileRx(s string) (*rx, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("empty regex")
	}
	t, err := translate(s)
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile(t)
	if err != nil {
		return nil, err
	}
	r := &rx{re: re}
	for i, n := range re.SubexpNames() {
		var p *[]int
		switch n {
		case "ip4":
			p = &r.ip4
		case "ip6":
			p = &r.ip6
		case "dns":
			p = &r.dns
		case "fid":
			p = &r.fid
		case "user":
			p = &r.user
		case "alt_user":
			p = &r.alt
		case "mlfid":
			p = &r.mlfid
		case "content":
			p = &r.content
		case "nofail":
			p = &r.nofail
		case "mlfforget":
			p = &r.forget
		case "mlfgained":
			p = &r.gained
		default:
			continue
		}
		*p = append(*p, i)
	}
	return r, nil
}

// group returns the first participating group of idx in the match m of s.
func group(s string, m []int, idx []int) (string, bool) {
	for _, g := range idx {
		if m[2*g] >= 0 {
			return s[m[2*g]:m[2*g+1]], true
		}
	}
	return "", false
}

// minLiteral is the shortest literal worth a strings.Contains pre-check:
// shorter ones (" ", ": ") are in nearly every line.
const minLiteral = 4

// requiredLiterals returns literals of which every match of the RE2
// expression re contains at least one (case-sensitive), or nil if there is
// no such set of useful ones. It lets Match refuse most lines with
// strings.Contains before running any regex.
func requiredLiterals(re string) []string {
	p, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return nil
	}
	return anyLit(p.Simplify())
}

// quality of an any-of literal set: its shortest member.
func quality(set []string) int {
	if len(set) == 0 {
		return 0
	}
	q := len(set[0])
	for _, s := range set[1:] {
		q = min(q, len(s))
	}
	return q
}

func anyLit(re *syntax.Regexp) []string {
	better := func(a, b []string) []string {
		if quality(b) > quality(a) {
			return b
		}
		return a
	}
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 || len(string(re.Rune)) < minLiteral {
			return nil
		}
		return []string{string(re.Rune)}
	case syntax.OpCapture, syntax.OpPlus:
		return anyLit(re.Sub[0])
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return anyLit(re.Sub[0])
		}
	case syntax.OpAlternate:
		var out []string
		for _, s := range re.Sub {
			l := anyLit(s)
			if l == nil {
				return nil
			}
			out = append(out, l...)
		}
		return out
	case syntax.OpConcat:
		var best []string
		run := ""
		for _, s := range re.Sub {
			if s.Op == syntax.OpLiteral && s.Flags&syntax.FoldCase == 0 {
				run += string(s.Rune)
				if len(run) >= minLiteral {
					best = better(best, []string{run})
				}
				continue
			}
			run = ""
			best = better(best, anyLit(s))
		}
		return best
	}
	return nil
}

// failData is what fail2ban keeps of a match: the groups it reads, merged
// across the lines of one connection when the filter has <F-MLFID>.
type failData struct {
	ip4, ip6, dns, fid string
	has4, has6, hasDNS bool
	hasFID             bool
	user               string
	hasUser            bool
	users              []string
	nofail, gained     bool
	pending            bool
	seen               time.Time // the time of the last line
	born               time.Time // in a Stream: the time of the first line
}

// Match judges one line on its own, taking its time from the line. A line
// that only makes sense with earlier lines of the same connection (a
// failure without an address, whose address an earlier line named) is
// NoMatch here; use a Stream to follow connections. Match does not allocate
// when no failregex can match.
func (f *Filter) Match(line string) Result {
	return f.match(line, time.Time{}, nil)
}

// MatchAt is Match for a line whose time is known from elsewhere (the
// journal's __REALTIME_TIMESTAMP): the line is not searched for a date.
func (f *Filter) MatchAt(line string, t time.Time) Result {
	return f.match(line, t, nil)
}

// candidate reports whether some failregex could match line.
func (f *Filter) candidate(line string) bool {
	return f.lits == nil || f.lits.containedIn(line)
}

func containsAny(s string, lits []string) bool {
	for _, l := range lits {
		if strings.Contains(s, l) {
			return true
		}
	}
	return false
}

func (f *Filter) match(line string, at time.Time, st *Stream) Result {
	none := Result{Regex: -1}
	cand := f.candidate(line)
	if !cand && !at.IsZero() {
		return none
	}
	// fail2ban removes the timestamp from the line before any regex sees it.
	buf := line
	t := at
	if at.IsZero() {
		s, e, tt, found, ok := f.date.find(line)
		if !cand && (!found || s == 0 || !f.candidate(line[:s]+line[e:])) {
			// only a timestamp removed from within the line can join
			// text into a literal the line lacks
			return none
		}
		switch {
		case found && ok:
			buf = line[:s] + line[e:]
			t = tt
			if st != nil {
				st.lastDate = t
			}
		case st != nil && !st.lastDate.IsZero() && st.lastDate.After(f.date.now().Add(-time.Minute)):
			// no timestamp, an empty one or one that is no valid time:
			// the last one, if it is recent, and the whole line
			t = st.lastDate
		case found && s == e:
			t = f.date.now()
		case found:
			// fail2ban still removes what is no valid time
			buf = line[:s] + line[e:]
		}
	}
	none.Time = t

	var pm []int
	content := buf
	if f.pref != nil {
		matched, ok := false, false
		if f.head != nil {
			pm, matched, ok = f.head.match(buf)
		}
		if !ok {
			pm = f.pref.re.FindStringSubmatchIndex(buf)
			matched = pm != nil
		}
		if !matched {
			return none
		}
		if c, ok := group(buf, pm, f.pref.content); ok && c != "" {
			content = c
		}
	}
	for i, r := range f.fail {
		if r.lead != nil && !hasAnyPrefix(content, r.lead) || !hasSeq(content, r.seq) || r.lits != nil && !containsAny(content, r.lits) {
			continue
		}
		m := r.re.FindStringSubmatchIndex(content)
		if m == nil {
			continue
		}
		for j, ig := range f.ignore {
			if ig.re.MatchString(content) {
				return Result{Kind: Ignored, Time: t, Regex: j}
			}
		}
		fd := &failData{seen: t}
		nofail, forget := false, false
		if pm != nil {
			fd.collect(buf, pm, f.pref)
			nofail = nonEmpty(buf, pm, f.pref.nofail)
			forget = nonEmpty(buf, pm, f.pref.forget)
			fd.gained = nonEmpty(buf, pm, f.pref.gained)
		}
		fd.collect(content, m, r)
		nofail = nofail || nonEmpty(content, m, r.nofail)
		forget = forget || nonEmpty(content, m, r.forget)
		fd.gained = fd.gained || nonEmpty(content, m, r.gained)
		fd.nofail = nofail
		mlfid, hasMLF := "", false
		if pm != nil {
			mlfid, hasMLF = group(buf, pm, f.pref.mlfid)
		}
		if !hasMLF {
			mlfid, hasMLF = group(content, m, r.mlfid)
		}
		if hasMLF {
			fd = st.merge(mlfid, fd, forget)
			if fd.nofail {
				return none
			}
		}
		res := Result{Kind: Fail, Time: t, Regex: i, User: fd.user}
		var host string
		switch {
		case fd.has4:
			host = fd.ip4
		case fd.has6:
			host = fd.ip6
		case fd.hasDNS:
			host = fd.dns
		case fd.hasFID:
			host = fd.fid
		default:
			// fail2ban keeps such a failure pending until a later line of
			// the connection names the address.
			fd.pending = true
			return none
		}
		if a, err := netip.ParseAddr(host); err == nil && a.Zone() == "" {
			res.Host = a.Unmap()
		} else {
			res.HostName = host
		}
		return res
	}
	return none
}

func nonEmpty(s string, m []int, idx []int) bool {
	v, ok := group(s, m, idx)
	return ok && v != ""
}

// collect overwrites d with the groups of match m that participated, as
// fail2ban's dict update does.
func (d *failData) collect(s string, m []int, r *rx) {
	if v, ok := hostGroup(s, m, r.ip4); ok {
		d.ip4, d.has4 = v, true
	}
	if v, ok := hostGroup(s, m, r.ip6); ok {
		d.ip6, d.has6 = v, true
	}
	if v, ok := hostGroup(s, m, r.dns); ok {
		d.dns, d.hasDNS = v, true
	}
	if v, ok := group(s, m, r.fid); ok {
		d.fid, d.hasFID = v, true
	}
	if v, ok := group(s, m, r.user); ok {
		d.user, d.hasUser = v, true
	}
	if v, ok := group(s, m, r.alt); ok && d.user == "" {
		d.user, d.hasUser = v, true
	}
}

// hostGroup returns the first participating group of idx in the match m
// of s, an address or a name, with what continues it in s.
func hostGroup(s string, m []int, idx []int) (string, bool) {
	for _, g := range idx {
		if m[2*g] >= 0 {
			return s[m[2*g]:hostEnd(s, m[2*g+1])], true
		}
	}
	return "", false
}

// hostEnd returns where the host token whose tag group ends at s[e:]
// really ends. The tags' expressions stop where an address may stop, so a
// regex that lets anything follow (".*", "\S*") takes "10.66.0.1" from
// the host name "10.66.0.1.evil.example", which whoever runs the name's
// DNS zone chooses, "1.2.3.4" from "1.2.3.4%eth0", or "::10" from
// "::10.0.0.5". So the token runs on over what continues a name (letters,
// digits, '_', and '.' or '-' before more of them) and a zone ('%' and its
// name). What else may follow an address ends it: "1.2.3.4." ending a
// sentence, "1.2.3.4:22", "[1.2.3.4]:22", "2001:db8::1:22" (haproxy's
// address and port), and '-' with digits alone, a port ("1.2.3.4-22;", as
// some sshd builds log it). A token longer than the group names a host,
// not an address, unless the whole token is one ("::10.0.0.5").
func hostEnd(s string, e int) int {
	n := e
	for n < len(s) && (isWord(s[n]) || s[n] == '.' || s[n] == '-' || s[n] == '%') {
		n++
	}
	for n > e && (s[n-1] == '.' || s[n-1] == '-') {
		n--
	}
	if ext := s[e:n]; len(ext) > 1 && ext[0] == '-' && allDigits(ext[1:]) {
		return e // a port
	}
	return n
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
