package filter

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// dateParser finds a line's timestamp. The default detection covers the
// formats fail2ban's default templates find at the start of a line: syslog
// ("Jun 21 16:47:48", optionally with weekday and year), ISO 8601 with
// optional fraction and zone (also after an RFC 5424 "<PRI>1 " header),
// "2012/04/09 11:53:29" and TAI64N ("@4000…"). Without a year, fail2ban's
// rule applies: the current year, or the one before when that would put the
// line more than a day in the future. Without a zone, Location applies.
type dateParser struct {
	re     *regexp.Regexp // group 1 is the timestamp
	layout string         // time layout for group 1; "" for the default set
	tai    bool
	epoch  bool
	deflt  bool // the default set: syslogDate may read the line first
	loc    *time.Location
	now    func() time.Time
}

const (
	reMon   = `(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)`
	reWday  = `(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)`
	reISO   = `\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:\s?(?:Z|[+-]\d{2}(?::?\d{2})?))?`
	reSys   = `(?:` + reWday + `\s+)?` + reMon + `\s+\d{1,2}\s+\d{1,2}:\d{2}:\d{2}(?:\.\d+)?(?:\s+\d{4}\b)?`
	reSlash = `\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}`
	reTAI   = `@[0-9a-f]{24}`
	// The default set, anchored at the line start after an optional
	// RFC 5424 header and an opening bracket.
	reDefault = `^(?:<\d+>\d+\s+)?\[?(` + reISO + `|` + reSys + `|` + reSlash + `|` + reTAI + `)\]?`
)

func newDateParser(pattern string, loc *time.Location, now func() time.Time) (*dateParser, error) {
	if loc == nil {
		loc = time.Local
	}
	if now == nil {
		now = time.Now
	}
	d := &dateParser{loc: loc, now: now}
	p := strings.TrimSpace(pattern)
	switch p {
	case "", "{^LN-BEG}":
		d.re, d.deflt = regexp.MustCompile(reDefault), true
		return d, nil
	case "{TAI64N}", "^{TAI64N}":
		d.re, d.tai = regexp.MustCompile(`(`+reTAI+`)`), true
		return d, nil
	case "{EPOCH}", "^{EPOCH}":
		d.re, d.epoch = regexp.MustCompile(`(\d{10}(?:\.\d+)?)`), true
		return d, nil
	}
	anchored := false
	if rest, ok := strings.CutPrefix(p, "{^LN-BEG}"); ok {
		p, anchored = rest, true
	}
	var expr string
	if strings.Contains(p, "{DATE}") {
		pre, post, _ := strings.Cut(p, "{DATE}")
		if err := checkSyntax(pre + post); err != nil {
			return nil, err
		}
		expr = pre + `(` + reISO + `|` + reSys + `|` + reSlash + `)` + post
	} else {
		re, layout, err := strftime(p)
		if err != nil {
			return nil, err
		}
		expr, d.layout = `(`+re+`)`, layout
	}
	if anchored && !strings.HasPrefix(expr, "^") {
		expr = "^" + expr
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	d.re = re
	return d, nil
}

// strftime turns a fail2ban/Python strftime pattern into a regex and a Go
// time layout. Regex text outside directives is kept as written.
func strftime(p string) (string, string, error) {
	var re, lay strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '%' || i+1 == len(p) {
			re.WriteByte(c)
			if c != '^' && c != '\\' {
				lay.WriteByte(c)
			}
			continue
		}
		i++
		var r, l string
		switch p[i] {
		case 'Y':
			r, l = `\d{4}`, "2006"
		case 'y':
			r, l = `\d{2}`, "06"
		case 'm':
			r, l = `\d{1,2}`, "1"
		case 'd':
			r, l = `\d{1,2}`, "2"
		case 'e':
			r, l = ` ?\d{1,2}`, "_2"
		case 'H':
			r, l = `\d{1,2}`, "15"
		case 'I':
			r, l = `\d{1,2}`, "3"
		case 'M':
			r, l = `\d{2}`, "04"
		case 'S':
			r, l = `\d{2}`, "05"
		case 'f':
			r, l = `\d+`, "999999999"
		case 'b', 'h':
			r, l = reMon, "Jan"
		case 'B':
			r, l = `[A-Z][a-z]+`, "January"
		case 'a':
			r, l = reWday, "Mon"
		case 'A':
			r, l = `[A-Z][a-z]+day`, "Monday"
		case 'p':
			r, l = `[AP]M`, "PM"
		case 'z':
			r, l = `[+-]\d{4}`, "-0700"
		case 'Z':
			r, l = `[A-Z]{3,4}`, "MST"
		case '%':
			r, l = `%`, "%"
		default:
			return "", "", errors.New("strftime directive %" + string(p[i]) + " is not supported")
		}
		re.WriteString(r)
		lay.WriteString(l)
	}
	return re.String(), lay.String(), nil
}

