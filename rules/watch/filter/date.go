package filter

import (
	"strconv"
	"strings"
	"time"
)

// dateDetector finds a line's timestamp as fail2ban's date detector does:
// a list of templates, each a regular expression whose first group is the
// timestamp, tried in order. A template anchored at the line start (or
// end) decides as soon as it matches; among the others, the first match
// at the line's first two characters decides, else the one that starts
// earliest. (fail2ban also reorders its list by the hits of earlier lines;
// judging each line on its own, this detector does not, which changes
// nothing where a log writes its timestamps in one format.)
//
// The timestamp is read as fail2ban's strptime reads it: without a year,
// the current year, or the previous one when that would put the line more
// than a day in the future; without a date, today, or yesterday when that
// would put it in the future; without a zone, Location. An out-of-range
// field (February 30, hour 24, second 60) leaves the line without a time.
type dateDetector struct {
	tmpls []*dateTemplate
	needs []dateNeed // the distinct needs of tmpls, at most 64
	need  []int      // per template, its need in needs; -1: none
	fast  bool       // syslogDate may read the line first: it decides as tmpls would
	loc   *time.Location
	now   func() time.Time
}

func newDateDetector(pattern string, loc *time.Location, now func() time.Time) (*dateDetector, error) {
	if loc == nil {
		loc = time.Local
	}
	if now == nil {
		now = time.Now
	}
	d := &dateDetector{loc: loc, now: now}
	b := newTemplateBuilder(now())
	tmpls, err := b.list(pattern)
	if err != nil {
		return nil, err
	}
	d.tmpls = tmpls
	d.fast = b.syslogFirst(tmpls)
	d.need = make([]int, len(tmpls))
	idx := map[dateNeed]int{}
	for i, tm := range tmpls {
		d.need[i] = -1
		if tm.need == nil {
			continue
		}
		k, ok := idx[*tm.need]
		if !ok && len(d.needs) < 64 {
			k, ok = len(d.needs), true
			idx[*tm.need] = k
			d.needs = append(d.needs, *tm.need)
		}
		if ok {
			d.need[i] = k
		}
	}
	return d, nil
}

// find returns the span [s, e) of the timestamp in line; found is false if
// no template matched. ok is false if the timestamp found is not a valid
// time; s == e when a template matched an empty timestamp (a date pattern
// that marks lines without one).
func (d *dateDetector) find(line string) (s, e int, t time.Time, found, ok bool) {
	if d.fast {
		if e, t, ok := d.syslogDate(line); ok {
			return 0, e, t, true, true
		}
	}
	tm, m := d.match(line)
	if tm == nil {
		return 0, 0, time.Time{}, false, false
	}
	s, e = tm.spanOf(m)
	if s == e {
		return s, e, time.Time{}, true, false
	}
	t, ok = tm.time(line, m, d)
	return s, e, t, true, ok
}

// match returns the template that decides for line and its match.
func (d *dateDetector) match(line string) (*dateTemplate, []int) {
	var best *dateTemplate
	var bestM []int
	bestAt := 0
	var tried, held uint64 // needs looked for in line, and found
	for i, tm := range d.tmpls {
		if k := d.need[i]; k >= 0 {
			bit := uint64(1) << k
			if tried&bit == 0 {
				tried |= bit
				if d.needs[k].in(line) {
					held |= bit
				}
			}
			if held&bit == 0 {
				continue // cannot match
			}
		}
		m := tm.re.FindStringSubmatchIndex(line)
		if m == nil {
			continue
		}
		if tm.anchored || i == len(d.tmpls)-1 {
			return tm, m
		}
		at := tm.startOf(m)
		if at <= 1 {
			return tm, m
		}
		if best == nil || at < bestAt {
			best, bestM, bestAt = tm, m, at
		}
	}
	return best, bestM
}

// spanOf returns the timestamp's span in the match m.
func (tm *dateTemplate) spanOf(m []int) (int, int) {
	for _, g := range tm.span {
		if m[2*g] >= 0 {
			return m[2*g], m[2*g+1]
		}
	}
	return m[0], m[0]
}

