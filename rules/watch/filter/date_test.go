package filter

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"gatehouse/rules/testenv"
	"gatehouse/rules/watch/filter/corpus"
)

// dateScript finds, with fail2ban's own date detector (a fresh one per
// line, as this package judges each line on its own), the span of each
// line's timestamp and its time, for each datepattern.
const dateScript = `
import json, os, sys, time
os.environ["TZ"] = "Europe/Zurich"
time.tzset()
from fail2ban.server.datedetector import DateDetector
from fail2ban.server.mytime import MyTime
from fail2ban.server.filter import Filter

req = json.load(sys.stdin)
MyTime.setTime(req["now"])
out = []
for p in req["patterns"]:
    res = []
    for line in req["lines"]:
        f = Filter(None)
        f.setDatePattern(p if p else None)
        dd = f.dateDetector if p else DateDetector()
        m, tmpl = dd.matchTime(line)
        if m is None:
            res.append(None)
            continue
        s, e = m.span(1)
        t = None
        if s != e:
            try:
                r = dd.getTime(line[s:e], (m, tmpl))
                t = None if r is None else r[0]
            except Exception:
                t = None
        res.append([s, e, t])
    out.append(res)
json.dump(out, sys.stdout)
`

// TestDateDetectorAgainstFail2ban compares the date detection with
// fail2ban's on the date patterns of Debian's filter.d files and lines in
// the formats they and the default templates read: the same span removed
// from the line and the same time, or no time where fail2ban finds none.
func TestDateDetectorAgainstFail2ban(t *testing.T) {
	t.Parallel()
	// the Python that runs the installed fail2ban-regex can import fail2ban
	py, err := corpus.Interpreter(testenv.Tool(t, "fail2ban-regex"))
	if err != nil {
		t.Fatal(err)
	}
	patterns, lines := datePatternSamples, dateLineSamples
	in, err := json.Marshal(map[string]any{"now": corpus.Now, "patterns": patterns, "lines": lines})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", dateScript)
	cmd.Stdin = strings.NewReader(string(in))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("fail2ban's date detector: %v\n%s", err, stderr.String())
	}
	var want [][]*[3]*float64
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	loc, err := time.LoadLocation(corpus.Zone)
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return time.Unix(corpus.Now, 0) }
	for i, p := range patterns {
		d, err := newDateDetector(p, loc, now)
		if err != nil {
			t.Errorf("datepattern %q: %v", p, err)
			continue
		}
		for j, line := range lines {
			s, e, tm, found, ok := d.find(line)
			w := want[i][j]
			if w == nil {
				if found {
					t.Errorf("datepattern %q on %q: found %q, fail2ban finds none", p, line, line[s:e])
				}
				continue
			}
			ws, we := int(*w[0]), int(*w[1])
			if !found || s != ws || e != we {
				t.Errorf("datepattern %q on %q: span %v %d:%d, fail2ban %d:%d", p, line, found, s, e, ws, we)
				continue
			}
			if w[2] == nil {
				if ok {
					t.Errorf("datepattern %q on %q: time %v, fail2ban none", p, line, tm)
				}
				continue
			}
			if !ok || tm.Unix() != int64(*w[2]) {
				t.Errorf("datepattern %q on %q: time %v %v, fail2ban %v", p, line, ok, tm, time.Unix(int64(*w[2]), 0).In(loc))
			}
		}
	}
}

// BenchmarkDateDetect finds the timestamp of lines whose date is not a
// syslog one at the line start, the way the fast path cannot: an access
// log with the list of an Apache filter, and the default templates on an
// ISO 8601 line and on a line without a date.
func BenchmarkDateDetect(b *testing.B) {
	now := func() time.Time { return time.Unix(corpus.Now, 0) }
	for _, tc := range []struct{ name, pattern, line string }{
		{"access", "^[^\\[]*\\[({DATE})\n{^LN-BEG}", `192.0.2.1 - - [20/Jan/2015:19:53:28 +0100] "GET / HTTP/1.1" 404 162 "-" "-"`},
		{"iso", "{^LN-BEG}", "2025-03-04T02:11:57.602061 host lighttpd[764]: (mod_auth.c.853) password doesn't match"},
		{"none", "", "host lighttpd[764]: (mod_auth.c.853) password doesn't match for / username: user1"},
	} {
		d, err := newDateDetector(tc.pattern, time.UTC, now)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				d.find(tc.line)
			}
		})
	}
}

// FuzzDatePattern compiles any date pattern and, when it compiles, finds
// the date of any line: neither panics, a span found lies in the line, and
// no template matches a line that lacks its need.
func FuzzDatePattern(f *testing.F) {
	f.Add("{^LN-BEG}%ExY(?P<_sep>[-/.])%m(?P=_sep)%d[T ]%H:%M:%S", "2005-08-14 11:22:33 x")
	f.Add("^[^\\[]*\\[({DATE})\n{^LN-BEG}", "1.2.3.4 - - [20/Jan/2015:19:53:28 +0100] x")
	f.Add("{^LN-BEG}TAI64N\n{^LN-BEG}", "@4000000052f6a6f420a7b3b4 x")
	f.Add("EPOCH", "[1124013600] x")
	f.Add("%b %d, %ExY %I:%M:%S %p**", "Jan 23, 2005 9:59:59 PM x")
	now := func() time.Time { return time.Unix(corpus.Now, 0) }
	f.Fuzz(func(t *testing.T, pattern, line string) {
		d, err := newDateDetector(pattern, time.UTC, now)
		if err != nil {
			return
		}
		s, e, _, found, _ := d.find(line)
		if found && (s < 0 || e < s || e > len(line)) {
			t.Fatalf("datepattern %q on %q: span %d:%d", pattern, line, s, e)
		}
		for i, tm := range d.tmpls {
			if k := d.need[i]; k >= 0 && !d.needs[k].in(line) && tm.re.MatchString(line) {
				t.Fatalf("datepattern %q, template %s: matches %q without its need", pattern, tm.re, line)
			}
		}
	})
}

