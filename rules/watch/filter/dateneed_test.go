package filter

import (
	"os"
	"path/filepath"
	"regexp/syntax"
	"strings"
	"testing"
	"time"

	"gatehouse/rules/watch/filter/corpus"
)

// TestDateNeedsDefault checks the needs of fail2ban's default templates:
// every one has a need, so a line without a date is spared every
// expression, and every one but EPOCH, TAI64N and the compact
// 20050123T215959 form needs a ':' between two digits.
func TestDateNeedsDefault(t *testing.T) {
	t.Parallel()
	d, err := newDateDetector("", time.UTC, nil)
	if err != nil {
		t.Fatal(err)
	}
	var digits byteSet
	for c := byte('0'); c <= '9'; c++ {
		digits.add(c)
	}
	colon := byteNeed{c: ':', prev: digits, next: digits}
	for _, tm := range d.tmpls {
		if tm.need == nil {
			t.Errorf("template %s: no need", tm.name)
		}
		p, err := syntax.Parse(tm.re.String(), syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		hasColon := false
		collectNeeds(p.Simplify(), func(n byteNeed) { hasColon = hasColon || n == colon })
		name := unbound(tm.name)
		want := name != "EPOCH" && name != "TAI64N" && !strings.HasPrefix(name, "%ExY%Exm%Exd")
		if hasColon != want {
			t.Errorf("template %s: needs digit:digit %v, want %v", tm.name, hasColon, want)
		}
	}
	if n := len(d.needs); n < 2 || n > 12 {
		t.Errorf("%d distinct needs for %d templates", n, len(d.tmpls))
	}
}

// TestDateNeedsExact checks that a template whose need a line lacks never
// matches that line, for the date patterns of the built-in and Debian
// filters, on lines of every date format and every line of fail2ban's
// sample logs, and that the detector finds the same with and without
// needs.
func TestDateNeedsExact(t *testing.T) {
	t.Parallel()
	lines := append([]string(nil), dateLineSamples...)
	for _, l := range dateLineSamples {
		// near misses: each byte dropped
		for i := range len(l) {
			lines = append(lines, l[:i]+l[i+1:])
		}
	}
	if dir := corpusDir(t); dir != "" {
		files, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			data, err := os.ReadFile(filepath.Join(dir, f.Name()))
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, strings.Split(string(data), "\n")...)
		}
	}
	patterns := append([]string{syslogDates, `time=?"?{DATE}`, "{^LN-BEG}LEPOCH", "^%Y%m%d %H%M%S", "(?i)%a, %d %b %Y"}, datePatternSamples...)
	now := func() time.Time { return time.Unix(corpus.Now, 0) }
	skipped := 0
	for _, p := range patterns {
		d, err := newDateDetector(p, time.UTC, now)
		if err != nil {
			t.Fatalf("datepattern %q: %v", p, err)
		}
		plain := *d
		plain.need = make([]int, len(d.tmpls))
		for i := range plain.need {
			plain.need[i] = -1
		}
		for _, l := range lines {
			for i, tm := range d.tmpls {
				if k := d.need[i]; k >= 0 && !d.needs[k].in(l) {
					skipped++
					if tm.re.MatchString(l) {
						t.Errorf("datepattern %q, template %s: matches %q without its need", p, tm.name, l)
					}
				}
			}
			s, e, tt, found, ok := d.find(l)
			s2, e2, tt2, found2, ok2 := plain.find(l)
			if s != s2 || e != e2 || !tt.Equal(tt2) || found != found2 || ok != ok2 {
				t.Errorf("datepattern %q on %q: %d:%d %v with needs, %d:%d %v without", p, l, s, e, found, s2, e2, found2)
			}
		}
	}
	if skipped == 0 {
		t.Error("no template skipped")
	}
}

// BenchmarkDateNone finds no date in lines that have none, with the
// default templates: the common case for a custom filter without a
// datepattern reading lines whose date the journal gives.
func BenchmarkDateNone(b *testing.B) {
	d, err := newDateDetector("", time.UTC, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, line string }{
		{"syslog-tail", "host lighttpd[764]: (mod_auth.c.853) password doesn't match for / username: user1"},
		{"colon-digits", "sshd[777]: error: kex_exchange_identification: read: Connection reset by peer port 22:1"},
		{"no-colon", "Failed password for invalid user admin from 192.0.2.7 port 53122 ssh2"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, _, found, _ := d.find(tc.line); found {
					b.Fatal("found a date")
				}
			}
		})
	}
}

// FuzzDateNeed checks on any line that no template of the date patterns
// of the built-in and Debian filters matches it without its need.
func FuzzDateNeed(f *testing.F) {
	for _, l := range dateLineSamples {
		f.Add(l)
	}
	var ds []*dateDetector
	for _, p := range append([]string{syslogDates}, datePatternSamples...) {
		d, err := newDateDetector(p, time.UTC, nil)
		if err != nil {
			f.Fatal(err)
		}
		ds = append(ds, d)
	}
	f.Fuzz(func(t *testing.T, line string) {
		for _, d := range ds {
			for i, tm := range d.tmpls {
				if k := d.need[i]; k >= 0 && !d.needs[k].in(line) && tm.re.MatchString(line) {
					t.Fatalf("template %s: matches %q without its need", tm.name, line)
				}
			}
		}
	})
}