// startOf returns where fail2ban's match of the template starts: the
// expressions here consume the character before a word-bounded timestamp
// that fail2ban only looks at.
func (tm *dateTemplate) startOf(m []int) int {
	for _, g := range tm.at {
		if m[2*g] >= 0 {
			return m[2*g]
		}
	}
	return m[0]
}

// time reads the timestamp of the match m.
func (tm *dateTemplate) time(line string, m []int, d *dateDetector) (time.Time, bool) {
	switch tm.kind {
	case tmplTAI64N:
		s, e := tm.spanOf(m)
		return parseTAI64N(line[s:e])
	case tmplEpoch, tmplLongEpoch:
		v, ok := groupText(line, m, tm.epoch)
		if !ok {
			return time.Time{}, false
		}
		return parseEpoch(v, tm.kind == tmplLongEpoch)
	}
	var f [nFields]string
	var has [nFields]bool
	for i, idx := range tm.field {
		f[i], has[i] = groupText(line, m, idx)
	}
	return d.strptime(&f, &has)
}

func groupText(s string, m []int, idx []int) (string, bool) {
	for _, g := range idx {
		if m[2*g] >= 0 {
			return s[m[2*g]:m[2*g+1]], true
		}
	}
	return "", false
}

// The strptime fields a date template can capture, by group name.
const (
	fY = iota // year, 4 digits
	fy        // year, 2 digits
	fm        // month number
	fb        // month name, abbreviated
	fB        // month name
	fd        // day
	fH        // hour 0-23
	fI        // hour 1-12
	fp        // AM or PM
	fM        // minute
	fS        // second
	ff        // fraction of a second
	fz        // zone offset
	fZ        // zone name
	nFields
)

var fieldNames = [nFields]string{"Y", "y", "m", "b", "B", "d", "H", "I", "p", "M", "S", "f", "z", "Z"}

var (
	monthNames = []string{"january", "february", "march", "april", "may", "june", "july",
		"august", "september", "october", "november", "december"}
)

// civil is a timestamp as its fields say it.
type civil struct {
	year, month, day, hour, min, sec, nsec int
	hasYear, hasMonth, hasDay              bool
	zone                                   *time.Location // nil: Location
}

// strptime reads the captured fields, as fail2ban's strptime does.
func (d *dateDetector) strptime(f *[nFields]string, has *[nFields]bool) (time.Time, bool) {
	num := func(i int) int {
		n, _ := strconv.Atoi(strings.TrimSpace(f[i]))
		return n
	}
	var c civil
	if has[fy] {
		c.year, c.hasYear = num(fy)+2000, true
	}
	if has[fY] {
		c.year, c.hasYear = num(fY), true
	}
	switch {
	case has[fm]:
		c.month, c.hasMonth = num(fm), true
	case has[fB]:
		c.month, c.hasMonth = monthOf(f[fB], false), true
	case has[fb]:
		c.month, c.hasMonth = monthOf(f[fb], true), true
	}
	if has[fd] {
		c.day, c.hasDay = num(fd), true
	}
	switch {
	case has[fH]:
		c.hour = num(fH)
	case has[fI]:
		c.hour = num(fI)
		pm := strings.EqualFold(f[fp], "pm")
		if !pm && c.hour == 12 {
			c.hour = 0
		} else if pm && c.hour != 12 {
			c.hour += 12
		}
	}
	if has[fM] {
		c.min = num(fM)
	}
	if has[fS] {
		c.sec = num(fS)
	}
	if has[ff] {
		c.nsec, _ = strconv.Atoi((f[ff] + "000000000")[:9])
	}
	for _, z := range []int{fz, fZ} {
		if !has[z] {
			continue
		}
		off, ok := zoneOffset(f[z])
		if !ok {
			return time.Time{}, false
		}
		c.zone = time.FixedZone("", off)
	}
	return d.resolve(c)
}