// datePatternSamples are date patterns of Debian's filters and of
// fail2ban's special forms.
var datePatternSamples = []string{
	"",
	"{^LN-BEG}",
	"{^LN-BEG}TAI64N\n{^LN-BEG}",
	"^[^\\[]*\\[({DATE})\n{^LN-BEG}",
	"{^LN-BEG}%ExY(?P<_sep>[-/.])%m(?P=_sep)%d[T ]%H:%M:%S(?:[.,]%f)?(?:\\s*%z)?\n^[^\\[]*\\[({DATE})\n{^LN-BEG}",
	"^<\\d+>\\d+\\s+{DATE}",
	"{^LN-BEG}Epoch\n{^LN-BEG}",
	"EPOCH",
	"^[^\\[]*(\\[{DATE}\\s*\\])\n{^LN-BEG}",
	"%d/%b[^/]*/%Y:%H:%M:%S %z",
	"^%m/%d/%Y %H:%M:%S",
	"^L %d/%m/%Y - %H:%M:%S",
	"^(?:%Y-)?%m-%d[ T]%H:%M:%S(?:\\.%f)?\n{^LN-BEG}",
	"^%b %d, %ExY %I:%M:%S %p\n^WARNING:()**\n{^LN-BEG}",
	"{^LN-BEG}%b-%d-%Exy %H:%M:%S\n{^LN-BEG}",
	"^t=%Y-%m-%dT%H:%M:%S%z",
	"{NONE}",
	"^{DATE}",
}

// dateLineSamples are lines of every default date format, near misses and
// lines without a date.
var dateLineSamples = []string{
	"Jun 21 16:47:48 host sshd[1]: x",
	"Jun  1 16:47:48 host x",
	"Feb 6 12:02:29 server vsftpd: x",
	"Feb 29 12:02:29 host x",
	"Jun 31 12:00:00 host x",
	"Jun 21 24:00:00 host x",
	"Jun 21 16:47:48.123 host x",
	"Jun 21 16:47:48 2013 host x",
	"jun 21 16:47:48 host x",
	"xJun 21 16:47:48 host x",
	"2025-03-04T02:11:57.602061 host lighttpd[764]: x",
	"2005-01-23 21:59:59+01:00 x",
	"2005-01-23T21:59:59Z x",
	"2013/08/11 03:56:40 x",
	"2013.08.11  3:56:40 x",
	"[Sun Jun 09 07:57:47 2013] [error] [client 1.2.3.4] x",
	"[Wed Dec 18 23:58:03.148113 2024] [cgi:error] [pid 1] x",
	"1.2.3.4 - - [20/Jan/2015:19:53:28 +0100] \"GET / HTTP/1.1\" 400",
	"1.2.3.4 - - [20/Jan/2015:19:53:28 -0500] \"GET / HTTP/1.1\" 400",
	"www.example.com 1.2.3.4 - - [18/Aug/2024:21:08:39 +0100] \"GET /\"",
	"@4000000052f6a6f420a7b3b4 dovecot: x",
	"1124013600.123 x",
	"[1124013600] x",
	"type=AVC msg=audit(1124013600.123:41): x",
	"130324  0:04:00 [Warning] x",
	"2020-01-16 21:34:14 4644 [Warning] x",
	"<38>1 2019-07-08T17:40:16.954167-04:00 host sshd 1 - - x",
	"Jan 23, 2005 9:59:59 PM x",
	"01-27-2012 16:22:44.252 x",
	"<09/16/08@05:03:30> x",
	"PDT Apr 16 21:05:29 x",
	"+00:00 Jan 23 21:59:59.011 2005 x",
	"20050123T215959 x",
	"host nginx[1]: 2023/12/09 21:35:20 [error] 1#1: x",
	"12:34:56 x",
	"Apr-27-13 02:33:06 x",
	"08/14/2005 11:22:33 x",
	"L 14/08/2005 - 11:22:33: x",
	"2005-08-14 11:22:33.5 x",
	"08-14 11:22:33 x",
	"WARNING: x",
	"t=2005-08-14T11:22:33+0200 x",
	"26/Jul/2007 15:20:52 x",
	"no date here",
	"x 2005-01-23 21:59:59 y",
	"foo bar Jun 21 16:47:48 baz 2005-01-23 21:59:59",
	"abc12:34:56 x",
	"[[1124013600] x",
	"1124013600.1234567 x",
	"JUN 21 16:47:48 host x",
	"Jun 21 16:47:48x host",
	"Jun 21 16:47:4 host x",
	"Jun 21 16:7:48 host x",
	"Jun 21 23:59:60 host x",
	"Sun Jun 21 16:47:48 host x",
	"Mon Jan 23 2005 21:59:59.011 x",
	"2005-08-14 10:00:00 CET x",
	"23/01/05 21:59:59 x",
	"17-07-2008 17:23:25 x",
	"26-Jul-2007 15:20:52.252 +0200 x",
	"05/20/2008:01:57:39 x",
	"Aug 16 12:00:00 host x",
	"Aug 14 23:00:00 host x",
	"Dec 31 23:59:59 host x",
	"  Jun 21 16:47:48 host x",
	"Jun 21 16:47:48\thost x",
	"2005-08-14T11:22:33+02 x",
	"2005-08-14T11:22:33 +02:00 x",
	"@4000000052f6a6f420a7b3b4x",
}