// find returns the span of the timestamp in line and its time.
func (d *dateParser) find(line string) (int, int, time.Time, bool) {
	if d.deflt {
		if e, t, ok := d.syslogDate(line); ok {
			return 0, e, t, true
		}
	}
	m := d.re.FindStringSubmatchIndex(line)
	if m == nil || m[2] < 0 {
		return 0, 0, time.Time{}, false
	}
	s := line[m[2]:m[3]]
	var t time.Time
	var ok bool
	switch {
	case d.tai:
		t, ok = parseTAI64N(s)
	case d.epoch:
		t, ok = parseEpoch(s)
	case d.layout != "":
		t, ok = d.parseLayout(s)
	default:
		t, ok = d.parseDefault(s)
	}
	if !ok {
		return 0, 0, time.Time{}, false
	}
	// fail2ban removes what the date pattern matched, brackets included.
	return m[0], m[1], t, true
}

func (d *dateParser) parseLayout(s string) (time.Time, bool) {
	t, err := time.ParseInLocation(d.layout, s, d.loc)
	if err != nil {
		return time.Time{}, false
	}
	if !strings.Contains(d.layout, "2006") && !strings.Contains(d.layout, "06") {
		t = d.assumeYear(t)
	}
	return t, true
}

func (d *dateParser) parseDefault(s string) (time.Time, bool) {
	switch {
	case s[0] == '@':
		return parseTAI64N(s)
	case len(s) >= 10 && s[4] == '-':
		return parseISO(s, d.loc)
	case len(s) >= 10 && s[4] == '/':
		t, err := time.ParseInLocation("2006/01/02 15:04:05", s, d.loc)
		return t, err == nil
	}
	f := strings.Fields(s)
	if len(f) > 0 && len(f[0]) == 3 && strings.Contains("MonTueWedThuFriSatSun", f[0]) && len(f) >= 4 {
		f = f[1:]
	}
	if len(f) < 3 {
		return time.Time{}, false
	}
	v := f[0] + " " + f[1] + " " + f[2]
	if len(f) >= 4 {
		t, err := time.ParseInLocation("Jan 2 15:04:05 2006", v+" "+f[3], d.loc)
		return t, err == nil
	}
	t, err := time.ParseInLocation("Jan 2 15:04:05", v, d.loc)
	if err != nil {
		return time.Time{}, false
	}
	return d.assumeYear(t), true
}

// assumeYear gives t (parsed as year 0) the current year, or the previous
// one if that puts t more than a day ahead of now (fail2ban's strptime.py).
func (d *dateParser) assumeYear(t time.Time) time.Time {
	now := d.now().In(d.loc)
	y := time.Date(now.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), d.loc)
	if y.After(now.Add(24 * time.Hour)) {
		y = time.Date(now.Year()-1, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), d.loc)
	}
	return y
}

func parseISO(s string, loc *time.Location) (time.Time, bool) {
	s = strings.Replace(s, ",", ".", 1)
	b := []byte(s)
	if b[10] == ' ' {
		b[10] = 'T'
	}
	s = string(b)
	body, zone := s, ""
	if i := strings.IndexAny(s[19:], "Z+- "); i >= 0 {
		body, zone = s[:19+i], strings.TrimSpace(s[19+i:])
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", body, loc)
	if err != nil {
		return time.Time{}, false
	}
	if zone == "" {
		return t, true
	}
	off := 0
	if zone != "Z" {
		z := strings.ReplaceAll(zone[1:], ":", "")
		h, err1 := strconv.Atoi(z[:2])
		mm := 0
		var err2 error
		if len(z) == 4 {
			mm, err2 = strconv.Atoi(z[2:])
		}
		if err1 != nil || err2 != nil {
			return time.Time{}, false
		}
		off = h*3600 + mm*60
		if zone[0] == '-' {
			off = -off
		}
	}
	u := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
	return u.Add(-time.Duration(off) * time.Second), true
}

// parseTAI64N reads "@" and 24 hex digits: 8 bytes of TAI seconds label
// (2^62 + seconds since 1970) and 4 bytes of nanoseconds. Like fail2ban, the
// TAI-UTC offset is not applied.
func parseTAI64N(s string) (time.Time, bool) {
	if len(s) != 25 {
		return time.Time{}, false
	}
	sec, err1 := strconv.ParseUint(s[1:17], 16, 64)
	ns, err2 := strconv.ParseUint(s[17:], 16, 32)
	if err1 != nil || err2 != nil || sec < 1<<62 {
		return time.Time{}, false
	}
	return time.Unix(int64(sec-1<<62), int64(ns)), true
}

func parseEpoch(s string) (time.Time, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}