// resolve completes c as fail2ban does (see dateDetector) and checks its
// fields as Python's datetime does.
func (d *dateDetector) resolve(c civil) (time.Time, bool) {
	loc := d.loc
	if c.zone != nil {
		loc = c.zone
	}
	now := d.now()
	if !c.hasYear {
		c.year = now.In(loc).Year()
	}
	today := !c.hasMonth && !c.hasDay
	if today {
		n := now.In(loc)
		c.month, c.day = int(n.Month()), n.Day()
	}
	if c.hasMonth != c.hasDay && !today {
		return time.Time{}, false // Python's datetime needs both
	}
	if !validDate(c.year, c.month, c.day) || c.hour > 23 || c.min > 59 || c.sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(c.year, time.Month(c.month), c.day, c.hour, c.min, c.sec, c.nsec, loc)
	if today && t.After(now) {
		t = t.AddDate(0, 0, -1)
	}
	if !c.hasYear && t.After(now.Add(24*time.Hour)) {
		if !validDate(c.year-1, c.month, c.day) {
			return time.Time{}, false
		}
		t = time.Date(c.year-1, time.Month(c.month), c.day, c.hour, c.min, c.sec, c.nsec, loc)
	}
	if c.zone != nil {
		t = t.UTC()
	}
	return t, true
}

func validDate(y, m, d int) bool {
	if y < 1 || m < 1 || m > 12 || d < 1 {
		return false
	}
	return d <= time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// monthOf returns the number of a month name (matched without regard to
// case), abbreviated to three letters or not.
func monthOf(s string, abbr bool) int {
	s = strings.ToLower(s)
	for i, n := range monthNames {
		if abbr && len(s) == 3 && n[:3] == s || !abbr && n == s {
			return i + 1
		}
	}
	return 0
}

// zoneOffsets are the zone abbreviations a timestamp may carry, with their
// offsets in minutes east of UTC. Like fail2ban, an abbreviation stands for
// a fixed offset (CET is never summer time).
var zoneOffsets = map[string]int{
	"Z": 0, "UT": 0, "UTC": 0, "GMT": 0, "WET": 0,
	"WEST": 60, "BST": 60, "IST": 60, "CET": 60, "MET": 60,
	"CEST": 120, "MEST": 120, "EET": 120, "SAST": 120,
	"EEST": 180, "MSK": 180,
	"AST": -240, "ADT": -180, "EST": -300, "EDT": -240, "CST": -360, "CDT": -300,
	"MST": -420, "MDT": -360, "PST": -480, "PDT": -420, "AKST": -540, "AKDT": -480,
	"HST": -600, "JST": 540, "KST": 540, "AEST": 600, "AEDT": 660, "ACST": 570,
	"AWST": 480, "NZST": 720, "NZDT": 780,
}

// zoneOffset reads a zone: Z, UTC or GMT, an offset [+-]hh[[:]mm], an
// abbreviation, or an abbreviation followed by an offset. It returns the
// offset in seconds east of UTC.
func zoneOffset(z string) (int, bool) {
	if z == "Z" || z == "UTC" || z == "GMT" {
		return 0, true
	}
	i := strings.IndexAny(z, "+-")
	abbr, off := z, ""
	if i >= 0 {
		abbr, off = z[:i], z[i:]
	}
	base, ok := zoneOffsets[abbr]
	if abbr == "" {
		base, ok = 0, true
	}
	if !ok {
		return 0, false
	}
	if off == "" {
		return base * 60, true
	}
	digits := strings.ReplaceAll(off[1:], ":", "")
	if len(digits) != 2 && len(digits) != 4 {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil {
		return 0, false
	}
	mins := n * 60
	if len(digits) == 4 {
		mins = n/100*60 + n%100
	}
	if off[0] == '-' {
		mins = -mins
	}
	return (base + mins) * 60, true
}

// parseTAI64N reads "@" and 24 hex digits as fail2ban does: the 15 hex
// digits after "@4" are the seconds since 1970 (the label's 2^62 and the
// nanoseconds dropped, the TAI-UTC offset not applied).
func parseTAI64N(s string) (time.Time, bool) {
	if len(s) != 25 {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(s[2:17], 16, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(sec, 0), true
}

// parseEpoch reads seconds since 1970, with a fraction; long, a value of
// 13 digits or more is milliseconds, of 16 or more without a point
// microseconds.
func parseEpoch(s string, long bool) (time.Time, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}, false
	}
	if long && len(s) >= 13 {
		if len(s) >= 16 && !strings.Contains(s, ".") {
			f /= 1e6
		} else {
			f /= 1e3
		}
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}
